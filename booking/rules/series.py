"""A weekly series of visits: its starts, why a start is not free, and the nearest free times.

Pure functions over plain values (availability's calendars and rules); no Flask, no database.
Every visit keeps the first visit's wall-clock time in the clinic zone, so a series that
crosses a daylight-saving change stays at 14:00 on both sides of it.
"""

from __future__ import annotations

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
    start_ts = start.timestamp()
    now_ts = now.timestamp()
    if start_ts < now_ts + rules.min_notice.total_seconds():
        return TOO_SOON
    if start_ts > now_ts + rules.max_advance.total_seconds():
        return TOO_FAR
    wall = start.astimezone(zone)
    seconds = wall.hour * 3600 + wall.minute * 60 + wall.second
    if wall.microsecond or seconds % (rules.slot_step_minutes * 60):
        return OFF_GRID
    visit = rules.duration.total_seconds()
    reach = visit + rules.buffer_after.total_seconds()
    day = wall.date()
    fits = False
    for hours in calendar.hours:
        if hours.weekday != day.weekday():
            continue
        opening = datetime.combine(day, hours.start, tzinfo=zone).timestamp()
        closing = datetime.combine(day, hours.end, tzinfo=zone).timestamp()
        if opening <= start_ts and start_ts + visit <= closing:
            fits = True
            break
    local = datetime.combine(day, wall.time(), tzinfo=zone)
    if not fits or local.timestamp() != start_ts:  # a wall time the clocks skip is no slot
        return OUTSIDE_HOURS
    for period in calendar.time_off:
        blocked_from = period.start.replace(tzinfo=zone).timestamp() - visit
        if blocked_from < start_ts < period.end.replace(tzinfo=zone).timestamp():
            return TIME_OFF
    for busy in calendar.busy:
        if busy.start.timestamp() - reach < start_ts < busy.end.timestamp():
            return TAKEN
    return None


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
        if slot.start != wanted and not clashes(slot):
            chosen.append(slot)
            if len(chosen) == limit:
                break
    return chosen


def days_around(day: date) -> tuple[date, date]:
    """The days whose free times are offered instead of one that is not free: it and its
    neighbours."""
    return day - timedelta(days=1), day + timedelta(days=1)
