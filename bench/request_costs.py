"""What a request costs around the availability engine: gunicorn (2 workers) on SQLite and on
PostgreSQL, serving the benchmark clinic of bench/availability.py (20 therapists, 5,000 visits).

For each database, in one run: the median round trip of /healthz (the floor: a request that
reads one row), then the medians of availability for one therapist-day, a week and the month
for all therapists (with their ratio to /healthz), 620 therapist-day requests in a row (one
per therapist and day of the month), and bookings of distinct free slots per second with 1
and with 8 clients. Then the therapist-day and the week again, after three years of past
visits (the 5,000 again every 14 weeks back, 55,000 more): a clinic's history must not slow
its availability. Every request goes on a fresh connection, as gunicorn's sync workers
close each one.

Run: make bench (starts a throwaway PostgreSQL), or with TEST_POSTGRES_URL or DATABASE_URL
set to a PostgreSQL server: python bench/request_costs.py [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert  # noqa: E402

import bench.availability as engine_bench  # noqa: E402
from bench.plain_http import exchange  # noqa: E402
from tests.servers import (  # noqa: E402
    clinic_app,
    fresh_postgres_database,
    gather_statistics,
    running_gunicorn,
)

SECRET = "bench-secret-key"
SERVICE = "treatment"
WORKERS = 2
DAYS_IN_MONTH = 31
HEALTH_ROUNDS = 300
DAY_ROUNDS = 300
WEEK_ROUNDS = 60
MONTH_ROUNDS = 30
BOOKINGS_ONE_CLIENT = 150
BOOKINGS_EIGHT_CLIENTS = 600
HISTORY = [timedelta(weeks=14 * n) for n in range(1, 12)]  # three years back
TARGETS = {
    "therapist-day ratio to /healthz": 2.0,
    "620 therapist-days (s)": 1.5,
    "month, all therapists (ms)": 25.0,
}


def clinic_today() -> datetime:
    """Now, for the benchmark clinic: its visits start from today, as the server's clock has it."""
    return datetime.now(UTC)


def clinic_file(calendars) -> str:
    lines = [
        "[clinic]",
        'name = "Benchmark Clinic"',
        f'timezone = "{engine_bench.ZONE.key}"',
        'email = "frontdesk@clinic.example"',
        'phone = "+1 586 555 0100"',
        f"slot_step_minutes = {engine_bench.STEP_MINUTES}",
        "",
        "[[services]]",
        f'slug = "{SERVICE}"',
        'name = "Treatment"',
        'kind = "treatment"',
        f"duration_minutes = {engine_bench.VISIT.seconds // 60}",
        f"buffer_after_minutes = {engine_bench.BUFFER.seconds // 60}",
        f"min_notice_hours = {engine_bench.RULES.min_notice.days * 24}",
        f"max_advance_days = {engine_bench.RULES.max_advance.days}",
        'reminders = ["24h"]',
    ]
    weekdays = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    for calendar in calendars:
        by_day: dict[int, list[str]] = {}
        for hours in calendar.hours:
            by_day.setdefault(hours.weekday, []).append(f"{hours.start:%H:%M}-{hours.end:%H:%M}")
        lines += [
            "",
            "[[therapists]]",
            f'slug = "{calendar.therapist}"',
            f'name = "{calendar.therapist.replace("-", " ").title()}"',
            'disciplines = ["PT"]',
            f'services = ["{SERVICE}"]',
            *(f"hours.{weekdays[day]} = {json.dumps(spans)}" for day, spans in by_day.items()),
            "time_off = [",
            *(
                f'  {{ start = "{period.start:%Y-%m-%dT%H:%M}", end = "{period.end:%Y-%m-%dT%H:%M}"'
                ' },'
                for period in calendar.time_off
            ),
            "]",
        ]
    return "\n".join(lines) + "\n"


def prepare(url: str) -> tuple[list[str], datetime, list[dict]]:
    """The benchmark clinic in this (empty) database; its therapists, its first day, and its
    visits' rows."""
    engine_bench.NOW = clinic_today()
    calendars = engine_bench.build_clinic()
    from booking.extensions import db
    from booking.models import Appointment, Patient, Service, Therapist, new_calendar_uid

    with clinic_app(url, clinic_file(calendars), secret_key=SECRET):
        service = db.session.scalars(db.select(Service)).one()
        therapist_ids = dict(db.session.execute(db.select(Therapist.slug, Therapist.id)).all())
        now = clinic_today()
        patient_ids = db.session.execute(
            insert(Patient).returning(Patient.id),
            [
                {"identity": f"patient{n}@example.com|patient {n}", "name": f"Patient {n}",
                 "email": f"patient{n}@example.com", "created_at": now, "updated_at": now}
                for n in range(500)
            ],
        ).scalars().all()
        rows = []
        for calendar in calendars:
            for number, busy in enumerate(calendar.busy):
                rows.append({
                    "calendar_uid": new_calendar_uid(),
                    "status": "confirmed",
                    "service_id": service.id,
                    "therapist_id": therapist_ids[calendar.therapist],
                    "patient_id": patient_ids[number % len(patient_ids)],
                    "start_at": busy.start,
                    "end_at": busy.end - engine_bench.BUFFER,
                    "busy_until": busy.end,
                    "booked_by": "bench",
                    "created_at": now,
                    "updated_at": now,
                })
        db.session.execute(insert(Appointment), rows)
        db.session.commit()
    first_day = engine_bench.NOW.astimezone(engine_bench.ZONE).date() + timedelta(days=2)
    return [calendar.therapist for calendar in calendars], first_day, rows


def add_history(url: str, visits: list[dict]) -> int:
    """The visits again, HISTORY back, as visits that took place; how many were added."""
    from booking.models import Appointment, new_calendar_uid

    past = [
        {**visit, "calendar_uid": new_calendar_uid(), "status": "completed",
         "start_at": visit["start_at"] - back, "end_at": visit["end_at"] - back,
         "busy_until": visit["busy_until"] - back}
        for back in HISTORY
        for visit in visits
    ]
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(Appointment), past)
    engine.dispose()
    gather_statistics(url)  # as autovacuum soon would
    return len(past)


class Client:
    def __init__(self, base_url: str):
        host, port = base_url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        began = time.perf_counter()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, payload = exchange(
            self.host, self.port, method, path,
            None if body is None else json.dumps(body).encode(), headers,
        )
        return status, payload, time.perf_counter() - began

    def get(self, path: str, **params) -> tuple[int, bytes, float]:
        return self.call("GET", f"{path}?{urlencode(params)}" if params else path)


def availability_path(first, last, therapist: str | None = None) -> str:
    params = {"service": SERVICE, "start": str(first), "end": str(last)}
    if therapist:
        params["therapist"] = therapist
    return f"/api/v1/availability?{urlencode(params)}"


def median_ms(client: Client, paths: list[str]) -> float:
    timings = []
    for path in paths:
        status, _, seconds = client.call("GET", path)
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
        timings.append(seconds * 1000)
    return statistics.median(timings)


def apart(slots: list[dict]) -> list[tuple[str, str]]:
    """Slots no two of which overlap (visit and buffer), so every booking can succeed."""
    span = engine_bench.VISIT + engine_bench.BUFFER
    free_from: dict[str, datetime] = {}
    chosen = []
    for slot in slots:
        start = datetime.fromisoformat(slot["start"])
        if start >= free_from.get(slot["therapist"], start):
            chosen.append((slot["start"], slot["therapist"]))
            free_from[slot["therapist"]] = start + span
    return chosen


def book_distinct(client: Client, slots: list[tuple[str, str]], clients: int) -> tuple[float, dict]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def book(index: int):
        for number, (start, therapist) in enumerate(slots[index::clients]):
            status, _, _ = client.call("POST", "/api/v1/appointments", {
                "service": SERVICE, "start": start, "therapist": therapist,
                "patient": {"name": f"Booking Patient {index}-{number}",
                            "email": f"booking{index}-{number}@example.com"},
            })
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(book, range(clients)))
    elapsed = time.perf_counter() - began
    return statuses.get(201, 0) / elapsed, statuses


def measure(name: str, url: str) -> dict[str, float]:
    therapists, first_day, visits = prepare(url)
    month = [first_day + timedelta(days=n) for n in range(DAYS_IN_MONTH)]
    results: dict[str, float] = {}
    with running_gunicorn(url, workers=WORKERS, secret_key=SECRET) as base_url:
        client = Client(base_url)
        for _ in range(20):  # every worker has read the reference data and warmed its pool
            client.get("/healthz")
            client.call("GET", availability_path(month[0], month[-1]))
        health = median_ms(client, ["/healthz"] * HEALTH_ROUNDS)
        therapist_days = [
            availability_path(day, day, therapist) for day in month for therapist in therapists
        ]
        day = median_ms(client, therapist_days[:DAY_ROUNDS])
        weeks = [availability_path(month[n % 24], month[n % 24 + 6]) for n in range(WEEK_ROUNDS)]
        week = median_ms(client, weeks)
        whole_month = median_ms(client, [availability_path(month[0], month[-1])] * MONTH_ROUNDS)
        began = time.perf_counter()
        median_ms(client, therapist_days)
        in_a_row = time.perf_counter() - began

        _, payload, _ = client.call("GET", availability_path(month[0], month[-1]))
        slots = apart(json.loads(payload)["slots"])
        one_rate, one_statuses = book_distinct(client, slots[:BOOKINGS_ONE_CLIENT], 1)
        eight_rate, eight_statuses = book_distinct(
            client, slots[BOOKINGS_ONE_CLIENT:BOOKINGS_ONE_CLIENT + BOOKINGS_EIGHT_CLIENTS], 8
        )

        past = add_history(url, visits)
        for path in therapist_days[:20]:
            client.call("GET", path)
        day_with_history = median_ms(client, therapist_days[:DAY_ROUNDS])
        week_with_history = median_ms(client, weeks)

    print(f"\n{name}: gunicorn {WORKERS} workers; {len(therapists)} therapists, month from "
          f"{first_day}")
    print(f"  /healthz                          median {health:7.2f} ms")
    for label, value in (("one therapist-day", day), ("a week, all therapists", week),
                         ("the month, all therapists", whole_month)):
        print(f"  {label:<33} median {value:7.2f} ms  ({value / health:4.1f}x /healthz)")
    print(f"  {len(therapist_days)} therapist-day requests in a row  {in_a_row:6.2f} s")
    print(f"  booking, 1 client                 {one_rate:7.1f} bookings/s  "
          f"statuses {dict(sorted(one_statuses.items()))}")
    print(f"  booking, 8 clients                {eight_rate:7.1f} bookings/s  "
          f"statuses {dict(sorted(eight_statuses.items()))}")
    print(f"  after three years of past visits ({past:,} more):")
    for label, value, before in (("one therapist-day", day_with_history, day),
                                 ("a week, all therapists", week_with_history, week)):
        print(f"    {label:<31} median {value:7.2f} ms  ({value / health:4.1f}x /healthz; "
              f"{value / before:4.2f}x without them)")
    results["therapist-day ratio to /healthz"] = day / health
    results["620 therapist-days (s)"] = in_a_row
    results["month, all therapists (ms)"] = whole_month
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    options = parser.parse_args()
    print(f"load average: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    measured: dict[str, dict[str, float]] = {}
    if options.only != "postgresql":
        with tempfile.TemporaryDirectory(prefix="bench-requests-") as folder:
            measured["SQLite"] = measure("SQLite", f"sqlite:///{folder}/booking.db")
    if options.only != "sqlite":
        server = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
        if not server.startswith("postgres"):
            sys.exit("set TEST_POSTGRES_URL or DATABASE_URL to a PostgreSQL server "
                     "(or: make bench-requests)")
        url = fresh_postgres_database(server, "booking_bench_requests")
        measured["PostgreSQL"] = measure("PostgreSQL", url)
    print("\ntargets:")
    for target, limit in TARGETS.items():
        for database, results in measured.items():
            verdict = "met" if results[target] <= limit else "MISSED"
            print(f"  {target} <= {limit:g}: {database} {results[target]:.2f} ({verdict})")
    print(f"load average: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
