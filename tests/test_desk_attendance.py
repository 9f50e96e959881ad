"""Attendance at the front desk: when "arrived", "completed" and "no-show" may be recorded,
and undoing each with a reason (in the audit log), a no-show's reminders coming back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from booking import scheduling
from booking.extensions import db
from booking.models import Appointment, AuditEntry, Notification
from tests.conftest import local, next_weekday
from tests.desk_staff import signed_in, staff_logins

DESK_ACTOR = "staff:desk@clinic.example"


@pytest.fixture
def desk(app, clinic):
    return signed_in(app, staff_logins()["front_desk"])


@pytest.fixture
def needling(clinic):
    """A dry needling visit next Monday at 10:00, booked a week ahead (reminders pending)."""
    start = local(next_weekday(0), 10)
    visit = scheduling.book_appointment(
        scheduling.bookable_service("dry-needling"),
        start,
        scheduling.PatientDetails(name="Nora Needle", email="nora@example.com"),
        therapist_slug="alex-rivera",
        booked_by=DESK_ACTOR,
        override=scheduling.StaffOverride(DESK_ACTOR, "evaluated elsewhere"),
        now=start - timedelta(days=7),
    )
    db.session.commit()
    return visit


def _pending(visit_id: int) -> list[tuple[str, int]]:
    db.session.rollback()
    return sorted(
        db.session.execute(
            select(Notification.kind, Notification.step).where(
                Notification.appointment_id == visit_id, Notification.status == "pending"
            )
        ).tuples()
    )


def _record(visit, outcome, now):
    scheduling.record_attendance(visit, outcome, by=DESK_ACTOR, now=now)
    db.session.commit()


def test_arrival_opens_30_minutes_before_the_start(needling):
    start = needling.start_at
    with pytest.raises(scheduling.AppointmentNotChangeable) as refused:
        _record(needling, "arrived", start - timedelta(minutes=31))
    assert refused.value.message == "arrival is recorded from 30 minutes before the start"
    db.session.rollback()
    _record(needling, "arrived", start - timedelta(minutes=30))
    assert db.session.get(Appointment, needling.id).arrived_at == start - timedelta(minutes=30)


@pytest.mark.parametrize("outcome, word", [("no_show", "a no-show"), ("completed", "completed")])
def test_no_show_and_completed_only_after_the_start(needling, outcome, word):
    with pytest.raises(scheduling.AppointmentNotChangeable) as refused:
        _record(needling, outcome, needling.start_at - timedelta(minutes=1))
    assert refused.value.message == f"{word} is recorded only after the start"
    db.session.rollback()
    _record(needling, outcome, needling.start_at + timedelta(minutes=1))
    assert db.session.get(Appointment, needling.id).status == outcome


def test_undoing_a_no_show_restores_what_is_still_ahead(needling):
    start = needling.start_at
    before = _pending(needling.id)
    assert before == [("aftercare", 0), ("aftercare", 1), ("confirmation", 0),
                      ("reminder", 0), ("reminder", 1)]
    _record(needling, "no_show", start + timedelta(minutes=5))
    assert _pending(needling.id) == [("confirmation", 0)]
    # Undone after the visit ended: the reminders are behind it, the aftercare ahead.
    scheduling.undo_attendance(needling, by=DESK_ACTOR, reason="she was in the gym",
                               now=start + timedelta(hours=1))
    db.session.commit()
    assert _pending(needling.id) == [("aftercare", 0), ("aftercare", 1), ("confirmation", 0)]
    visit = db.session.get(Appointment, needling.id)
    assert visit.status == "confirmed"
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.appointment_id == needling.id)
        .order_by(AuditEntry.id.desc())
    ).first()
    assert (entry.action, entry.actor) == ("attendance_undone", DESK_ACTOR)
    assert entry.details == {"undone": "no_show", "reason": "she was in the gym"}


def test_undo_needs_a_reason_and_something_to_undo(needling):
    with pytest.raises(scheduling.SchedulingError) as no_reason:
        scheduling.undo_attendance(needling, by=DESK_ACTOR, reason="  ")
    assert no_reason.value.field == "reason"
    with pytest.raises(scheduling.AppointmentNotChangeable) as nothing:
        scheduling.undo_attendance(needling, by=DESK_ACTOR, reason="typo")
    assert nothing.value.message == "there is no attendance recorded to undo"


def test_undoing_an_arrival_clears_it(needling):
    _record(needling, "arrived", needling.start_at - timedelta(minutes=10))
    scheduling.undo_attendance(needling, by=DESK_ACTOR, reason="wrong patient",
                               now=needling.start_at - timedelta(minutes=9))
    db.session.commit()
    assert db.session.get(Appointment, needling.id).arrived_at is None


@pytest.fixture
def needling_last_monday(clinic):
    today = local(next_weekday(0), 0).date() - timedelta(days=14)
    start = local(today, 9)
    visit = scheduling.book_appointment(
        scheduling.bookable_service("dry-needling"),
        start,
        scheduling.PatientDetails(name="Nora Needle", email="nora@example.com"),
        therapist_slug="alex-rivera",
        booked_by=DESK_ACTOR,
        override=scheduling.StaffOverride(DESK_ACTOR, "evaluated elsewhere"),
        now=start - timedelta(days=7),
    )
    db.session.commit()
    return visit


def test_the_desk_undoes_a_no_show_and_keeps_the_controls(desk, needling_last_monday):
    visit_id = needling_last_monday.id
    url = f"/desk/appointments/{visit_id}"
    assert desk.post(f"{url}/attendance", data={"outcome": "no_show"}).status_code == 303
    page = desk.get(url).get_data(as_text=True)
    assert "Undo no-show" in page
    without = desk.post(f"{url}/attendance/undo", data={"reason": ""})
    assert without.status_code == 422
    assert "Reason for undoing: This field is required." in without.get_data(as_text=True)
    answer = desk.post(f"{url}/attendance/undo", data={"reason": "she came late"})
    assert answer.status_code == 303
    page = desk.get(url).get_data(as_text=True)
    assert "Attendance undone; the visit is confirmed again." in page
    assert "attendance undone by staff:desk@clinic.example" in page
    assert "(she came late)" in page
    # Confirmed again and past its start: attendance can be recorded once more.
    assert 'value="completed"' in page and 'value="no_show"' in page


def test_arrived_is_not_offered_hours_before_the_visit(desk, needling):
    page = desk.get(f"/desk/appointments/{needling.id}").get_data(as_text=True)
    assert 'value="arrived"' not in page
    answer = desk.post(f"/desk/appointments/{needling.id}/attendance",
                       data={"outcome": "arrived"})
    assert answer.status_code == 409
    assert "arrival is recorded from 30 minutes before the start" in answer.get_data(as_text=True)
