"""The slots of an availability answer, as JSON objects with their local times.

Each instant's local text (`isoformat()` in the answer's zone) is written by orjson in C, and
kept for the process's later answers: the same days' times are asked for again and again,
and writing them had been the larger part of rendering a slot. An instant's local time
never changes, so nothing kept goes stale; the store is bounded, and emptied when full.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from booking.rules.availability import Slot

# Local texts kept per zone (the clinic's, and the few that patients' browsers send): a
# zone's times for the whole booking window of a clinic open every day fit in a few
# thousand, and the bounds keep the store small whatever the zones asked for.
_MOST_ZONES = 4
_MOST_TEXTS_PER_ZONE = 10_000
_KEPT: dict[str, dict[datetime, str]] = {}


def slots_out(slots: list[Slot], zone: ZoneInfo) -> list[dict[str, str]]:
    texts = _texts_for(zone)
    try:
        return _as_objects(slots, texts)
    except KeyError:  # times not seen before: written once, then kept
        pass
    for slot in slots:
        for instant in (slot.start, slot.end):
            if instant not in texts:
                texts[instant] = orjson.dumps(instant.astimezone(zone))[1:-1].decode()
    return _as_objects(slots, texts)


def _as_objects(slots: list[Slot], texts: dict[datetime, str]) -> list[dict[str, str]]:
    return [
        {"start": texts[slot.start], "end": texts[slot.end], "therapist": slot.therapist}
        for slot in slots
    ]


def _texts_for(zone: ZoneInfo) -> dict[datetime, str]:
    texts = _KEPT.get(zone.key)
    if texts is None or len(texts) > _MOST_TEXTS_PER_ZONE:
        if len(_KEPT) >= _MOST_ZONES:
            _KEPT.clear()
        # A new dict rather than clear(): an answer being written from the old one (another
        # thread) still finds its texts.
        texts = _KEPT[zone.key] = {}
    return texts
