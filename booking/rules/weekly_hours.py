"""Weekly hours as the clinic writes them: a day's windows, "08:00-12:00", in clinic wall clock.

The clinic file and the back office's hours form both read a day's windows here, with the
same rules and the same messages, and both write them back the same way. A window is an
availability.WorkingHours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import time

from booking.rules.availability import WorkingHours
from booking.rules.shown_values import shown

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = WorkingHours.weekday
WINDOW_EXAMPLE = '"08:00-12:00"'

_WINDOW = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


@dataclass(frozen=True)
class WindowProblem:
    """What is wrong with the window at this index of a day's list."""

    index: int
    message: str


class DayHoursError(ValueError):
    """A day's windows that cannot be worked, with every problem found among them."""

    def __init__(self, problems: Sequence[WindowProblem]):
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = tuple(problems)


def day_windows(weekday: int, written: Sequence[object]) -> list[WorkingHours]:
    """A day's windows as written ("08:00-12:00", ...), in the order given.

    Raises DayHoursError naming each bad window and each overlap, by index.
    """
    problems: list[WindowProblem] = []
    spans: list[tuple[time, time] | None] = []
    for index, item in enumerate(written):
        try:
            spans.append(window_span(item))
        except ValueError as error:
            problems.append(WindowProblem(index, str(error)))
            spans.append(None)
    # Compare each window, in time order, with the latest-ending one before it.
    order = sorted((index for index, span in enumerate(spans) if span), key=spans.__getitem__)
    reach: int | None = None  # index of the window ending latest so far
    for index in order:
        start, end = spans[index]
        if reach is not None and start < spans[reach][1]:
            earlier, later = sorted((reach, index))
            if spans[earlier] == spans[later]:
                reason = f"{shown(written[later])} is listed twice (also at [{earlier}])"
            else:
                reason = f"{shown(written[later])} overlaps {shown(written[earlier])} ([{earlier}])"
            problems.append(WindowProblem(later, reason))
        if reach is None or end > spans[reach][1]:
            reach = index
    if problems:
        raise DayHoursError(problems)
    return [WorkingHours(weekday, start, end) for start, end in spans]


def window_span(written: object) -> tuple[time, time]:
    """ "08:00-12:00" as (start, end). Raises ValueError saying what is wrong.

    The day ends at 23:59: a time of day holds no 24:00.
    """
    match = _WINDOW.fullmatch(written) if isinstance(written, str) else None
    if match is None:
        raise ValueError(f"must be a time window like {WINDOW_EXAMPLE} (got {shown(written)})")
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    for hour, minute, which in ((start_hour, start_minute, "start"), (end_hour, end_minute, "end")):
        if hour == 24 and minute == 0 and which == "end":
            raise ValueError(
                f'"24:00" is not a time of day; end the day at "23:59" (got {shown(written)})'
            )
        if hour > 23 or minute > 59:
            raise ValueError(
                f'"{hour:02d}:{minute:02d}" is not a time of day (00:00 to 23:59) '
                f"(got {shown(written)})"
            )
    start, end = time(start_hour, start_minute), time(end_hour, end_minute)
    if end <= start:
        raise ValueError(f"must end after it starts (got {shown(written)})")
    return start, end


def window_text(window: WorkingHours) -> str:
    return f"{window.start:%H:%M}-{window.end:%H:%M}"


def in_week_order(windows: Iterable[WorkingHours]) -> list[WorkingHours]:
    return sorted(windows, key=lambda window: (window.weekday, window.start, window.end))


def windows_by_day(windows: Iterable[WorkingHours]) -> dict[str, list[str]]:
    """Weekday key -> ["08:00-12:00", ...], weekdays in week order, windows in time order."""
    by_day: dict[str, list[str]] = {}
    for window in in_week_order(windows):
        by_day.setdefault(WEEKDAYS[window.weekday], []).append(window_text(window))
    return by_day


def hours_summary(windows: Iterable[WorkingHours]) -> str:
    """ "mon 08:00-12:00, 13:00-17:00; wed 10:00-18:00", or "" for no hours at all."""
    return "; ".join(f"{day} {', '.join(spans)}" for day, spans in windows_by_day(windows).items())
