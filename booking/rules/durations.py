"""Durations as the clinic writes them: a whole number and one unit, "15m", "2h", "2d".

Reminders and aftercare notes are set this way in the clinic file; the database keeps them
as timedeltas. Reading and writing the text is here, once, with the message for a bad one.
"""

from __future__ import annotations

import re
from datetime import timedelta

from booking.rules.shown_values import shown

# Past a year no reminder makes sense; a bigger number is a typo (and would overflow timedelta).
DURATION_LIMIT = timedelta(days=365)
DURATION_EXAMPLE = '"15m", "2h", "2d"'

_DURATION = re.compile(r"([1-9][0-9]*)([mhd])")
_MINUTES_PER_UNIT = {"m": 1, "h": 60, "d": 24 * 60}
_MINUTE = timedelta(minutes=1)


class DurationError(ValueError):
    """A duration that cannot be read; str() is what to tell the clinic."""


def parse_duration(written: object) -> timedelta:
    """ "15m", "2h" or "2d" as a timedelta. Raises DurationError saying what is wrong."""
    match = _DURATION.fullmatch(written) if isinstance(written, str) else None
    if match is None:
        raise DurationError(
            "must be a duration: a whole number and one unit, m (minutes), h (hours) or "
            f"d (days), like {DURATION_EXAMPLE} (got {shown(written)})"
        )
    amount, unit = match.groups()
    # Compared as whole minutes first: a huge amount would overflow timedelta.
    minutes = int(amount) * _MINUTES_PER_UNIT[unit]
    if minutes > DURATION_LIMIT // _MINUTE:
        raise DurationError(f"{shown(written)} is more than a year")
    return timedelta(minutes=minutes)


def duration_text(duration: timedelta) -> str:
    """A duration as the clinic would write it: whole hours in hours, anything else in minutes.

    Hours rather than days: "48h" reads as the clinic writes reminders ("48 hours before").
    """
    if duration <= timedelta(0) or duration % _MINUTE:
        raise ValueError(f"not a positive whole number of minutes: {duration!r}")
    minutes = duration // _MINUTE
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
