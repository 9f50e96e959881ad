"""The back office's two heaviest reads, in the app (no HTTP server), on SQLite and PostgreSQL:
the board's JSON for a day of 20 therapists with 40 visits each, and the admin's dashboard
over a year of 30,000 visits. Prints the medians. Targets: board JSON under 30 ms, dashboard
under 200 ms.

Run: make bench-desk (starts a throwaway PostgreSQL), or with TEST_POSTGRES_URL or
DATABASE_URL set to a PostgreSQL server: python bench/desk.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from tests.servers import clinic_app, fresh_postgres_database  # noqa: E402

THERAPISTS = 20
DAY_VISITS = 40
YEAR_VISITS = 30_000
PATIENTS = 3_000
ROUNDS = 30
SECRET = "bench-secret-key"
ZONE = ZoneInfo("America/Detroit")


def clinic_file() -> str:
    lines = [
        "[clinic]", 'name = "Benchmark Clinic"', 'timezone = "America/Detroit"',
        'email = "frontdesk@clinic.example"', 'phone = "+1 586 555 0100"',
        "slot_step_minutes = 15", "",
        "[[services]]", 'slug = "short-visit"', 'name = "Short visit"', 'kind = "treatment"',
        "duration_minutes = 15", "",
        "[[services]]", 'slug = "evaluation"', 'name = "Evaluation"', 'kind = "evaluation"',
        "duration_minutes = 15",
    ]
    for number in range(THERAPISTS):
        lines += ["", "[[therapists]]", f'slug = "therapist-{number}"',
                  f'name = "Therapist {number}"', 'disciplines = ["PT"]',
                  'services = ["short-visit", "evaluation"]']
        lines += [f'hours.{day} = ["08:00-18:00"]' for day in ("mon", "tue", "wed", "thu", "fri")]
    return "\n".join(lines) + "\n"


def seed(shown: date) -> None:
    """40 visits a therapist on `shown`, and 30,000 over the year before it."""
    from booking.extensions import db
    from booking.models import Appointment, Patient, Service, Therapist, new_calendar_uid

    now = datetime.now(UTC)
    db.session.execute(insert(Patient), [
        {"identity": f"p{n}@example.com|patient {n}", "name": f"Patient {n}",
         "email": f"p{n}@example.com", "phone": "", "guardian_name": "",
         "created_at": now - timedelta(days=n % 365), "updated_at": now}
        for n in range(PATIENTS)
    ])
    patients = list(db.session.scalars(select(Patient.id).order_by(Patient.id)))
    therapists = list(db.session.scalars(select(Therapist.id).order_by(Therapist.id)))
    services = list(db.session.scalars(select(Service.id).order_by(Service.id)))
    statuses = ["completed"] * 8 + ["no_show", "cancelled"]
    rows = []

    def visit(therapist, start, n, status):
        rows.append({
            "calendar_uid": new_calendar_uid(), "sequence": 0, "status": status,
            "service_id": services[n % 7 == 0], "therapist_id": therapist,
            "patient_id": patients[n % PATIENTS], "start_at": start,
            "end_at": start + timedelta(minutes=15), "busy_until": start + timedelta(minutes=15),
            "notes": "", "booked_by": "bench", "evaluation_override": "", "cancel_reason": "",
            "created_at": start - timedelta(days=3), "updated_at": start - timedelta(hours=n % 48),
        })

    first = datetime.combine(shown, datetime.min.time(), tzinfo=ZONE).replace(hour=8)
    for index, therapist in enumerate(therapists):
        for n in range(DAY_VISITS):
            visit(therapist, first + timedelta(minutes=15 * n), index * DAY_VISITS + n,
                  "confirmed")
    # The year: every therapist, the weekdays before `shown`, 15-minute visits from 08:00.
    per_therapist = YEAR_VISITS // THERAPISTS
    for index, therapist in enumerate(therapists):
        day, slot = shown - timedelta(days=1), 0
        for n in range(per_therapist):
            while day.weekday() >= 5:
                day -= timedelta(days=1)
            start = datetime.combine(day, datetime.min.time(), tzinfo=ZONE).replace(hour=8)
            visit(therapist, start + timedelta(minutes=15 * slot), index * per_therapist + n,
                  statuses[n % len(statuses)])
            slot += 1
            if slot == 40:
                day, slot = day - timedelta(days=1), 0
    for chunk in range(0, len(rows), 5_000):
        db.session.execute(insert(Appointment), rows[chunk:chunk + 5_000])
    db.session.commit()


def measure(app, shown: date) -> tuple[float, float, int]:
    from booking.extensions import db
    from booking.models import StaffUser, hash_password
    from tests.desk_staff import signed_in

    admin = StaffUser(email="admin@clinic.example", password_hash=hash_password("x" * 12),
                      role="admin", active=True)
    db.session.add(admin)
    db.session.commit()
    client = signed_in(app, admin)
    board = f"/desk/board/events?start={shown}&end={shown + timedelta(days=1)}"

    def timed(path: str) -> float:
        began = time.perf_counter()
        answer = client.get(path)
        elapsed = time.perf_counter() - began
        assert answer.status_code == 200, (path, answer.status_code)
        return elapsed

    for _ in range(3):
        timed(board), timed("/desk/dashboard")
    events = len(client.get(board).json["events"])
    board_times = [timed(board) for _ in range(ROUNDS)]
    dashboard_times = [timed("/desk/dashboard") for _ in range(ROUNDS)]
    return statistics.median(board_times), statistics.median(dashboard_times), events


def run(name: str, url: str, shown: date) -> None:
    with clinic_app(url, clinic_file(), secret_key=SECRET) as app:
        seed(shown)
        board, dashboard, events = measure(app, shown)
    print(f"{name}: board JSON ({events} visits), median of {ROUNDS}: {board * 1000:.1f} ms "
          f"(target under 30 ms); dashboard over {YEAR_VISITS:,} visits: "
          f"{dashboard * 1000:.1f} ms (target under 200 ms)")


def main() -> None:
    shown = datetime.now(ZONE).date()
    while shown.weekday() >= 5:
        shown += timedelta(days=1)
    with tempfile.TemporaryDirectory() as folder:
        run("SQLite", f"sqlite:///{folder}/bench.db", shown)
    server = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if server.startswith("postgres"):
        run("PostgreSQL", fresh_postgres_database(server, "booking_bench_desk"), shown)
    else:
        print("PostgreSQL: skipped (set TEST_POSTGRES_URL or DATABASE_URL, or: make bench-desk)")


if __name__ == "__main__":
    main()
