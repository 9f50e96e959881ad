"""A weekly series of visits: its starts, and the nearest free times for one that is not free
(why a start is not free is availability.why_not_free, as for a single visit).

Pure functions over plain values (availability's calendars and rules); no Flask, no database.
Every visit keeps the first visit's wall-clock time in the clinic zone, so a series that
crosses a daylight-saving change stays at 14:00 on both sides of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.rules.availability import Slot

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Staff are warned when an insurance authorisation is this close to running out.
AUTHORISATION_WARNING_VISITS = 2
AUTHORISATION_WARNING_DAYS = 7

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


def visits_until(
    first: datetime, weekdays: Iterable[int], last_day: date, zone: ZoneInfo, *, limit: int
) -> int:
    """How many visits of the pattern fall on or before `last_day` (clinic date), at most
    `limit`: a course asked for by its end date rather than its number of visits."""
    if first.astimezone(zone).date() > last_day:
        return 0
    starts = series_starts(first, weekdays, limit + 1, zone)
    within = [start for start in starts if start.astimezone(zone).date() <= last_day]
    return min(len(within), limit)


@dataclass(frozen=True)
class AuthorisationStanding:
    """Where an insurance authorisation stands: visits left to use, days left, and whether
    staff should ask for a renewal now (None: that part of the authorisation was not given)."""

    visits_left: int | None
    days_left: int | None
    booked_beyond: int  # visits to come that the visits left do not cover

    @property
    def running_out(self) -> bool:
        return (
            self.visits_left is not None and self.visits_left <= AUTHORISATION_WARNING_VISITS
        ) or (self.days_left is not None and self.days_left <= AUTHORISATION_WARNING_DAYS)


def authorisation_standing(
    authorised_visits: int | None,
    authorised_until: date | None,
    *,
    visits_done: int,
    visits_to_come: int,
    today: date,
) -> AuthorisationStanding:
    """An authorisation of so many visits until a day, after `visits_done` used and with
    `visits_to_come` booked: a visit is used when it took place (a no-show uses none)."""
    visits_left = (
        None if authorised_visits is None else max(authorised_visits - visits_done, 0)
    )
    days_left = None if authorised_until is None else (authorised_until - today).days
    beyond = 0 if visits_left is None else max(visits_to_come - visits_left, 0)
    return AuthorisationStanding(visits_left, days_left, beyond)
