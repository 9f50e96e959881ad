"""A bad day at the clinic: the database restarted under load, the mail server down for hours,
the disk of the SQLite database turned read-only. Requests fail cleanly (503, never 500), the
service recovers by itself, and nothing is half-written, lost or sent twice.

A scheduler killed with SIGKILL mid-batch is tests/test_scheduler.py's
test_a_scheduler_killed_mid_batch_leaves_only_the_message_in_flight_to_go_twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text

from booking import create_app, scheduling
from booking.extensions import db
from booking.models import Notification, utc_now
from booking.patients.manage_links import manage_token_for
from config import TestConfig
from tests.conftest import CLINIC_FILE, local, next_weekday
from tests.postgres_server import restart_postgres, running_postgres
from tests.servers import (
    PROJECT_ROOT,
    clinic_app,
    dispose_engines,
    free_port,
    fresh_postgres_database,
    running_gunicorn,
)

pytestmark = pytest.mark.slow

SECRET = "test-secret-key-not-for-production"
MONDAY = next_weekday(0)


@dataclass(frozen=True)
class Answer:
    began: float  # time.monotonic() when the request left
    endpoint: str
    status: int  # 0: no answer at all (connection refused or reset)
    body: dict | list | None


def ask(method: str, url: str, endpoint: str, **options) -> Answer:
    began = time.monotonic()
    try:
        response = requests.request(method, url, timeout=30, **options)
    except requests.ConnectionError:
        return Answer(began, endpoint, 0, None)
    try:
        body = response.json()
    except ValueError:
        body = None
    return Answer(began, endpoint, response.status_code, body)


def free_call_slots(base_url: str, days: int, first: date | None = None) -> list[dict]:
    first = first or date.today() + timedelta(days=2)  # noqa: DTZ011
    answer = requests.get(f"{base_url}/api/v1/availability", timeout=30, params={
        "service": "schedule-a-call", "start": str(first), "end": str(first + timedelta(days=days)),
    })
    assert answer.status_code == 200, answer.text
    return answer.json()["slots"]


def booking_body(slot: dict, number: int) -> dict:
    return {"service": "schedule-a-call", "start": slot["start"], "therapist": slot["therapist"],
            "patient": {"name": f"Fault Patient {number}", "email": f"fault{number}@example.com",
                        "phone": "+1 586 555 0199"}}


def half_written(connection) -> dict[str, int]:
    """What a booking interrupted half-way would leave behind (each must be 0)."""
    def count(sql: str) -> int:
        return connection.execute(text(sql)).scalar()

    return {
        "overlapping live appointments": count(
            "SELECT count(*) FROM appointments a JOIN appointments b "
            "ON a.therapist_id = b.therapist_id AND a.id < b.id "
            "AND a.status <> 'cancelled' AND b.status <> 'cancelled' "
            "AND a.start_at < b.busy_until AND b.start_at < a.busy_until"),
        "without an audit entry": count(
            "SELECT count(*) FROM appointments a WHERE NOT EXISTS "
            "(SELECT 1 FROM audit_entries e WHERE e.appointment_id = a.id)"),
        "without a confirmation": count(
            "SELECT count(*) FROM appointments a WHERE NOT EXISTS (SELECT 1 FROM notifications n "
            "WHERE n.appointment_id = a.id AND n.kind = 'confirmation')"),
    }


# --- PostgreSQL restarted under load ---------------------------------------------------------


def test_postgresql_restarted_under_load_fails_requests_cleanly_and_recovers_by_itself():
    with running_postgres() as server_url:
        url = fresh_postgres_database(server_url, "booking_faults")
        with clinic_app(url, CLINIC_FILE.read_text(), secret_key=SECRET):
            pass
        with running_gunicorn(url, workers=2, secret_key=SECRET) as base_url:
            slots = free_call_slots(base_url, days=40)  # more than 6 clients can book
            answers: list[Answer] = []
            stop = threading.Event()

            def patient(number: int) -> None:
                mine = iter(slots[:-1][number::6])  # the last one is for after the restart
                while not stop.is_set():
                    answers.append(ask("GET", f"{base_url}/api/v1/availability", "availability",
                                       params={"service": "schedule-a-call",
                                               "start": str(MONDAY), "end": str(MONDAY)}))
                    slot = next(mine, None)
                    if slot is None:
                        return
                    answers.append(ask("POST", f"{base_url}/api/v1/appointments", "book",
                                       json=booking_body(slot, number * 1000 + len(answers))))
                    time.sleep(0.02)

            threads = [threading.Thread(target=patient, args=(n,)) for n in range(6)]
            for thread in threads:
                thread.start()
            time.sleep(1.5)
            down_at = time.monotonic()
            restart_postgres(server_url, down_seconds=1)
            up_at = time.monotonic()
            time.sleep(3)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

            # After the restart the service is whole again, with no one restarting it.
            late = ask("POST", f"{base_url}/api/v1/appointments", "book",
                       json=booking_body(slots[-1], 999_999))
            assert late.status == 201, late.body

        during = [a for a in answers if down_at <= a.began <= up_at]
        after = [a for a in answers if a.began > up_at + 1]
        failed = [a for a in answers if a.status not in (200, 201, 409)]
        # Every failure is a clean 503 in the contract's shape (or no answer at all): no 500.
        assert {a.status for a in failed} <= {503, 0}, [(a.status, a.body) for a in failed]
        assert all(a.body["error"]["code"] == "service_unavailable"
                   for a in failed if a.status == 503)
        assert any(a.status == 503 for a in during), "the outage was never felt"
        assert after and {a.status for a in after} <= {200, 201}
        assert {a.endpoint for a in after} == {"availability", "book"}

        booked = {a.body["id"] for a in answers if a.status == 201} | {late.body["id"]}
        engine = create_engine(url)
        with engine.connect() as connection:
            stored = set(connection.execute(text("SELECT id FROM appointments")).scalars())
            assert booked <= stored  # every booking a patient was told of is there
            assert half_written(connection) == {
                "overlapping live appointments": 0,
                "without an audit entry": 0,
                "without a confirmation": 0,
            }
        engine.dispose()


# --- the mail server down for hours ------------------------------------------------------------


def test_mail_server_down_for_two_hours_then_every_message_goes_exactly_once(
    smtp_settings, app, book, smtp_inbox
):
    visits = [book(start=local(MONDAY, 9, 15 * n), name=f"Patient {n}", email=f"p{n}@example.com")
              for n in range(3)]
    confirmations = set(db.session.scalars(
        select(Notification.message_id).where(Notification.kind == "confirmation")))
    assert len(confirmations) == len(visits)
    mail_server_port = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = free_port()  # nothing listens there: the mail server is down
    runner = app.test_cli_runner()
    began = utc_now()

    def send_due_at(minutes: int) -> str:
        at = (began + timedelta(minutes=minutes)).isoformat()
        answer = runner.invoke(args=["notifications", "send-due", "--now", at])
        assert answer.exit_code == 0, answer.output
        return answer.output

    # The scheduler keeps waking the dispatcher through two hours of outage (longer than
    # the five tries a message refused by the server gets): every run defers everything.
    for minutes in (0, 1, 2, 6, 14, 30, 45, 62, 90, 120):
        assert send_due_at(minutes) == "sent 0, failed 0, deferred 3\n"
    db.session.rollback()
    rows = db.session.scalars(select(Notification).where(Notification.kind == "confirmation"))
    assert {(row.status, row.attempts) for row in rows} == {("pending", 0)}
    assert smtp_inbox.take() == []

    app.config["SMTP_PORT"] = mail_server_port  # back up
    assert send_due_at(121) == "sent 3, failed 0, deferred 0\n"
    assert send_due_at(122) == "sent 0, failed 0, deferred 0\n"
    arrived = [mail["Message-ID"] for mail in smtp_inbox.take()]
    assert sorted(arrived) == sorted(confirmations)
    db.session.rollback()
    statuses = db.session.scalars(
        select(Notification.status).where(Notification.kind == "confirmation")).all()
    assert statuses == ["sent"] * 3


# --- the SQLite disk turned read-only --------------------------------------------------------


def _namespaces_allowed() -> bool:
    return os.geteuid() == 0 and subprocess.run(
        ["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _namespaces_allowed(), reason="needs root to mount the disk read-only")
def test_sqlite_disk_turned_read_only_refuses_bookings_cleanly_and_keeps_serving_reads(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    database = disk / "booking.db"
    with clinic_app(f"sqlite:///{database}", CLINIC_FILE.read_text(), secret_key=SECRET):
        service = scheduling.bookable_service("schedule-a-call")
        slots = scheduling.free_slots(service, MONDAY, MONDAY)
        patient = scheduling.PatientDetails(
            name="Pat Example", email="pat@example.com", phone="+1 586 555 0100"
        )
        visit = scheduling.book_appointment(
            service, slots[0].start, patient,
            therapist_slug=slots[0].therapist)
        db.session.commit()
        first = {"id": visit.id, "token": manage_token_for(visit), "start": visit.start_at,
                 "therapist": slots[0].therapist}
    # A server that was running keeps the database's -wal and -shm files in place (the test's
    # connection plays it); with them, SQLite reads a WAL database from a read-only disk.
    running_before = sqlite3.connect(database)
    running_before.execute("SELECT count(*) FROM appointments").fetchone()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    # gunicorn in a mount namespace of its own, where the disk is mounted read-only (Linux
    # refuses to turn a mount read-only while files on it are open for writing, so the disk
    # is read-only from the server's start); the rest of the machine never sees that mount.
    server = subprocess.Popen(
        ["unshare", "-m", "sh", "-c",
         'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(disk),
         gunicorn, "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
         "wsgi:app"],
        cwd=PROJECT_ROOT, start_new_session=True,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": SECRET,
             "RATE_LIMITS": "off", "BOOKING_SCHEDULER": "off"},
    )
    try:
        deadline = time.monotonic() + 30
        while ask("GET", f"{base_url}/api/v1/services", "services").status != 200:
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not serve"
            time.sleep(0.1)
        touch = ["nsenter", "-t", str(server.pid), "-m", "touch", str(disk / "probe")]
        assert subprocess.run(touch, capture_output=True).returncode != 0  # read-only indeed

        offered = free_call_slots(base_url, days=0, first=MONDAY)
        visit_url = f"{base_url}/api/v1/appointments/{first['id']}"
        bearer = {"Authorization": f"Bearer {first['token']}"}
        for refused in (
            ask("POST", f"{base_url}/api/v1/appointments", "book",
                json=booking_body(offered[0], 2)),
            ask("POST", f"{visit_url}/reschedule", "reschedule", headers=bearer,
                json={"start": offered[1]["start"], "therapist": offered[1]["therapist"]}),
            ask("POST", f"{visit_url}/cancel", "cancel", headers=bearer),
        ):
            assert refused.status == 503, (refused.endpoint, refused.status, refused.body)
            assert refused.body["error"]["code"] == "service_unavailable"

        # Reads still work, and say what is stored: the first visit, as it was.
        shown = ask("GET", visit_url, "show", headers=bearer)
        assert (shown.status, shown.body["status"]) == (200, "confirmed")
        assert datetime.fromisoformat(shown.body["start"]) == first["start"]
        assert (first["start"], first["therapist"]) not in {
            (datetime.fromisoformat(slot["start"]), slot["therapist"]) for slot in offered}
        assert len(offered) > 2
        assert requests.get(f"{base_url}/", timeout=30).status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        running_before.close()

    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("SELECT id, status FROM appointments").fetchall() == [
            (first["id"], "confirmed")]


# --- the database out of reach, page by page -------------------------------------------------


def test_with_the_database_out_of_reach_every_kind_of_page_answers_503_not_500():
    settings = {key: getattr(TestConfig, key) for key in dir(TestConfig) if key.isupper()}
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/booking"  # nothing listens
    app = create_app({**settings, "SQLALCHEMY_DATABASE_URI": nowhere})
    client = app.test_client()
    for path in ("/", "/book/schedule-a-call", "/desk/login",
                 "/feeds/some-token.ics", "/api/v1/services",
                 f"/api/v1/availability?service=schedule-a-call&start={MONDAY}&end={MONDAY}"):
        answer = client.get(path)
        assert answer.status_code == 503, (path, answer.status_code)
        if path.startswith("/api/"):
            assert answer.json["error"]["code"] == "service_unavailable"
    with app.app_context():
        dispose_engines()


def test_a_connection_ended_under_a_read_answers_503_and_the_next_read_is_whole(client, clinic):
    """The database ends the connection an availability request is using (a restart, a
    failover): that request is told to try again in a moment (503, never a 500), and the next
    one is answered on a fresh connection."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL server ends its connections; SQLite has none")
    day = next_weekday(1)
    path = f"/api/v1/availability?service=schedule-a-call&start={day}&end={day}"
    db.session.remove()  # a request in a server starts with a session of its own
    assert client.get(path).status_code == 200  # the process keeps the reference data
    # Its connection went back to the pool with it, to be used again at once (no ping).
    ender = create_engine(db.engine.url)
    with ender.begin() as connection:
        ended = connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalar()
    ender.dispose()
    assert ended >= 1

    refused = client.get(path)
    assert refused.status_code == 503, refused.get_data(as_text=True)
    assert refused.json["error"]["code"] == "service_unavailable"
    answered = client.get(path)
    assert answered.status_code == 200
    assert answered.json["slots"]
