"""Bring the repeating events of a busy calendar to the window they are read for, so reading a
calendar costs in proportion to the window it fills, not to the history of its rules.

A series every minute since 1900 has some 66 million occurrences before today, and dateutil
(under recurring-ical-events) walks through every one of them from DTSTART; a rule whose
BY-parts never match again walks on, day by day, to the year 9999. So each repeating VEVENT
is rewritten before it is expanded:

- DTSTART moves forward by a whole number of the rule's periods (INTERVAL x FREQ, in the
  event's wall clock) to just before the window, which leaves every occurrence from the window
  on where it was. A rule with COUNT and BY-parts cannot be moved by arithmetic: its
  occurrences are counted from DTSTART instead, at most a set number over at most
  COUNTED_YEARS, and it moves to its last occurrence before the window.
- Its occurrences from there to the window's end are counted (stopping past the limits, so a
  flood is refused before anything is expanded), and the rule becomes "this many, from here":
  COUNT ends the expansion at its last occurrence, where UNTIL would let dateutil look on.
- A rule whose BY-parts multiply out to more combinations than a calendar needs is refused.

Counting walks the rule shifted by whole 400-year Gregorian cycles (which keep every weekday
and leap day where it was) to just before the year 9999, so a rule that never matches again
stops there within one cycle. Whatever cannot be read at a bounded cost is SeriesRefused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from math import gcd, prod
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Calendar, Event, vRecur

FIXED_PERIODS = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}
MONTHS_IN_PERIOD = {"MONTHLY": 1, "YEARLY": 12}
BY_PARTS = ("BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO",
            "BYMONTH", "BYSETPOS")
# A moved series starts this far before the window (beyond the event's length), so that its
# DTSTART, an occurrence even where the rule would not have it (RFC 5545), ends before the
# window, and the offset between the event's clock and the clinic's does not matter.
MARGIN = timedelta(days=2)
# A COUNT rule with BY-parts is counted from its DTSTART over at most this many years.
COUNTED_YEARS = 100
GREGORIAN_CYCLE_YEARS = 400
GREGORIAN_CYCLE = timedelta(days=146_097)  # 400 years, 20,871 weeks
LAST_YEAR = 9998  # dateutil gives up after datetime.MAXYEAR (9999)


class SeriesRefused(ValueError):
    """A repeating event that cannot be read at a bounded cost; the message says why."""


def bring_series_to_window(
    calendar: Calendar,
    zone: ZoneInfo,
    window_start: datetime,
    window_end: datetime,
    *,
    max_occurrences: int,
    max_occurrences_per_event: int,
    max_rule_combinations: int,
    max_skipped_occurrences: int,
    deadline: float,
) -> None:
    """Rewrite, in place, each repeating VEVENT of the calendar (see the module's docstring).
    `deadline` is a time.monotonic() instant."""
    counted = 0
    for event in calendar.walk("VEVENT"):
        if time.monotonic() > deadline:
            raise SeriesRefused("it takes too long to read")
        rules = event.get("RRULE")
        if rules is None or event.get("DTSTART") is None:
            continue
        if isinstance(rules, list):
            if len(rules) > 1:
                raise SeriesRefused("an event repeats by more than one RRULE")
            [rules] = rules
        limit = min(max_occurrences_per_event, max_occurrences - counted)
        occurrences = _rewrite(
            event, rules, zone, window_start, window_end,
            limit=limit,
            max_rule_combinations=max_rule_combinations,
            max_skipped_occurrences=max_skipped_occurrences,
            deadline=deadline,
        )
        if occurrences > limit:
            if limit < max_occurrences_per_event:
                raise SeriesRefused(f"it has over {max_occurrences:,} events in the coming months")
            raise SeriesRefused(
                f"one repeating event has over {max_occurrences_per_event:,} occurrences in "
                "the coming months"
            )
        counted += occurrences


def _rewrite(
    event: Event,
    rule: vRecur,
    zone: ZoneInfo,
    window_start: datetime,
    window_end: datetime,
    *,
    limit: int,
    max_rule_combinations: int,
    max_skipped_occurrences: int,
    deadline: float,
) -> int:
    """Rewrite the event to repeat from just before the window to its end; its occurrences
    from the new DTSTART (up to limit + 1)."""
    frequency = str(rule.get("FREQ", [""])[0]).upper()
    if frequency not in FIXED_PERIODS and frequency not in MONTHS_IN_PERIOD:
        raise SeriesRefused(f"a repeating event has no frequency we know ({frequency or 'none'})")
    interval = int(rule.get("INTERVAL", [1])[0])
    if interval < 1:
        raise SeriesRefused("a repeating event has an INTERVAL below 1")
    by_parts = [part for part in BY_PARTS if rule.get(part)]
    combinations = prod(len(rule[part]) for part in by_parts)
    if combinations > max_rule_combinations:
        raise SeriesRefused(
            f"a repeating event lists {combinations:,} combinations of days and times in its "
            f"rule; at most {max_rule_combinations:,} are read"
        )

    start = event["DTSTART"].dt
    start_clock = _wall_clock(start)
    # The latest the series may start from: before the window by the event's length.
    target = _wall_clock(_in_frame_of(start, window_start, zone)) - _length(event) - MARGIN
    end = _wall_clock(_in_frame_of(start, window_end + MARGIN, zone))
    if rule.get("UNTIL"):
        end = min(end, _wall_clock(_in_frame_of(start, _instant(rule["UNTIL"][0], zone), zone)))
    if end < target:
        del event["RRULE"]  # it ended before the window: its DTSTART alone stays, long past
        return 0
    count = int(rule["COUNT"][0]) if rule.get("COUNT") else None
    pattern = vRecur({key: value for key, value in rule.items() if key not in ("COUNT", "UNTIL")})

    moved_to = None
    if count is None:
        moved_to = _whole_periods_on(start_clock, target, frequency, interval)
    elif frequency in FIXED_PERIODS and not by_parts:
        # One occurrence per period: COUNT falls by the periods skipped.
        period = FIXED_PERIODS[frequency] * interval
        skipped = max(0, (target - start_clock) // period)
        if skipped > 0:
            moved_to = start_clock + period * skipped
            count -= skipped
    else:
        walk_end = min(target, start_clock.replace(
            year=min(start_clock.year + COUNTED_YEARS, LAST_YEAR)
        ))
        if walk_end < target:
            raise SeriesRefused(
                f"a repeating event with COUNT starts over {COUNTED_YEARS} years before the "
                "coming months; such a rule is not counted that far"
            )
        counted = 0
        for occurrence in _occurrences(pattern, start_clock, walk_end):
            counted += 1
            moved_to = occurrence  # an occurrence, so the rule's periods stay aligned
            if counted >= count:
                break
            if counted > max_skipped_occurrences or (
                counted % 1000 == 0 and time.monotonic() > deadline
            ):
                raise SeriesRefused(
                    f"a repeating event with COUNT has over {max_skipped_occurrences:,} "
                    "occurrences before the coming months"
                )
        if moved_to is not None:
            count -= counted - 1
    if moved_to is None or moved_to <= start_clock:
        moved_to = start_clock

    occurrences = 0
    if count is None or count > 0:
        for occurrences, _ in enumerate(_occurrences(pattern, moved_to, end), start=1):
            if occurrences > limit or occurrences == count:
                break
            if occurrences % 1000 == 0 and time.monotonic() > deadline:
                raise SeriesRefused("it takes too long to read")
    if moved_to > start_clock:
        _move_start(event, start, moved_to - start_clock)
    if occurrences == 0:
        del event["RRULE"]
    else:
        pattern["COUNT"] = [occurrences]
        event["RRULE"] = pattern
    return occurrences + len(event.get("RDATE") or [])


def _occurrences(pattern: vRecur, start: datetime, end: datetime) -> Iterator[datetime]:
    """The occurrences (wall clock) of the rule from start up to end, walked in the last
    Gregorian cycles before the year 9999 when the rule's periods allow it (see the module's
    docstring), so that the walk ends within a cycle of end even if the rule never matches."""
    frequency = str(pattern["FREQ"][0]).upper()
    interval = int(pattern.get("INTERVAL", [1])[0])
    # The fewest Gregorian cycles that are also whole periods of the rule.
    if frequency in FIXED_PERIODS:
        units_in_cycle = GREGORIAN_CYCLE // FIXED_PERIODS[frequency]
    else:
        units_in_cycle = GREGORIAN_CYCLE_YEARS * 12 // MONTHS_IN_PERIOD[frequency]
    cycle = GREGORIAN_CYCLE_YEARS * (interval // gcd(interval, units_in_cycle))
    cycles = (LAST_YEAR - end.year) // cycle
    shift = cycles * cycle
    rule = rrulestr(pattern.to_ical().decode(), dtstart=start.replace(year=start.year + shift))
    rule = rule.replace(until=end.replace(year=end.year + shift))
    for occurrence in rule:
        yield occurrence.replace(year=occurrence.year - shift)


def _whole_periods_on(
    start: datetime, target: datetime, frequency: str, interval: int
) -> datetime | None:
    """start moved on by the most whole periods that keep it at or before target."""
    if start >= target:
        return None
    if frequency in FIXED_PERIODS:
        period = FIXED_PERIODS[frequency] * interval
        return start + period * ((target - start) // period)
    step = MONTHS_IN_PERIOD[frequency] * interval
    months = (target.year - start.year) * 12 + target.month - start.month
    periods = months // step - 1  # one period short: the day of the month may be later
    while periods > 0:
        month_index = start.month - 1 + periods * step
        try:
            return start.replace(year=start.year + month_index // 12, month=month_index % 12 + 1)
        except ValueError:
            periods -= 1  # the 31st, or 29 February, is not in that month: an earlier one
    return None


def _move_start(event: Event, start: date | datetime, by: timedelta) -> None:
    """Move DTSTART (and DTEND) by this much wall-clock time, keeping their form and zone."""
    for name in ("DTSTART", "DTEND"):
        if event.get(name) is None:
            continue
        value = event[name].dt if name == "DTEND" else start
        moved = _from_wall_clock(_wall_clock(value) + by, value)
        del event[name]
        event.add(name, moved)


def _length(event: Event) -> timedelta:
    start = event["DTSTART"].dt
    if event.get("DTEND") is not None:
        end = event["DTEND"].dt
        if type(end) is type(start) and (
            not isinstance(start, datetime) or (start.tzinfo is None) == (end.tzinfo is None)
        ):
            return max(timedelta(0), _wall_clock(end) - _wall_clock(start))
        return timedelta(days=1)
    if event.get("DURATION") is not None:
        duration = event["DURATION"].dt
        if isinstance(duration, timedelta):
            return max(timedelta(0), duration)
    return timedelta(days=1) if not isinstance(start, datetime) else timedelta(0)


def _in_frame_of(start: date | datetime, moment: datetime, zone: ZoneInfo) -> date | datetime:
    """moment as the kind of value start is: a day or a floating time in the clinic's zone, or
    a time in start's own zone."""
    if not isinstance(start, datetime):
        return moment.astimezone(zone).date()
    if start.tzinfo is None:
        return moment.astimezone(zone).replace(tzinfo=None)
    return moment.astimezone(start.tzinfo)


def _wall_clock(value: date | datetime) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, datetime.min.time())
    return value.replace(tzinfo=None)


def _from_wall_clock(clock: datetime, like: date | datetime) -> date | datetime:
    if not isinstance(like, datetime):
        return clock.date()
    return clock.replace(tzinfo=like.tzinfo)


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, datetime.min.time(), tzinfo=zone)
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value.astimezone(UTC)
