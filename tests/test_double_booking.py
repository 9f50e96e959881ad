"""Two patients click the same slot at the same second: one wins, whatever the processes.

These run real gunicorn workers against each database; nothing is mocked.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from booking import scheduling
from booking.extensions import db
from booking.models import Appointment, AuditEntry, Notification, NotificationKind
from tests.conftest import local, next_weekday
from tests.servers import all_at_once, running_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clinic")]

RACERS = 50


def race(url: str, bodies: list[dict]) -> list[requests.Response]:
    """Send every body at once, from as many threads, released together."""
    return all_at_once([
        lambda session, body=body: session.post(url, json=body, timeout=60) for body in bodies
    ])


def racer(number: int, start, therapist: str | None = "alex-rivera") -> dict:
    body = {
        "service": "pt-evaluation",
        "start": start.isoformat(),
        "patient": {"name": f"Patient {number}", "email": f"patient{number}@example.com"},
    }
    if therapist:
        body["therapist"] = therapist
    return body


def entries_and_confirmations() -> tuple[int, int]:
    """How many "booked" audit entries and confirmation mails were written: one of each per
    visit, and none for a booking refused (on PostgreSQL they are written in the visit's own
    statement, from the row it inserted)."""
    entries = db.session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "booked"))
    confirmations = db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.kind == NotificationKind.CONFIRMATION))
    return entries, confirmations


def test_fifty_patients_racing_for_one_slot_one_wins(app, database_url):
    start = local(next_weekday(0), 9)
    db.session.commit()
    with running_gunicorn(database_url, workers=4) as base_url:
        answers = race(f"{base_url}/api/v1/appointments",
                       [racer(number, start) for number in range(RACERS)])
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * (RACERS - 1)
    refused = [answer.json()["error"]["code"] for answer in answers if answer.status_code == 409]
    assert set(refused) == {"slot_unavailable"}
    db.session.rollback()
    rows = db.session.scalars(select(Appointment)).all()
    assert len(rows) == 1
    assert rows[0].start_at == start
    assert scheduling.appointments_overlapping_count() == 0
    assert entries_and_confirmations() == (1, 1)


def test_racing_for_any_therapist_fills_each_therapist_once(app, database_url):
    start = local(next_weekday(1), 10)
    db.session.commit()
    with running_gunicorn(database_url, workers=4) as base_url:
        answers = race(f"{base_url}/api/v1/appointments",
                       [racer(number, start, therapist=None) for number in range(20)])
    won = sorted(answer.json()["therapist"] for answer in answers if answer.status_code == 201)
    assert won == ["alex-rivera", "jamie-lee"]
    assert sorted(answer.status_code for answer in answers) == [201, 201] + [409] * 18
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 2
    assert scheduling.appointments_overlapping_count() == 0
    assert entries_and_confirmations() == (2, 2)


def test_racing_repeats_of_one_idempotent_request_book_once(app, database_url):
    start = local(next_weekday(2), 11)
    db.session.commit()
    body = racer(1, start)
    with running_gunicorn(database_url, workers=4) as base_url:
        answers = all_at_once([
            lambda session: session.post(f"{base_url}/api/v1/appointments", json=body,
                                         headers={"Idempotency-Key": "same-click"}, timeout=60)
        ] * 10)
    assert [answer.status_code for answer in answers] == [201] * 10
    assert len({answer.json()["id"] for answer in answers}) == 1
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_itself_refuses_an_overlapping_live_appointment(book):
    """Even a writer that skips every check cannot double-book on PostgreSQL."""
    first = book("pt-evaluation", local(next_weekday(0), 9), "alex-rivera")
    columns = (
        "calendar_uid, sequence, status, service_id, therapist_id, patient_id, start_at, end_at, "
        "busy_until, notes, booked_by, evaluation_override, cancel_reason, created_at, updated_at"
    )
    values = {
        "service": first.service_id, "therapist": first.therapist_id, "patient": first.patient_id,
        # Starts inside the first visit's buffer (10:00-10:15).
        "start": first.end_at + timedelta(minutes=10),
        "end": first.end_at + timedelta(minutes=70),
    }
    insert = text(
        f"INSERT INTO appointments ({columns}) VALUES ('x@test', 0, :status, :service, "
        ":therapist, :patient, :start, :end, :end, '', 'test', '', '', now(), now())"
    )
    with pytest.raises(IntegrityError, match="appointments_no_overlap"):
        db.session.execute(insert, {**values, "status": "confirmed"})
    db.session.rollback()
    # A cancelled appointment holds no time, so it may overlap.
    db.session.execute(insert, {**values, "status": "cancelled"})
    db.session.commit()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_a_booking_holds_the_write_lock_from_its_first_check(app, database_url):
    """Between the re-check and the insert, no other process can write: it must wait."""
    import sqlite3

    from booking.database import hold_write_lock

    path = database_url.removeprefix("sqlite:///")
    hold_write_lock()
    scheduling.therapists_offering(scheduling.bookable_service("pt-evaluation"))
    other_process = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        other_process.execute("BEGIN IMMEDIATE")
    db.session.commit()
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute("ROLLBACK")
    other_process.close()
