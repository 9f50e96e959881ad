"""How long a month of free slots takes for a busy clinic: 20 therapists, 5,000 appointments.

Run from the repository root: python bench/availability.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from booking.rules.availability import (  # noqa: E402  (the repository root must be importable first)
    BookingRules,
    Interval,
    TherapistCalendar,
    TimeOff,
    WorkingHours,
    free_slots,
)

SEED = 20260
ZONE = ZoneInfo("America/Detroit")
NOW = datetime(2026, 10, 19, 11, 37, 12, 345678, tzinfo=UTC)  # the month ahead spans fall back
THERAPISTS = 20
APPOINTMENTS = 5_000
HORIZON_DAYS = 90
DAYS_SHOWN = 31
RUNS = 50
TARGET_MEDIAN_MS = 20.0

VISIT = timedelta(minutes=45)
BUFFER = timedelta(minutes=15)
STEP_MINUTES = 15
RULES = BookingRules(
    duration=VISIT,
    buffer_after=BUFFER,
    min_notice=timedelta(hours=24),
    max_advance=timedelta(days=60),
    slot_step_minutes=STEP_MINUTES,
)

# Two shapes of day, so windows differ between therapists as they do in a real clinic.
DAY_SHAPES = [
    ((time(8, 0), time(12, 0)), (time(13, 0), time(17, 0))),
    ((time(9, 0), time(13, 0)), (time(13, 30), time(17, 30))),
]


def build_clinic(seed: int = SEED) -> list[TherapistCalendar]:
    rng = random.Random(seed)
    today = NOW.astimezone(ZONE).date()
    horizon = [today + timedelta(days=n) for n in range(HORIZON_DAYS)]
    workdays = [day for day in horizon if day.weekday() < 5]

    shapes = [DAY_SHAPES[n % len(DAY_SHAPES)] for n in range(THERAPISTS)]
    time_off: list[list[TimeOff]] = []
    days_off: list[set[date]] = []
    for _ in range(THERAPISTS):
        away = set(rng.sample(workdays, 3))
        periods = [
            TimeOff(datetime.combine(day, time(0)), datetime.combine(day + timedelta(1), time(0)))
            for day in sorted(away)
        ]
        dentist = rng.choice(workdays)
        periods.append(
            TimeOff(datetime.combine(dentist, time(14, 0)), datetime.combine(dentist, time(16, 30)))
        )
        time_off.append(periods)
        days_off.append(away)

    # Appointments at random grid times inside hours, never overlapping the same therapist's.
    taken: list[set[datetime]] = [set() for _ in range(THERAPISTS)]
    busy: list[list[Interval]] = [[] for _ in range(THERAPISTS)]
    span = VISIT + BUFFER
    placed = 0
    while placed < APPOINTMENTS:
        who = placed % THERAPISTS
        day = rng.choice(workdays)
        if day in days_off[who]:
            continue
        opens, closes = rng.choice(shapes[who])
        first = opens.hour * 60 + opens.minute
        last = closes.hour * 60 + closes.minute - 45
        minute = first + STEP_MINUTES * rng.randrange((last - first) // STEP_MINUTES + 1)
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=ZONE)
        start = local.astimezone(UTC)
        # Spans are 60 minutes on a 15-minute grid: these are the starts that would overlap.
        clashes = {start + timedelta(minutes=m) for m in range(-45, 60, STEP_MINUTES)}
        if clashes & taken[who]:
            continue
        taken[who].add(start)
        busy[who].append(Interval(start, start + span))
        placed += 1

    for spans in busy:
        rng.shuffle(spans)  # the database hands them over in no particular order
    return [
        TherapistCalendar(
            therapist=f"therapist-{n + 1:02d}",
            hours=tuple(
                WorkingHours(weekday, opens, closes)
                for weekday in range(5)
                for opens, closes in shapes[n]
            ),
            time_off=tuple(time_off[n]),
            busy=tuple(busy[n]),
        )
        for n in range(THERAPISTS)
    ]


def main() -> int:
    calendars = build_clinic()
    first_day = NOW.astimezone(ZONE).date()
    last_day = first_day + timedelta(days=DAYS_SHOWN - 1)

    def run():
        return free_slots(calendars, RULES, ZONE, first_day, last_day, NOW)

    for _ in range(5):
        slots = run()
    timings = []
    for _ in range(RUNS):
        started = clock.perf_counter()
        run()
        timings.append((clock.perf_counter() - started) * 1000)
    timings.sort()
    median = statistics.median(timings)
    p95 = timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)]

    appointments = sum(len(calendar.busy) for calendar in calendars)
    print(
        f"clinic: {len(calendars)} therapists, {appointments} appointments over {HORIZON_DAYS} days"
    )
    print(f"query: {DAYS_SHOWN} days from {first_day} ({ZONE.key}), {RUNS} runs after warm-up")
    print(f"slots: {len(slots)}")
    print(f"median: {median:.2f} ms")
    print(f"p95: {p95:.2f} ms")
    verdict = "met" if median <= TARGET_MEDIAN_MS else "MISSED"
    print(f"target: median <= {TARGET_MEDIAN_MS:.0f} ms ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
