"""A weekly series of visits: its starts, and the nearest free times for one that is not free
(why a start is not free is availability.why_not_free, as for a single visit).

Pure functions over plain values (availability's calendars and rules); no Flask, no database.
Every visit keeps the first visit's wall-clock time in the clinic zone, so a series that
crosses a daylight-saving change stays at 14:00 on both sides of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.rules.availability import Slot

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

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


def with_moved_visits(starts: Sequence[datetime], moved: Mapping[int, datetime]) -> list[datetime]:
    """The series' starts with some visits (by index) moved to another start, one of the
    alternatives chosen for it; each start stays an aware instant."""
    if any(index not in range(len(starts)) for index in moved):
        raise ValueError("a moved visit must be one of the series")
    if any(start.utcoffset() is None for start in moved.values()):
        raise ValueError("a moved visit needs a timezone-aware start")
    return [
        moved[index].astimezone(UTC) if index in moved else start
        for index, start in enumerate(starts)
    ]


def overlapping_visits(starts: Sequence[datetime], span: timedelta) -> list[int]:
    """The indexes of visits whose busy span (`span` from the start, buffer included) runs
    into an earlier visit's of the same series: two visits moved onto one time."""
    clashing = []
    for index, start in enumerate(starts):
        if any(
            other < start + span and start < other + span
            for other in starts[:index]
        ):
            clashing.append(index)
    return clashing
