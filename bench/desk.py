"""The back office's two heaviest reads, in the app (no HTTP server), on SQLite and PostgreSQL:
the board's JSON for a day of 20 therapists with 40 visits each (a quarter of them in weekly
series of 12, the short visits asking for a form and a therapist's clearance, some signed and
cleared), and the admin's dashboard over a year of 30,000 visits. Prints the medians.
Targets: board JSON under 30 ms, dashboard under 200 ms.

Run: make bench-desk (starts a throwaway PostgreSQL), or with TEST_POSTGRES_URL or
DATABASE_URL set to a PostgreSQL server: python bench/desk.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text  # noqa: E402

from tests.servers import clinic_app, fresh_postgres_database  # noqa: E402

THERAPISTS = 20
DAY_VISITS = 40
YEAR_VISITS = 30_000
PATIENTS = 3_000
ROUNDS = 30  # requests timed of each, by default
SECRET = "bench-secret-key"
ZONE = ZoneInfo("America/Detroit")


def clinic_file() -> str:
    lines = [
        "[clinic]", 'name = "Benchmark Clinic"', 'timezone = "America/Detroit"',
        'email = "frontdesk@clinic.example"', 'phone = "+1 586 555 0100"',
        "slot_step_minutes = 15", "",
        "[[services]]", 'slug = "short-visit"', 'name = "Short visit"', 'kind = "treatment"',
        "duration_minutes = 15", "requires_clearance = true", 'forms = ["screening"]', "",
        "[[services]]", 'slug = "evaluation"', 'name = "Evaluation"', 'kind = "evaluation"',
        "duration_minutes = 15",
    ]
    for number in range(THERAPISTS):
        lines += ["", "[[therapists]]", f'slug = "therapist-{number}"',
                  f'name = "Therapist {number}"', 'disciplines = ["PT"]',
                  'services = ["short-visit", "evaluation"]']
        lines += [f'hours.{day} = ["08:00-18:00"]' for day in ("mon", "tue", "wed", "thu", "fri")]
    lines += ["", "[[forms]]", 'slug = "screening"', 'title = "Screening"', 'version = "1"',
              'consent = "I consent."',
              'questions = [{ key = "pregnant", text = "Pregnant?", type = "yes_no", '
              'review_if = "yes" }]']
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
    seed_courses_and_forms(first)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # As autovacuum would soon after such a load: the planner's statistics of the tables.
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def seed_courses_and_forms(first: datetime) -> None:
    """A quarter of the day's visits open a weekly series of 12 (the 11 others in the weeks
    after); every other patient signed the screening, every third was cleared."""
    from booking.extensions import db
    from booking.models import (
        Appointment,
        AppointmentSeries,
        Clearance,
        Service,
        SignedForm,
        new_calendar_uid,
    )

    day_visits = db.session.execute(
        select(Appointment.id, Appointment.therapist_id, Appointment.patient_id,
               Appointment.service_id, Appointment.start_at)
        .where(Appointment.start_at >= first, Appointment.start_at < first + timedelta(days=1))
    ).all()
    later = []
    for visit in day_visits[::4]:
        series = AppointmentSeries(service_id=visit.service_id, therapist_id=visit.therapist_id,
                                   patient_id=visit.patient_id, weekdays=["mon"],
                                   visit_count=12, booked_by="bench")
        db.session.add(series)
        db.session.flush()
        db.session.execute(Appointment.__table__.update()
                           .where(Appointment.id == visit.id).values(series_id=series.id))
        for week in range(1, 12):
            start = visit.start_at + timedelta(days=7 * week)
            later.append({
                "calendar_uid": new_calendar_uid(), "sequence": 0, "status": "confirmed",
                "service_id": visit.service_id, "therapist_id": visit.therapist_id,
                "patient_id": visit.patient_id, "series_id": series.id, "start_at": start,
                "end_at": start + timedelta(minutes=15),
                "busy_until": start + timedelta(minutes=15), "notes": "", "booked_by": "bench",
                "evaluation_override": "", "cancel_reason": "",
                "created_at": first, "updated_at": first,
            })
    db.session.execute(insert(Appointment), later)
    patients = sorted({visit.patient_id for visit in day_visits})
    db.session.execute(insert(SignedForm), [
        {"patient_id": patient, "form_slug": "screening", "version": "1",
         "answers": {"pregnant": "no"}, "signed_by": "Patient", "status": "complete",
         "signed_at": first - timedelta(days=2)}
        for patient in patients[::2]
    ])
    service = db.session.scalars(select(Service.id).where(Service.slug == "short-visit")).one()
    db.session.execute(insert(Clearance), [
        {"patient_id": patient, "service_id": service, "decision": "cleared", "note": "",
         "decided_by": "staff:bench", "decided_at": first - timedelta(days=3)}
        for patient in patients[::3]
    ])


def measure(app, shown: date, options) -> tuple[float, float | None, dict]:
    from booking.extensions import db
    from booking.models import StaffUser, hash_password
    from tests.desk_staff import signed_in

    admin = StaffUser(email="admin@clinic.example", password_hash=hash_password("x" * 12),
                      role="admin", active=True)
    db.session.add(admin)
    db.session.commit()
    client = signed_in(app, admin)
    board = f"/desk/board/events?start={shown}&end={shown + timedelta(days=1)}"

    cpu: dict[str, list[float]] = {}

    def timed(path: str) -> float:
        began, began_cpu = time.perf_counter(), time.process_time()
        answer = client.get(path)
        elapsed = time.perf_counter() - began
        cpu.setdefault(path, []).append(time.process_time() - began_cpu)
        assert answer.status_code == 200, (path, answer.status_code)
        return elapsed

    for _ in range(3):
        timed(board), options.board_only or timed("/desk/dashboard")
    shown_visits = [event["extendedProps"] for event in client.get(board).json["events"]
                    if "extendedProps" in event]
    found = {"visits": len(shown_visits),
             "in series": sum(bool(visit.get("series")) for visit in shown_visits),
             "with forms": sum(bool(visit.get("forms")) for visit in shown_visits),
             "cleared": sum(visit.get("clearance") == "cleared" for visit in shown_visits)}
    if options.profile:
        profile(lambda: timed(board))
    cpu.clear()
    board_times = [timed(board) for _ in range(options.rounds)]
    # This process's CPU time: what the answer costs here whatever else the machine does
    # (the database server's share, on PostgreSQL, is not in it).
    found["ms of CPU here"] = round(statistics.median(cpu[board]) * 1000, 1)
    dashboard_times = [] if options.board_only else [
        timed("/desk/dashboard") for _ in range(options.rounds)]
    return (statistics.median(board_times),
            statistics.median(dashboard_times) if dashboard_times else None, found)


def profile(request) -> None:
    """Where the board's answer spends its time: the functions of most cumulative time, and
    the statements it sends."""
    import cProfile
    import pstats

    from sqlalchemy import event

    from booking.extensions import db

    sent: list[list] = []

    def began(_connection, _cursor, statement, *_):
        sent.append([statement, time.perf_counter()])

    def ended(*_):
        sent[-1][1] = time.perf_counter() - sent[-1][1]

    event.listen(db.engine, "before_cursor_execute", began)
    event.listen(db.engine, "after_cursor_execute", ended)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        request()
    profiler.disable()
    event.remove(db.engine, "before_cursor_execute", began)
    event.remove(db.engine, "after_cursor_execute", ended)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(20)
    stats.sort_stats("tottime").print_stats(25)
    count = len(sent) // 10
    print(f"{count} statements a request, with their median time:")
    for index in range(count):
        took = statistics.median(sent[index + count * n][1] for n in range(10))
        print(f"  {took * 1000:7.2f} ms", " ".join(sent[index][0].split())[:140])


def run(name: str, url: str, shown: date, options) -> None:
    with clinic_app(url, clinic_file(), secret_key=SECRET) as app:
        seed(shown)
        board, dashboard, found = measure(app, shown, options)
    print(f"{name}: board JSON ({', '.join(f'{count} {what}' for what, count in found.items())}"
          f"), median of {options.rounds}: {board * 1000:.1f} ms (target under 30 ms)"
          + ("" if dashboard is None else f"; dashboard over {YEAR_VISITS:,} visits: "
             f"{dashboard * 1000:.1f} ms (target under 200 ms)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="requests timed of each")
    parser.add_argument("--board-only", action="store_true", help="leave out the dashboard")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--profile", action="store_true",
                        help="print where the board's answer spends its time first")
    options = parser.parse_args()
    shown = datetime.now(ZONE).date()
    while shown.weekday() >= 5:
        shown += timedelta(days=1)
    if options.database != "postgresql":
        with tempfile.TemporaryDirectory() as folder:
            run("SQLite", f"sqlite:///{folder}/bench.db", shown, options)
    if options.database == "sqlite":
        return
    server = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if server.startswith("postgres"):
        run("PostgreSQL", fresh_postgres_database(server, "booking_bench_desk"), shown, options)
    else:
        print("PostgreSQL: skipped (set TEST_POSTGRES_URL or DATABASE_URL, or: make bench-desk)")


if __name__ == "__main__":
    main()
