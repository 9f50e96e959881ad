"""A weekly series of visits: its starts, why a start is not free, and the nearest free times.

Pure functions over plain values (availability's calendars and rules); no Flask, no database.
Every visit keeps the first visit's wall-clock time in the clinic zone, so a series that
crosses a daylight-saving change stays at 14:00 on both sides of it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.rules.availability import BookingRules, Slot, TherapistCalendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Why a start is not free, the first that applies in this order: what no choice of day or
# therapist changes comes first.
TOO_SOON = "too_soon"
TOO_FAR = "too_far"
OFF_GRID = "off_grid"
OUTSIDE_HOURS = "outside_hours"
TIME_OFF = "time_off"
TAKEN = "taken"
REASONS = (TOO_SOON, TOO_FAR, OFF_GRID, OUTSIDE_HOURS, TIME_OFF, TAKEN)


def series_starts(first: datetime, weekdays: Iterable[int], count: int, zone: ZoneInfo):
    """The starts of `count` visits: `first`, then the listed weekdays (0 = Monday) after it.

    Each later visit is at the first one's wall-clock time in `zone` on its day (fold=0 for
    a wall time that the fall-back hour shows twice). Aware UTC instants, in order.
    """
    if first.utcoffset() is None:
        raise ValueError("the first visit must be a timezone-aware instant")
    days = set(weekdays)
    if not days or not days <= set(range(7)):
        raise ValueError("a series needs weekdays from 0 (Monday) to 6 (Sunday)")
    if count < 1:
        raise ValueError("a series has at least one visit")
    wall = first.astimezone(zone)
    starts = [first.astimezone(UTC)]
    day = wall.date()
    while len(starts) < count:
        day += timedelta(days=1)
        if day.weekday() in days:
            local = datetime.combine(day, wall.timetz().replace(tzinfo=None), tzinfo=zone)
            starts.append(local.astimezone(UTC))
    return starts


def why_not_free(
    calendar: TherapistCalendar,
    rules: BookingRules,
    zone: ZoneInfo,
    start: datetime,
    now: datetime,
) -> str | None:
    """None when `start` is a free slot of this therapist (as availability.free_slots offers
    it), else the reason it is not: one of REASONS.

    Kept beside the series until availability itself says why a start is not free; the
    rules are availability's: a wall-clock grid, the visit inside one window of hours, time
    off and busy spans (the buffer after a visit included) touching but not overlapping.
    """
    return why_each_is_not_free(calendar, rules, zone, [start], now)[0]


def why_each_is_not_free(
    calendar: TherapistCalendar,
    rules: BookingRules,
    zone: ZoneInfo,
    starts: Sequence[datetime],
    now: datetime,
) -> list[str | None]:
    """why_not_free for each of `starts`, reading the calendar once."""
    now_ts = now.timestamp()
    earliest = now_ts + rules.min_notice.total_seconds()
    latest = now_ts + rules.max_advance.total_seconds()
    step = rules.slot_step_minutes * 60
    visit = rules.duration.total_seconds()
    reach = visit + rules.buffer_after.total_seconds()
    # Each busy span or time off blocks the starts strictly inside (from, until): sorted by
    # `from`, with the latest `until` so far, one bisection tells whether any blocks a start.
    busy = _blocking(
        (span.start.timestamp() - reach, span.end.timestamp()) for span in calendar.busy
    )
    away = _blocking(
        (
            period.start.replace(tzinfo=zone).timestamp() - visit,
            period.end.replace(tzinfo=zone).timestamp(),
        )
        for period in calendar.time_off
    )
    reasons: list[str | None] = []
    for start in starts:
        start_ts = start.timestamp()
        wall = start.astimezone(zone)
        seconds = wall.hour * 3600 + wall.minute * 60 + wall.second
        if start_ts < earliest:
            reason = TOO_SOON
        elif start_ts > latest:
            reason = TOO_FAR
        elif wall.microsecond or seconds % step:
            reason = OFF_GRID
        elif not _inside_hours(calendar, zone, wall, start_ts, visit):
            reason = OUTSIDE_HOURS
        elif _blocked(away, start_ts):
            reason = TIME_OFF
        elif _blocked(busy, start_ts):
            reason = TAKEN
        else:
            reason = None
        reasons.append(reason)
    return reasons


def _inside_hours(
    calendar: TherapistCalendar, zone: ZoneInfo, wall: datetime, start_ts: float, visit: float
) -> bool:
    day = wall.date()
    local = datetime.combine(day, wall.time(), tzinfo=zone)
    if local.timestamp() != start_ts:  # a wall time the clocks skip is no slot
        return False
    for hours in calendar.hours:
        if hours.weekday != day.weekday():
            continue
        opening = datetime.combine(day, hours.start, tzinfo=zone).timestamp()
        closing = datetime.combine(day, hours.end, tzinfo=zone).timestamp()
        if opening <= start_ts and start_ts + visit <= closing:
            return True
    return False


def _blocking(spans: Iterable[tuple[float, float]]) -> tuple[list[float], list[float]]:
    froms: list[float] = []
    latest_untils: list[float] = []
    for blocked_from, blocked_until in sorted(spans):
        froms.append(blocked_from)
        latest_untils.append(max(blocked_until, latest_untils[-1] if latest_untils else 0.0))
    return froms, latest_untils


def _blocked(blocking: tuple[list[float], list[float]], start_ts: float) -> bool:
    froms, latest_untils = blocking
    before = bisect_left(froms, start_ts)  # the spans with from < start
    return before > 0 and latest_untils[before - 1] > start_ts


def nearest_alternatives(
    wanted: datetime,
    free: Sequence[Slot],
    preferred_therapist: str,
    *,
    avoid: Sequence[tuple[datetime, datetime, str]] = (),
    limit: int = 3,
) -> list[Slot]:
    """Up to `limit` of the free slots, nearest to `wanted` first (the series' therapist first
    at equal distance), leaving out those that would overlap another visit of the series.

    `free` holds the slots of the day asked for and the days next to it.
    """

    def clashes(slot: Slot) -> bool:
        return any(
            therapist == slot.therapist and start < slot.end and slot.start < end
            for start, end, therapist in avoid
        )

    ranked = sorted(
        free,
        key=lambda slot: (
            abs((slot.start - wanted).total_seconds()),
            slot.start,
            slot.therapist != preferred_therapist,
            slot.therapist,
        ),
    )
    chosen: list[Slot] = []
    for slot in ranked:
        if not clashes(slot):
            chosen.append(slot)
            if len(chosen) == limit:
                break
    return chosen


def days_around(day: date) -> tuple[date, date]:
    """The days whose free times are offered instead of one that is not free: it and its
    neighbours."""
    return day - timedelta(days=1), day + timedelta(days=1)
