"""Bookings per second through the whole stack: gunicorn (4 workers) on PostgreSQL.

Phase 1: 32 clients book distinct free slots for 20 s. Phase 2: all 32 race for the same
slots, one slot at a time. Then the database is checked for overlapping live appointments.

Before phase 1, a warm-up books WARM_UP slots and the tables' statistics are gathered
(`ANALYZE`), as autovacuum keeps them in a clinic's database. Without it, the first statements
of each connection are planned on an empty table; PostgreSQL keeps such a plan of a prepared
statement for the connection's life (until statistics change), and phase 1, which grows the
table from nothing to thousands of visits in seconds, a year of a clinic's bookings, would
measure sequential scans that a clinic's database does not make (`tests/servers.py`,
`gather_statistics`).

Run: make bench-booking (starts a throwaway PostgreSQL), or with TEST_POSTGRES_URL or
DATABASE_URL set to a PostgreSQL server: python bench/booking.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.plain_http import exchange  # noqa: E402
from tests.servers import (  # noqa: E402
    clinic_app,
    fresh_postgres_database,
    gather_statistics,
    running_gunicorn,
)

CLIENTS = 32
SECONDS = 20
WARM_UP = 320
RACED_SLOTS = 30
THERAPISTS = 20
SECRET = "bench-secret-key"


def clinic_file() -> str:
    lines = [
        "[clinic]",
        'name = "Benchmark Clinic"',
        'timezone = "America/Detroit"',
        'email = "frontdesk@clinic.example"',
        'phone = "+1 586 555 0100"',
        "slot_step_minutes = 15",
        "",
        "[[services]]",
        'slug = "schedule-a-call"',
        'name = "Schedule a call"',
        'kind = "call"',
        "duration_minutes = 15",
        "min_notice_hours = 2",
        "max_advance_days = 60",
    ]
    for number in range(THERAPISTS):
        lines += [
            "",
            "[[therapists]]",
            f'slug = "therapist-{number:02d}"',
            f'name = "Therapist {number:02d}"',
            'disciplines = ["PT"]',
            'services = ["schedule-a-call"]',
            *(f'hours.{day} = ["08:00-16:00"]' for day in ("mon", "tue", "wed", "thu", "fri")),
        ]
    return "\n".join(lines) + "\n"


def prepare_database(server_url: str) -> str:
    url = fresh_postgres_database(server_url, "booking_bench")
    with clinic_app(url, clinic_file(), secret_key=SECRET):
        pass
    return url


def free_slots(base_url: str) -> list[tuple[str, str]]:
    from datetime import date

    first = date.today() + timedelta(days=2)  # noqa: DTZ011
    slots = []
    for offset in (0, 31):
        start = first + timedelta(days=offset)
        answer = requests.get(
            f"{base_url}/api/v1/availability",
            params={"service": "schedule-a-call", "start": str(start),
                    "end": str(start + timedelta(days=28))},
            timeout=60,
        ).json()
        slots += [(slot["start"], slot["therapist"]) for slot in answer["slots"]]
    return slots


def booking(start: str, therapist: str, number: int) -> dict:
    return {
        "service": "schedule-a-call",
        "start": start,
        "therapist": therapist,
        "patient": {"name": f"Bench Patient {number}", "email": f"bench{number}@example.com",
                    "phone": "+1 586 555 0100"},  # a call needs the number to call
    }


def post_json(host: str, port: int, path: str, body: dict) -> int:
    """One POST on a fresh connection (gunicorn's sync workers close each one): the status."""
    return exchange(host, port, "POST", path, json.dumps(body).encode(),
                    {"Content-Type": "application/json"})[0]


def distinct_phase(
    base_url: str, slots: list[tuple[str, str]], seconds: float = SECONDS, first_patient: int = 0
) -> tuple[list[float], dict]:
    host, port = base_url.removeprefix("http://").split(":")
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int):
        for number, (start, therapist) in enumerate(slots[index::CLIENTS]):
            if time.monotonic() >= deadline:
                return
            began = time.perf_counter()
            status = post_json(host, int(port), "/api/v1/appointments",
                               booking(start, therapist, first_patient + index * 10_000 + number))
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    return latencies, statuses


def racing_phase(base_url: str, slots: list[tuple[str, str]]) -> list[int]:
    winners_per_slot = []
    for start, therapist in slots[-RACED_SLOTS:]:
        gate = threading.Barrier(CLIENTS)

        def client(index: int, start=start, therapist=therapist, gate=gate):
            gate.wait()
            return requests.post(f"{base_url}/api/v1/appointments",
                                 json=booking(start, therapist, 900_000 + index),
                                 timeout=60).status_code

        with ThreadPoolExecutor(CLIENTS) as pool:
            codes = list(pool.map(client, range(CLIENTS)))
        winners_per_slot.append(codes.count(201))
    return winners_per_slot


def overlapping_live_appointments(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(text(
            "SELECT count(*) FROM appointments a JOIN appointments b "
            "ON a.therapist_id = b.therapist_id AND a.id < b.id "
            "AND a.status <> 'cancelled' AND b.status <> 'cancelled' "
            "AND a.start_at < b.busy_until AND b.start_at < a.busy_until"
        )).scalar()
        total = connection.execute(text("SELECT count(*) FROM appointments")).scalar()
    engine.dispose()
    print(f"appointments in the table: {total}")
    return count


def main() -> None:
    server = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        sys.exit("set TEST_POSTGRES_URL or DATABASE_URL to a PostgreSQL server (or: make bench)")
    url = prepare_database(server)
    with running_gunicorn(url, workers=4, secret_key=SECRET) as base_url:
        slots = free_slots(base_url)
        print(f"gunicorn 4 workers on PostgreSQL; {CLIENTS} clients; {len(slots)} free slots")
        _, warm_up = distinct_phase(base_url, slots[:WARM_UP], seconds=60)
        gather_statistics(url)
        print(f"warm-up: {warm_up.get(201, 0)} booked, then ANALYZE")
        began = time.monotonic()
        latencies, statuses = distinct_phase(base_url, slots[WARM_UP: -RACED_SLOTS],
                                             first_patient=500_000)
        elapsed = time.monotonic() - began
        booked = statuses.get(201, 0)
        quantiles = statistics.quantiles(latencies, n=100)
        print(f"distinct slots, {elapsed:.1f} s: {booked} booked, {booked / elapsed:.0f} "
              f"bookings/s; p50 {quantiles[49] * 1000:.1f} ms, p95 {quantiles[94] * 1000:.1f} ms;"
              f" statuses {dict(sorted(statuses.items()))}")
        winners = racing_phase(base_url, slots)
        print(f"racing: {CLIENTS} clients for each of {RACED_SLOTS} slots; winners per slot: "
              f"{sorted(set(winners))} (must be [1])")
    overlaps = overlapping_live_appointments(url)
    print(f"overlapping live appointments: {overlaps} (must be 0)")
    print("target: 400 bookings/s or more")


if __name__ == "__main__":
    main()
