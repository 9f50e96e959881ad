"""Which waiting entries a free time suits, and how long an offer of it stands.

Pure functions over plain values: the waitlist's wishes (dates, weekdays, parts of the day,
a therapist or anyone) against a slot, in the clinic's wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Parts of the day by the visit's start, clinic time: morning before 12:00, afternoon
# 12:00 to 17:00, evening from 17:00.
PARTS_OF_DAY = ("morning", "afternoon", "evening")
_NOON = time(12, 0)
_FIVE_PM = time(17, 0)


def as_mask(chosen: Iterable[object], universe: Sequence[object]) -> int:
    """Weekdays (0 = Monday) or parts of the day as bits, as the database keeps them: bit i
    for universe[i]; 0 for none chosen, which means any."""
    return sum(1 << universe.index(item) for item in set(chosen))


def from_mask(mask: int, universe: Sequence[object]) -> list:
    return [item for position, item in enumerate(universe) if mask & (1 << position)]


def part_of_day(wall: time) -> str:
    if wall < _NOON:
        return "morning"
    return "afternoon" if wall < _FIVE_PM else "evening"


@dataclass(frozen=True, slots=True)
class WaitingWish:
    """What one waiting entry asks for; empty weekdays or parts of the day mean any."""

    service: str
    therapist: str | None
    available_from: date
    until: date
    weekdays: frozenset[int] = frozenset()  # 0 = Monday
    parts_of_day: frozenset[str] = frozenset()


def suits(wish: WaitingWish, service: str, therapist: str, start: datetime,
          zone: ZoneInfo) -> bool:
    """Whether a visit of `service` with `therapist` at `start` is one the entry waits for."""
    if wish.service != service:
        return False
    if wish.therapist is not None and wish.therapist != therapist:
        return False
    wall = start.astimezone(zone)
    if not wish.available_from <= wall.date() <= wish.until:
        return False
    if wish.weekdays and wall.weekday() not in wish.weekdays:
        return False
    return not wish.parts_of_day or part_of_day(wall.time()) in wish.parts_of_day


def offer_goes_out(now: datetime, quiet_hours_end: datetime, claim_by: datetime) -> bool:
    """An offer is worth writing only when its mail (held by the quiet hours until
    `quiet_hours_end`) leaves before the time falls inside the service's notice."""
    return max(now, quiet_hours_end) < claim_by


def offer_expiry(sent_at: datetime, claim_window: timedelta, claim_by: datetime) -> datetime:
    """When an offer sent at `sent_at` lapses: after the clinic's claim window, never later
    than the service's notice before the visit."""
    return min(sent_at + claim_window, claim_by)


def first_suitable(
    wishes: Sequence[tuple[int, WaitingWish]],
    service: str,
    therapist: str,
    start: datetime,
    zone: ZoneInfo,
    count: int,
) -> list[int]:
    """The ids of up to `count` entries the time suits, in the order given (oldest first)."""
    chosen = []
    for entry_id, wish in wishes:
        if suits(wish, service, therapist, start, zone):
            chosen.append(entry_id)
            if len(chosen) == count:
                break
    return chosen
