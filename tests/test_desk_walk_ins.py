"""Walk-ins at the front desk: a patient with a phone and no email (no mail is sent, and the
visit says so), and a visit recorded after it happened, with a reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from booking.extensions import db
from booking.models import Appointment, AuditEntry, Notification, utc_now
from tests.conftest import CLINIC_ZONE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins


@pytest.fixture
def desk(app, clinic):
    return signed_in(app, staff_logins()["front_desk"])


def _walk_in(day, hour, minute=0, **changes):
    form = {
        "name": "Wendy Walker", "email": "", "phone": "+1 586 555 0199",
        "service": "schedule-a-call", "therapist": "alex-rivera",
        "day": day.isoformat(), "time": f"{hour:02d}:{minute:02d}",
    }
    form.update(changes)
    return form


def _kinds(visit_id: int) -> list[str]:
    return sorted(db.session.scalars(
        select(Notification.kind).where(Notification.appointment_id == visit_id)
    ))


def test_a_walk_in_with_a_phone_and_no_email_is_booked_and_sent_nothing(desk, smtp_inbox):
    day = next_weekday(0)
    answer = desk.post("/desk/book", data=_walk_in(day, 9, 30))
    assert answer.status_code == 303
    db.session.rollback()
    visit = db.session.scalars(select(Appointment)).one()
    assert visit.patient.email == ""
    assert visit.patient.phone == "+1 586 555 0199"
    assert _kinds(visit.id) == []
    page = desk.get(answer.headers["Location"]).get_data(as_text=True)
    assert "no mail is sent for this visit" in page
    assert 'href="tel:+15865550199"' in page


def test_a_second_walk_in_with_the_same_phone_is_the_same_patient(desk):
    day = next_weekday(0)
    assert desk.post("/desk/book", data=_walk_in(day, 9)).status_code == 303
    assert desk.post("/desk/book", data=_walk_in(day, 10)).status_code == 303
    other = _walk_in(day, 11, phone="+1 586 555 0111")
    assert desk.post("/desk/book", data=other).status_code == 303
    db.session.rollback()
    patients = {visit.patient_id for visit in db.session.scalars(select(Appointment))}
    assert len(patients) == 2


def test_without_email_or_phone_the_form_says_which_to_give(desk):
    answer = desk.post("/desk/book", data=_walk_in(next_weekday(0), 9, phone="",
                                                 service="pt-evaluation"))
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "or a phone for a patient without email" in page
    db.session.rollback()
    assert db.session.scalars(select(Appointment)).all() == []


def test_online_booking_still_needs_an_email(client, clinic):
    day = next_weekday(0)
    answer = client.post("/api/v1/appointments", json={
        "service": "schedule-a-call", "start": local(day, 9).isoformat(),
        "patient": {"name": "Wendy Walker", "email": "", "phone": "+1 586 555 0199"},
    })
    assert answer.status_code == 422
    assert "patient.email" in answer.get_data(as_text=True)


def _last_monday():
    today = utc_now().astimezone(CLINIC_ZONE).date()
    return today - timedelta(days=today.weekday() + 7)


def test_a_past_visit_is_recorded_with_a_reason(desk):
    monday = _last_monday()
    form = _walk_in(monday, 9, email="wendy@example.com")
    refused = desk.post("/desk/book", data=form)
    assert refused.status_code == 409
    assert "give an override reason" in refused.get_data(as_text=True)
    answer = desk.post("/desk/book", data={**form, "override_reason": "seen as a walk-in"})
    assert answer.status_code == 303
    db.session.rollback()
    visit = db.session.scalars(select(Appointment)).one()
    assert visit.start_at == local(monday, 9)
    # No confirmation for a visit already over.
    assert "confirmation" not in _kinds(visit.id)
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.appointment_id == visit.id)
    ).one()
    assert entry.details["past_visit"] is True
    assert entry.details["override"] == "seen as a walk-in"


def test_a_past_visit_still_keeps_to_the_hours_and_other_visits(desk):
    monday = _last_monday()
    reason = {"override_reason": "seen as a walk-in", "email": "wendy@example.com"}
    outside = desk.post("/desk/book", data=_walk_in(monday, 12, 30, **reason))
    assert outside.status_code == 409
    assert "would not fit in the therapist&#39;s working hours" in outside.get_data(as_text=True)


def test_the_booking_page_lists_the_free_times_of_the_service_and_therapist(desk, book):
    day = next_weekday(0)
    book(start=local(day, 8, 15), therapist="alex-rivera")
    answer = desk.get(f"/desk/book?service=schedule-a-call&therapist=alex-rivera&day={day}")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert f"{day:%A %d %B}" in page
    following = day + timedelta(days=1)
    assert f"{following:%A %d %B}" in page
    assert f"day={day}&amp;time=08:00" in page
    assert f"day={day}&amp;time=08:15" not in page  # taken
    assert f"day={day}&amp;time=08:30" in page
    # A free time is a link that fills in the form.
    chosen = desk.get(f"/desk/book?service=schedule-a-call&therapist=alex-rivera&day={day}"
                      "&time=08:30").get_data(as_text=True)
    assert 'id="time" name="time" required type="time" value="08:30"' in chosen
