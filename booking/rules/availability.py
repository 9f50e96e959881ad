"""When therapists can be seen: the free slots of their calendars under one service's rules.

Pure functions over plain values; the web and database layers hand in calendars and get slots.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """One weekly window of a therapist's hours, wall clock in the clinic zone."""

    weekday: int  # 0 = Monday ... 6 = Sunday
    start: time
    end: time  # later than start, on the same day

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), not {self.weekday}")
        if self.end <= self.start:
            raise ValueError(f"working hours must end after they start: {self.start}-{self.end}")


@dataclass(frozen=True, slots=True)
class TimeOff:
    """A period a therapist sees no one, wall clock in the clinic zone (naive local datetimes)."""

    start: datetime
    end: datetime
    reason: str = ""  # for staff; it changes nothing about availability

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"time off must end after it starts: {self.start}-{self.end}")


class _Span(NamedTuple):
    start: datetime
    end: datetime


class Interval(_Span):
    """A span of real time [start, end) between two aware instants, checked.

    A busy span is any (start, end) pair of aware instants in order: an Interval, or the
    database's rows as they are read (an appointment's CHECK constraints and a calendar's
    import keep them in order), some 150 a request on a full clinic, whose checks cost more
    than their use."""

    __slots__ = ()

    def __new__(cls, start: datetime, end: datetime) -> Interval:
        if start.utcoffset() is None or end.utcoffset() is None:
            raise ValueError("an interval needs timezone-aware instants")
        if end < start:
            raise ValueError(f"an interval cannot end before it starts: {start}-{end}")
        return super().__new__(cls, start, end)


@dataclass(frozen=True, slots=True)
class TherapistCalendar:
    """What is known about one therapist's time."""

    therapist: str  # the therapist's slug
    hours: Sequence[WorkingHours]
    time_off: Sequence[TimeOff] = ()
    # Live appointments (visit plus the buffer after it) and external calendars' busy times:
    # (start, end) pairs of aware instants, in order (Interval makes one, checked).
    busy: Sequence[tuple[datetime, datetime]] = ()


@dataclass(frozen=True, slots=True)
class BookingRules:
    """How one service may be booked."""

    duration: timedelta  # the visit
    buffer_after: timedelta  # kept free after the visit
    min_notice: timedelta  # no slot starting before now + min_notice
    max_advance: timedelta  # no slot starting after now + max_advance
    slot_step_minutes: int  # slots start on this grid of local wall-clock minutes

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0):
            raise ValueError("a visit must last some time")
        if self.buffer_after < timedelta(0):
            raise ValueError("the buffer after a visit cannot be negative")
        if self.slot_step_minutes <= 0:
            raise ValueError("the slot step must be a positive number of minutes")


@dataclass(frozen=True, slots=True)
class Slot:
    """A visit a patient can book: start and end are aware UTC instants."""

    start: datetime
    end: datetime
    therapist: str


# Internally every instant is a POSIX timestamp. Slot starts are whole seconds (ints); the
# bounds they are compared with are floats. Python compares int with float exactly, and
# float timestamps keep microsecond datetimes of this era distinct and in order.


# The free slots in bulk: each start (POSIX seconds, ascending) with the slugs of the
# therapists free then (ascending; starts with the same therapists share one list, not to be
# changed). An answer of hundreds of slots is written from these without a datetime or a Slot
# made for each (booking/api/slot_answers.py).
FreeStarts = list[tuple[int, list[str]]]


def free_slots(
    calendars: Sequence[TherapistCalendar],
    rules: BookingRules,
    zone: ZoneInfo,
    first_day: date,
    last_day: date,
    now: datetime,
) -> list[Slot]:
    """Every bookable slot of every given therapist on those local days.

    Sorted by (start, therapist). The days are local dates in `zone`, both included; `now` is
    an aware instant.
    """
    return slots_of(free_starts(calendars, rules, zone, first_day, last_day, now), rules.duration)


def slots_of(starts: FreeStarts, duration: timedelta) -> list[Slot]:
    """The slots of these free starts, each visit lasting `duration`."""
    slots: list[Slot] = []
    append = slots.append
    for instant, therapists in starts:
        start = datetime.fromtimestamp(instant, UTC)
        end = start + duration
        for therapist in therapists:
            append(Slot(start, end, therapist))
    return slots


def free_starts(
    calendars: Sequence[TherapistCalendar],
    rules: BookingRules,
    zone: ZoneInfo,
    first_day: date,
    last_day: date,
    now: datetime,
) -> FreeStarts:
    """free_slots, as each free start with the therapists free then."""
    _require_aware(now, "now")
    if first_day > last_day or not calendars:
        return []

    # Aware arithmetic in a zone with DST is wall-clock arithmetic: add to the UTC instant.
    now_utc = now.astimezone(UTC)
    earliest = (now_utc + rules.min_notice).timestamp()
    latest = (now_utc + rules.max_advance).timestamp()
    visit = rules.duration.total_seconds()
    reach = visit + rules.buffer_after.total_seconds()
    step = rules.slot_step_minutes * 60
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    weekdays = [day.weekday() for day in days]

    # Sorting therapists first makes each start's therapists come out in order for free.
    ordered = sorted(calendars, key=_slug)
    weeks = [_week_plan(calendar.hours) for calendar in ordered]

    # Therapists share their windows' wall times, so each (day, window) is turned into
    # instants, and into the grid starts that fit it, once for all of them.
    weekdays_used: dict[tuple[time, time], set[int]] = {}
    for week in weeks:
        for weekday, (windows, _) in enumerate(week):
            for window in windows:
                weekdays_used.setdefault(window, set()).add(weekday)
    starts_by_window = {
        (opens, closes): [
            _window_starts(day, opens, closes, zone, step, visit, earliest, latest)
            if weekday in used
            else []
            for day, weekday in zip(days, weekdays, strict=True)
        ]
        for (opens, closes), used in weekdays_used.items()
    }
    day_starts = [starts for by_day in starts_by_window.values() for starts in by_day if starts]
    if not day_starts:
        return []
    # Only what could block one of these starts matters.
    first_start = min(starts[0] for starts in day_starts)
    last_start = max(starts[-1] for starts in day_starts)

    # Each therapist's free starts, ascending: days in order, a day's windows in order.
    free_of = []
    for calendar, week in zip(ordered, weeks, strict=True):
        blocked_from, blocked_until = _blocked_starts(
            calendar, zone, visit, reach, first_start, last_start
        )
        blocks = len(blocked_from)
        week_starts = [
            ([starts_by_window[window] for window in windows], overlapping)
            for windows, overlapping in week
        ]
        mine: list[int] = []
        for day_index, weekday in enumerate(weekdays):
            windows, overlapping = week_starts[weekday]
            free: list[int] = []
            for by_day in windows:
                grid = by_day[day_index]
                if not grid:
                    continue
                # Walk the blocks that could cover these starts; between them all are free.
                lo, hi = 0, len(grid)
                last = grid[-1]
                block = bisect_right(blocked_until, grid[0])
                while lo < hi and block < blocks and blocked_from[block] < last:
                    free_until = bisect_right(grid, blocked_from[block], lo, hi)
                    free += grid[lo:free_until]
                    lo = bisect_left(grid, blocked_until[block], free_until, hi)
                    block += 1
                free += grid[lo:hi]
            mine += sorted(set(free)) if overlapping else free
        free_of.append(mine)
    if len(ordered) == 1:  # one therapist asked for: the answer as it is
        only = [ordered[0].therapist]
        return [(start, only) for start in free_of[0]]

    # start -> the therapists free then, as a set of bits: bit i for ordered[i]
    therapists_at: dict[int, int] = {}
    for index, mine in enumerate(free_of):
        bit = 1 << index
        for start in mine:
            therapists_at[start] = therapists_at.get(start, 0) | bit

    # Starts with the same therapists free share one list of their slugs, in order.
    slugs = [calendar.therapist for calendar in ordered]
    named: dict[int, list[str]] = {}
    starts = []
    for instant in sorted(therapists_at):
        free_then = therapists_at[instant]
        therapists = named.get(free_then)
        if therapists is None:
            therapists = named[free_then] = [
                slug for index, slug in enumerate(slugs) if free_then >> index & 1
            ]
        starts.append((instant, therapists))
    return starts


def is_slot_free(
    calendar: TherapistCalendar,
    rules: BookingRules,
    zone: ZoneInfo,
    start: datetime,
    now: datetime,
) -> bool:
    """Whether `start` (aware) is one of the free slots of this therapist.

    Used to re-check a booking just before it is written.
    """
    _require_aware(start, "start")
    day = start.astimezone(zone).date()
    # The day's free starts as the engine finds them, compared as instants: no Slot made for
    # each of them (a third of re-checking a booking).
    instant = start.timestamp()
    return any(
        free == instant for free, _ in free_starts([calendar], rules, zone, day, day, now)
    )


def fits_hours(
    calendar: TherapistCalendar, zone: ZoneInfo, start: datetime, end: datetime
) -> bool:
    """Whether a visit [start, end) (aware) lies inside one of the therapist's working windows
    on its local day and outside all their time off. Busy times are not considered.

    The one statement of that rule: free_slots applies the same comparisons, in bulk, to
    whole grids of starts (a window's opening and closing instants, time off as instants).
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    begins, ends = start.timestamp(), end.timestamp()
    return _inside_hours(calendar, zone, start, begins, ends) and not _in_time_off(
        calendar, zone, begins, ends
    )


def _inside_hours(
    calendar: TherapistCalendar, zone: ZoneInfo, start: datetime, begins: float, ends: float
) -> bool:
    day = start.astimezone(zone).date()
    return any(
        datetime.combine(day, window.start, tzinfo=zone).timestamp() <= begins
        and ends <= datetime.combine(day, window.end, tzinfo=zone).timestamp()
        for window in calendar.hours
        if window.weekday == day.weekday()
    )


def _in_time_off(calendar: TherapistCalendar, zone: ZoneInfo, begins: float, ends: float) -> bool:
    # The same open-ended overlaps as _blocked_starts: touching is not overlapping.
    return any(
        _local_instant(period.start, zone) < ends and begins < _local_instant(period.end, zone)
        for period in calendar.time_off
    )


class SlotRefusal(StrEnum):
    """Why a start is not a free slot, told to the patient as it is.

    Declared from the clinic's rules to the therapist's day: a later reason is nearer to free
    (see `nearest_to_free`).
    """

    TOO_SOON = "too_soon"  # before now + the service's notice
    TOO_FAR = "too_far"  # after now + the service's booking window
    OFF_GRID = "off_grid"  # not on the clinic's grid of start times
    OUTSIDE_HOURS = "outside_hours"  # the visit does not fit in the therapist's hours
    TIME_OFF = "time_off"  # the therapist is away then
    TAKEN = "taken"  # another visit (or a busy time elsewhere) is in the way


def why_not_free(
    calendar: TherapistCalendar,
    rules: BookingRules,
    zone: ZoneInfo,
    start: datetime,
    now: datetime,
) -> SlotRefusal | None:
    """Why `start` (aware) is not one of this therapist's free slots, or None when it is one.

    When several reasons hold, the first in SlotRefusal's order is given.
    """
    _require_aware(now, "now")
    if is_slot_free(calendar, rules, zone, start, now):
        return None
    now_utc = now.astimezone(UTC)
    if start < now_utc + rules.min_notice:
        return SlotRefusal.TOO_SOON
    if start > now_utc + rules.max_advance:
        return SlotRefusal.TOO_FAR
    wall = start.astimezone(zone)
    if _micros_of_day(wall.timetz()) % (rules.slot_step_minutes * 60_000_000):
        return SlotRefusal.OFF_GRID
    begins = start.timestamp()
    ends = begins + rules.duration.total_seconds()
    if not _inside_hours(calendar, zone, start, begins, ends):
        return SlotRefusal.OUTSIDE_HOURS
    if _in_time_off(calendar, zone, begins, ends):
        return SlotRefusal.TIME_OFF
    # What is left is a start the wall-clock grid offers on paper but the day does not (the
    # repeated hour of a fall-back night is offered once), or a busy span in the way.
    reach = ends + rules.buffer_after.total_seconds()
    if any(start.timestamp() < reach and begins < end.timestamp()
           for start, end in calendar.busy):
        return SlotRefusal.TAKEN
    return SlotRefusal.OFF_GRID


def nearest_to_free(refusals: Sequence[SlotRefusal]) -> SlotRefusal:
    """Of several therapists' reasons for one start, the one nearest to free.

    "Taken" by one and "outside hours" for another is told as taken: someone works then.
    """
    order = list(SlotRefusal)
    return max(refusals, key=order.index)


def _slug(calendar: TherapistCalendar) -> str:
    return calendar.therapist


def _require_aware(instant: datetime, name: str) -> None:
    if instant.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not {instant!r}")


# By weekday: the day's windows, sorted, and whether any of them overlap.
_WeekPlan = tuple[tuple[tuple[tuple[time, time], ...], bool], ...]


def _week_plan(hours: Sequence[WorkingHours]) -> _WeekPlan:
    # The reference data's hours are a tuple, the same from request to request: their plan is
    # kept (a therapist's hours are few, and their changes fewer).
    return _kept_week_plan(hours) if isinstance(hours, tuple) else _planned_week(hours)


@lru_cache(maxsize=1024)
def _kept_week_plan(hours: tuple[WorkingHours, ...]) -> _WeekPlan:
    return _planned_week(hours)


def _planned_week(hours: Sequence[WorkingHours]) -> _WeekPlan:
    week = []
    for weekday in range(7):
        windows = tuple(sorted({(h.start, h.end) for h in hours if h.weekday == weekday}))
        # Overlapping windows would offer the starts they share twice.
        overlapping = any(
            later[0] < earlier[1] for earlier, later in zip(windows, windows[1:], strict=False)
        )
        week.append((windows, overlapping))
    return tuple(week)


def _window_starts(
    day: date,
    opens: time,
    closes: time,
    zone: ZoneInfo,
    step: int,
    visit: float,
    earliest: float,
    latest: float,
) -> Sequence[int]:
    """Sorted timestamps of the grid starts whose visits fit this window on this local day.

    Only starts within notice and the booking window (earliest..latest) are kept.
    """
    grid = _window_grid(day, opens, closes, zone, step, visit)
    return grid[bisect_left(grid, earliest) : bisect_right(grid, latest)]


@lru_cache(maxsize=8192)
def _window_grid(
    day: date, opens: time, closes: time, zone: ZoneInfo, step: int, visit: float
) -> tuple[int, ...]:
    """Every grid start whose visit fits this window on this local day, sorted.

    Kept for later calls: a clinic's windows on the days asked for are few and asked for
    again and again, and turning one into instants is a dozen zone lookups. A day's grid never
    changes (the zone's rules are loaded once per process).
    """
    # fold=0: an ambiguous wall time (fall back) means its first occurrence.
    opening = datetime.combine(day, opens, tzinfo=zone)
    closing = datetime.combine(day, closes, tzinfo=zone)
    first = opening.timestamp()
    last = closing.timestamp() - visit
    if first > last:
        return ()
    opens_micros = _micros_of_day(opens)
    first_grid = -(-opens_micros // (step * 1_000_000)) * step  # seconds since local midnight
    if _exists(opening) and _exists(closing) and opening.utcoffset() == closing.utcoffset():
        # One UTC offset all through the window: the wall-clock grid is evenly spaced in
        # real time as well, so no per-start zone lookups are needed.
        midnight = round(opening.timestamp() - opens_micros / 1_000_000)
        grid = list(range(midnight + first_grid, int(last) + 1, step))
    else:
        # The clocks change inside the window: walk the wall clock, one lookup per start.
        grid = []
        for second in range(first_grid, _micros_of_day(closes) // 1_000_000 + 1, step):
            wall = time(second // 3600, second // 60 % 60, second % 60)
            local = datetime.combine(day, wall, tzinfo=zone)
            if _exists(local):  # a wall time skipped by spring forward is no slot
                grid.append(round(local.timestamp()))
        grid.sort()
    return tuple(grid[bisect_left(grid, first) : bisect_right(grid, last)])


def _micros_of_day(wall: time) -> int:
    return ((wall.hour * 60 + wall.minute) * 60 + wall.second) * 1_000_000 + wall.microsecond


def _exists(local: datetime) -> bool:
    """Whether this local wall time is ever shown by the zone's clocks."""
    # Only in a spring-forward gap is the offset before the change (fold=0) the smaller one.
    return local.utcoffset() >= local.replace(fold=1).utcoffset()


def _blocked_starts(
    calendar: TherapistCalendar,
    zone: ZoneInfo,
    visit: float,
    reach: float,
    first_start: float,
    last_start: float,
) -> tuple[list[float], list[float]]:
    """The open ranges (from, until) of starts this therapist cannot take, disjoint and sorted.

    A visit starting at s is blocked by time off [a, b) when a - visit < s < b, and by a busy
    span [a, b) when a - reach < s < b (reach = visit + buffer): the ends are open because
    touching is not overlapping.
    """
    # Most busy spans fall outside the days asked for; comparing datetimes (a second of margin
    # for rounding) rules them out without converting each one. Keeping a few too many is harmless.
    margin = timedelta(seconds=1)
    busy_from = datetime.fromtimestamp(first_start, UTC) - margin
    busy_until = datetime.fromtimestamp(last_start + reach, UTC) + margin
    spans = [
        (start.timestamp() - reach, end.timestamp())
        for start, end in calendar.busy
        if start < busy_until and end > busy_from
    ]
    for period in calendar.time_off:
        blocked_from = _local_instant(period.start, zone) - visit
        blocked_until = _local_instant(period.end, zone)
        if blocked_from < last_start and blocked_until > first_start:
            spans.append((blocked_from, blocked_until))
    spans.sort()

    starts: list[float] = []
    ends: list[float] = []
    for blocked_from, blocked_until in spans:
        # Merge only real overlaps: where one range ends as the next begins, that start is free.
        if ends and blocked_from < ends[-1]:
            if blocked_until > ends[-1]:
                ends[-1] = blocked_until
        else:
            starts.append(blocked_from)
            ends.append(blocked_until)
    return starts, ends


def _local_instant(wall: datetime, zone: ZoneInfo) -> float:
    """A clinic wall-clock datetime as a timestamp (an aware one is taken as the instant it is)."""
    if wall.tzinfo is None:
        wall = wall.replace(tzinfo=zone)  # fold=0, as for working hours
    return wall.timestamp()
