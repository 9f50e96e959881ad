"""The day and week views laid out: columns of 5-minute rows, clinic wall clock.

Pure: hours, time off and visits in, blocks with a first row and a row count out. The page
places each block with the classes row-N and span-N of static/desk.css (the CSP allows no
inline styles). Working hours are shaded blocks, free time inside them is a labelled gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ROW_MINUTES = 5
ROWS_PER_DAY = 24 * 60 // ROW_MINUTES
# Free time shorter than this is not worth a label.
SHORTEST_GAP_MINUTES = 15
DEFAULT_FIRST_HOUR, DEFAULT_LAST_HOUR = 8, 18


@dataclass(frozen=True)
class Block:
    """Something in a column: the shaded hours, time off, free time, or a visit."""

    kind: str  # hours | time-off | gap | visit
    first_minute: int  # minutes after midnight, clinic wall clock
    last_minute: int
    label: str = ""
    visit: object | None = None  # the Appointment, for kind == "visit"
    row: int = 0  # filled in by the grid: first grid row (1-based)
    span: int = 0

    @property
    def starts(self) -> str:
        return f"{self.first_minute // 60:02d}:{self.first_minute % 60:02d}"


@dataclass
class Column:
    title: str
    day: date
    key: str  # the therapist's slug in the day view, the date in the week view
    therapist: str = ""  # the therapist's slug
    blocks: list[Block] = field(default_factory=list)
    cancelled: list = field(default_factory=list)


@dataclass(frozen=True)
class Grid:
    rows: int
    hour_marks: list[tuple[int, str]]  # (row, "09:00")
    columns: list[Column]


def minute_of_day(instant: datetime, zone: ZoneInfo, day: date) -> int:
    """Wall-clock minutes after `day`'s midnight; clipped to the day for visits crossing it."""
    local = instant.astimezone(zone)
    if local.date() < day:
        return 0
    if local.date() > day:
        return 24 * 60
    return local.hour * 60 + local.minute


def _minutes(wall: time) -> int:
    return wall.hour * 60 + wall.minute


def day_column(
    title: str,
    key: str,
    therapist: str,
    day: date,
    zone: ZoneInfo,
    hours: Sequence[tuple[time, time]],
    time_off: Sequence[tuple[datetime, datetime, str]],
    visits: Sequence,
) -> Column:
    """One therapist's day: `hours` that weekday, `time_off` (naive local), visits (any status)."""
    column = Column(title=title, day=day, key=key, therapist=therapist)
    midnight = datetime.combine(day, time())
    blocked: list[tuple[int, int]] = []
    for start, end in hours:
        column.blocks.append(Block("hours", _minutes(start), _minutes(end)))
    for starts, ends, reason in time_off:
        first = max(0, int((starts - midnight).total_seconds() // 60))
        last = min(24 * 60, int((ends - midnight).total_seconds() // 60))
        if first < last:
            column.blocks.append(Block("time-off", first, last, reason or "Time off"))
            blocked.append((first, last))
    live = []
    for visit in visits:
        if visit.status == "cancelled":
            column.cancelled.append(visit)
            continue
        first = minute_of_day(visit.start_at, zone, day)
        last = max(first + ROW_MINUTES, minute_of_day(visit.end_at, zone, day))
        live.append(Block("visit", first, last, visit=visit))
        blocked.append((first, minute_of_day(visit.busy_until, zone, day)))
    for start, end in hours:
        for first, last in _free_parts(_minutes(start), _minutes(end), blocked):
            if last - first >= SHORTEST_GAP_MINUTES:
                column.blocks.append(Block("gap", first, last, f"free {_length(last - first)}"))
    column.blocks.extend(live)  # last, so visits sit above the shading
    return column


def _free_parts(first: int, last: int, blocked: list[tuple[int, int]]):
    cursor = first
    for start, end in sorted(blocked):
        if end <= cursor or start >= last:
            continue
        if start > cursor:
            yield cursor, start
        cursor = max(cursor, end)
    if cursor < last:
        yield cursor, last


def _length(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def grid_of(columns: list[Column]) -> Grid:
    """Rows from the earliest hour anything starts to the latest hour anything ends."""
    firsts = [block.first_minute for column in columns for block in column.blocks]
    lasts = [block.last_minute for column in columns for block in column.blocks]
    first_hour = min([DEFAULT_FIRST_HOUR, *(minute // 60 for minute in firsts)])
    last_hour = max([DEFAULT_LAST_HOUR, *(-(-minute // 60) for minute in lasts)])
    offset = first_hour * 60
    rows = (last_hour - first_hour) * 60 // ROW_MINUTES
    for column in columns:
        column.blocks = [
            Block(
                block.kind,
                block.first_minute,
                block.last_minute,
                block.label,
                block.visit,
                row=(block.first_minute - offset) // ROW_MINUTES + 1,
                span=max(1, -(-(block.last_minute - block.first_minute) // ROW_MINUTES)),
            )
            for block in column.blocks
        ]
    marks = [
        ((hour - first_hour) * 60 // ROW_MINUTES + 1, f"{hour:02d}:00")
        for hour in range(first_hour, last_hour)
    ]
    return Grid(rows=rows, hour_marks=marks, columns=columns)


def week_days(day: date) -> list[date]:
    monday = day - timedelta(days=day.weekday())
    return [monday + timedelta(days=offset) for offset in range(7)]
