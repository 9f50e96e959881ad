"""The days the clinic's calendar holds: from 1900 to 2999.

Every date or instant a person types (an API query, a page's `week` or `day`, a desk form) is
checked against this one range before it is used, so a far date is an answer naming the field
rather than arithmetic that runs off the end of the calendar (year 1 or 9999).
"""

from __future__ import annotations

from datetime import date, datetime

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)
OUT_OF_RANGE = f"must be between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}"


def is_within_calendar(value: date | datetime) -> bool:
    day = value.date() if isinstance(value, datetime) else value
    return FIRST_DAY <= day <= LAST_DAY


def within_calendar(value):
    """A pydantic/WTForms-style check: the value itself, or ValueError naming the range."""
    if not is_within_calendar(value):
        raise ValueError(OUT_OF_RANGE)
    return value
