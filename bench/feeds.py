"""A busy therapist's calendar feed over HTTP: gunicorn on PostgreSQL, 5,000 visits in it.

Measures the full answer (the feed built from scratch each time: no cache anywhere) and the
answer to a subscriber whose copy is current (If-None-Match: 304), and prints the medians.
Targets: full build at most 150 ms, 304 at most 5 ms.

Run: make bench-feeds (starts a throwaway PostgreSQL), or with TEST_POSTGRES_URL or
DATABASE_URL set to a PostgreSQL server: python bench/feeds.py
"""

from __future__ import annotations

import http.client
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from tests.servers import (  # noqa: E402
    clinic_app,
    fresh_postgres_database,
    running_gunicorn,
)

VISITS = 5_000
PATIENTS = 1_200
FULL_ROUNDS = 30
CONDITIONAL_ROUNDS = 300
SECRET = "bench-secret-key"

CLINIC_FILE = """
[clinic]
name = "Benchmark Clinic"
timezone = "America/Detroit"
email = "frontdesk@clinic.example"
phone = "+1 586 555 0100"
address = "1 Benchmark Way, Clinton Township, MI"

[[services]]
slug = "dry-needling"
name = "Dry needling session"
kind = "treatment"
duration_minutes = 45
buffer_after_minutes = 15

[[therapists]]
slug = "busy-therapist"
name = "Busy Therapist, PT, DPT"
services = ["dry-needling"]
hours.mon = ["08:00-17:00"]
"""


def prepare(server_url: str) -> tuple[str, str]:
    """A fresh database with the clinic and 5,000 visits; returns (url, feed path)."""
    url = fresh_postgres_database(server_url, "booking_bench_feeds")

    from booking.calendars.feed_tokens import feed_url_for
    from booking.extensions import db
    from booking.models import Appointment, Patient, Service, Therapist, new_calendar_uid

    with clinic_app(url, CLINIC_FILE, secret_key=SECRET):
        therapist = db.session.scalars(select(Therapist)).one()
        service = db.session.scalars(select(Service)).one()
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        db.session.execute(
            insert(Patient),
            [
                {"identity": f"patient{n}@example.com|bench patient {n}",
                 "name": f"Bench Patient {n}", "email": f"patient{n}@example.com",
                 "phone": "", "guardian_name": "", "created_at": now, "updated_at": now}
                for n in range(PATIENTS)
            ],
        )
        patient_ids = list(db.session.scalars(select(Patient.id).order_by(Patient.id)))
        first = now - timedelta(days=25)
        rows = []
        for n in range(VISITS):
            # Nine one-hour visits a day, every day, from 25 days ago on: never overlapping.
            start = first + timedelta(days=n // 9, hours=n % 9)
            cancelled = n % 20 == 0
            rows.append({
                "calendar_uid": new_calendar_uid(), "sequence": n % 3,
                "status": "cancelled" if cancelled else "confirmed",
                "service_id": service.id, "therapist_id": therapist.id,
                "patient_id": patient_ids[n % PATIENTS],
                "start_at": start, "end_at": start + timedelta(minutes=45),
                "busy_until": start + timedelta(minutes=60), "notes": "",
                "booked_by": "bench", "evaluation_override": "", "cancel_reason": "",
                "created_at": now - timedelta(days=30), "updated_at": now - timedelta(days=1),
            })
        db.session.execute(insert(Appointment), rows)
        db.session.commit()
        path = urlsplit(feed_url_for(therapist)).path
    return url, path


def get(host: str, port: int, path: str, headers: dict) -> tuple[float, int, dict, bytes]:
    """One GET on a fresh connection (gunicorn's sync workers close each one)."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        began = time.perf_counter()
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        elapsed = time.perf_counter() - began
        return elapsed, answer.status, dict(answer.getheaders()), body
    finally:
        connection.close()


def main() -> None:
    server = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        sys.exit("set TEST_POSTGRES_URL or DATABASE_URL to a PostgreSQL server (or: make bench)")
    url, path = prepare(server)
    with running_gunicorn(url, workers=2, secret_key=SECRET) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        for _ in range(5):  # warm both workers: imports, connections, the zone description
            _, status, headers, body = get(host, int(port), path, {})
        assert status == 200, status
        events = body.count(b"BEGIN:VEVENT")
        full = [get(host, int(port), path, {})[0] for _ in range(FULL_ROUNDS)]
        conditional = []
        for _ in range(CONDITIONAL_ROUNDS):
            elapsed, status, _, _ = get(host, int(port), path, {"If-None-Match": headers["ETag"]})
            assert status == 304, status
            conditional.append(elapsed)
        # For scale: the cheapest answer this server gives (one SELECT 1), same connection kind.
        floor = [get(host, int(port), "/healthz", {})[0] for _ in range(CONDITIONAL_ROUNDS)]
    print(f"gunicorn 2 workers on PostgreSQL; one therapist's feed: {events} events, "
          f"{len(body) / 1024:.0f} KiB")
    print(f"full feed (built each time), median of {FULL_ROUNDS}: "
          f"{statistics.median(full) * 1000:.1f} ms (target 150 ms or less)")
    print(f"304 on If-None-Match, median of {CONDITIONAL_ROUNDS}: "
          f"{statistics.median(conditional) * 1000:.2f} ms (target 5 ms or less)")
    print(f"for scale, GET /healthz (one SELECT 1), median of {CONDITIONAL_ROUNDS}: "
          f"{statistics.median(floor) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
