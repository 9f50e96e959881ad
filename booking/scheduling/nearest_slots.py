"""The free slots nearest to a start a patient wanted and could not have: what they are offered
instead, on the patient pages and in a series preview.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from booking.clinic.reference import current_clinic, zone_named
from booking.models import Service, utc_now
from booking.rules.availability import Slot
from booking.scheduling.appointments import free_slots

# The contract's promise: up to three, on the wanted day or a day next to it.
NEAREST_COUNT = 3
NEAREST_DAYS_AROUND = 1


def nearest_free_slots(
    service: Service,
    wanted: datetime,
    *,
    therapist_slug: str | None = None,
    now: datetime | None = None,
    count: int = NEAREST_COUNT,
) -> list[Slot]:
    """Up to `count` free slots nearest to `wanted` (aware), nearest first, the earlier on a tie.

    Searched on the wanted day and the days either side of it, in the clinic's zone. With no
    therapist named, each start is offered once (with the first therapist free then); the
    wanted start itself is never one of them.
    """
    zone = zone_named(current_clinic().timezone)
    day = wanted.astimezone(zone).date()
    around = timedelta(days=NEAREST_DAYS_AROUND)
    slots = free_slots(service, day - around, day + around, therapist_slug=therapist_slug,
                       now=now or utc_now())
    one_per_start: dict[datetime, Slot] = {}
    for slot in slots:  # sorted by start, then therapist
        if slot.start != wanted:
            one_per_start.setdefault(slot.start, slot)
    return sorted(one_per_start.values(),
                  key=lambda slot: (abs(slot.start - wanted), slot.start))[:count]
