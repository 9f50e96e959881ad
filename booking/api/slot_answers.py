"""The slots of an availability answer, written as JSON straight from the free starts.

An answer holds hundreds of slots, and building a `Slot`, a datetime and a dict for each, then
encoding them, had cost more than finding them. Each start's opening of its slot objects
(`{"start":"<local time>","end":"<local time>","therapist":"`) is written once per zone and
visit length, in C by orjson (`isoformat()` in the answer's zone), and kept for the process's
later answers: the same days' times are asked for again and again, and a start's local time
never changes, so nothing kept goes stale. The store is bounded, and emptied when full.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson

from booking.rules.availability import FreeStarts

# Openings kept per (zone, visit length): the zones are the clinic's and the few that patients'
# browsers send, the lengths the services'; a zone's starts for the whole booking window of a
# clinic open every day fit in a few thousand, and the bounds keep the store small whatever
# is asked for.
_MOST_KINDS = 16
_MOST_OPENINGS_PER_KIND = 10_000
_KEPT: dict[tuple[str, int], dict[int, bytes]] = {}
# Each therapist's slug, closing their slot objects: `ana"}` (the clinic's therapists: few).
_MOST_CLOSINGS = 1_000
_CLOSINGS: dict[str, bytes] = {}


def slots_json(starts: FreeStarts, visit_minutes: int, zone: ZoneInfo) -> orjson.Fragment:
    """The answer's `slots`: a JSON array of {"start", "end", "therapist"}, times local to
    `zone` with their offset, in the order of the starts (each start's therapists in order)."""
    openings, closings = _openings_for(zone, visit_minutes), _closings()
    try:
        objects = [openings[start] + closings[slug] for start, slugs in starts for slug in slugs]
    except KeyError:  # starts or therapists not seen before: written once, then kept
        _keep(starts, openings, closings, visit_minutes * 60, zone)
        objects = [openings[start] + closings[slug] for start, slugs in starts for slug in slugs]
    return orjson.Fragment(b"[" + b",".join(objects) + b"]")


def _keep(
    starts: FreeStarts, openings: dict[int, bytes], closings: dict[str, bytes],
    visit_seconds: int, zone: ZoneInfo,
) -> None:
    for start, slugs in starts:
        if start not in openings:
            openings[start] = b'{"start":%s,"end":%s,"therapist":"' % (
                orjson.dumps(datetime.fromtimestamp(start, UTC).astimezone(zone)),
                orjson.dumps(datetime.fromtimestamp(start + visit_seconds, UTC).astimezone(zone)),
            )
        for slug in slugs:
            if slug not in closings:
                closings[slug] = orjson.dumps(slug)[1:] + b"}"


def _closings() -> dict[str, bytes]:
    global _CLOSINGS
    if len(_CLOSINGS) > _MOST_CLOSINGS:
        _CLOSINGS = {}  # a new dict, as for the openings below
    return _CLOSINGS


def _openings_for(zone: ZoneInfo, visit_minutes: int) -> dict[int, bytes]:
    kind = (zone.key, visit_minutes)
    openings = _KEPT.get(kind)
    if openings is None or len(openings) > _MOST_OPENINGS_PER_KIND:
        if len(_KEPT) >= _MOST_KINDS:
            _KEPT.clear()
        # A new dict rather than clear(): an answer being written from the old one (another
        # thread) still finds its openings.
        openings = _KEPT[kind] = {}
    return openings
