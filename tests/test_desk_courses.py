"""Courses of care at the front desk: a weekly series of dry needling visits previewed as a
table, booked with an alternative picked for a taken visit, then kept from the course's page
(the insurance authorisation and its warning, moving this and the following visits, adding
visits, cancelling the rest), and its visits named as a course where a change of hours strands
them.

Alex Rivera is the test clinic's one dry needling therapist: Mondays and Thursdays 08:00-12:00
and 13:00-17:00, Fridays 08:00-12:00. Dry needling allows a course of up to 12 visits.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from booking import scheduling
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentSeries,
    AuditEntry,
    Notification,
    NotificationStatus,
    utc_now,
)
from booking.notifications.dispatcher import DispatchReport, send_due
from booking.patients.details import details_context
from tests.conftest import CLINIC_ZONE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins
from tests.test_series import events_of

MONDAY = next_weekday(0, at_least_days=7)
THURSDAY = MONDAY + timedelta(days=3)
FRIDAY = MONDAY + timedelta(days=4)
# The course's visit as the mail names it.
VISIT = "your dry needling session with Alex Rivera, PT, DPT"


@pytest.fixture
def staff(clinic):
    return staff_logins()


@pytest.fixture
def desk(app, staff):
    return signed_in(app, staff["front_desk"])


def robin_evaluated_by_jamie(monday) -> int:
    """Robin's evaluation with Jamie Lee two weeks before `monday`, entered by the desk (not
    committed); Robin's patient id."""
    start = local(monday - timedelta(days=14), 9)
    visit = scheduling.book_appointment(
        scheduling.bookable_service("pt-evaluation"),
        start,
        scheduling.PatientDetails(name="Robin Patient", email="robin@example.com"),
        therapist_slug="jamie-lee",
        booked_by="staff:desk@clinic.example",
        override=scheduling.StaffOverride("desk@clinic.example", "evaluated on paper"),
        now=start - timedelta(days=1),
    )
    return visit.patient_id


@pytest.fixture
def patient(clinic):
    """Robin, evaluated by Jamie Lee last week: dry needling may follow."""
    robin = robin_evaluated_by_jamie(MONDAY)
    db.session.commit()
    return robin


def course_form(patient: int, **changes) -> dict:
    """Four visits, Mondays and Thursdays at 14:00 with Alex Rivera, from MONDAY."""
    form = {
        "patient_id": str(patient),
        "service": "dry-needling",
        "therapist": "alex-rivera",
        "day": MONDAY.isoformat(),
        "time": "14:00",
        "weekdays": ["mon", "thu"],
        "count": "4",
        "action": "preview",
    }
    form.update(changes)
    return form


def block(day, hour, minute=0, name="Sam Other") -> Appointment:
    """Someone else's call with Alex Rivera at that time."""
    visit = scheduling.book_appointment(
        scheduling.bookable_service("schedule-a-call"),
        local(day, hour, minute),
        scheduling.PatientDetails(name=name, email="sam@example.com"),
        therapist_slug="alex-rivera",
    )
    db.session.commit()
    return visit


def series_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(AppointmentSeries))


def course_starts(series_id: int) -> list[tuple[datetime, str]]:
    db.session.rollback()
    return [
        (visit.start_at, visit.status)
        for visit in db.session.scalars(
            select(Appointment)
            .where(Appointment.series_id == series_id)
            .order_by(Appointment.start_at)
        )
    ]


def radio_values(html: str, name: str) -> list[str]:
    return re.findall(rf'type="radio" name="{name}" value="([^"]+)"', html)


def booked_course(desk, patient, **changes) -> int:
    answer = desk.post("/desk/courses/new", data=course_form(patient, action="book", **changes))
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return int(answer.headers["Location"].rsplit("/", 1)[1])


def pending(kind: str, series_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count())
        .select_from(Notification)
        .join(Appointment, Notification.appointment_id == Appointment.id)
        .where(Appointment.series_id == series_id, Notification.kind == kind)
    )


# --- booking a course ------------------------------------------------------------------------


def test_the_course_form_opens_from_the_patients_page_and_the_calendar(desk, patient):
    page = desk.get(f"/desk/patients/{patient}").get_data(as_text=True)
    assert f'href="/desk/courses/new?patient={patient}"' in page
    form = desk.get(f"/desk/courses/new?patient={patient}").get_data(as_text=True)
    assert "For <strong>Robin Patient</strong>" in form
    day = desk.get(f"/desk/?day={MONDAY.isoformat()}").get_data(as_text=True)
    assert f"/desk/courses/new?therapist=alex-rivera&amp;day={MONDAY.isoformat()}" in day
    prefilled = desk.get(
        f"/desk/courses/new?therapist=alex-rivera&day={MONDAY.isoformat()}&time=14:00"
    ).get_data(as_text=True)
    assert f'value="{MONDAY.isoformat()}"' in prefilled
    assert '<option selected value="alex-rivera">' in prefilled


def test_the_preview_names_each_visit_free_or_why_with_alternatives_and_books_nothing(
    desk, patient
):
    block(MONDAY + timedelta(days=7), 14)  # visit 3
    answer = desk.post("/desk/courses/new", data=course_form(patient))
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    rows = re.findall(r'<tr class="(free|not-free)">\s*<th scope="row">(\d+)</th>'
                      r'\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>', html)
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("1", f"{MONDAY:%a %d %b %Y} 14:00", "Free"),
        ("2", f"{THURSDAY:%a %d %b %Y} 14:00", "Free"),
        ("3", f"{MONDAY + timedelta(days=7):%a %d %b %Y} 14:00", "Not free: taken"),
        ("4", f"{THURSDAY + timedelta(days=7):%a %d %b %Y} 14:00", "Free"),
    ]
    assert "<legend>Instead of visit 3</legend>" in html
    alternatives = radio_values(html, "visit-3")
    assert 1 <= len(alternatives) <= 3
    # Nearest first: 14:15, as the call (14:00-14:15) ends.
    assert datetime.fromisoformat(alternatives[0]) == local(MONDAY + timedelta(days=7), 14, 15)
    assert series_count() == 0


def test_the_desk_books_a_course_with_an_alternative_picked_for_a_taken_visit(desk, patient):
    taken = MONDAY + timedelta(days=7)
    block(taken, 14)
    preview = desk.post("/desk/courses/new", data=course_form(patient)).get_data(as_text=True)
    picked = radio_values(preview, "visit-3")[0]

    answer = desk.post(
        "/desk/courses/new", data=course_form(patient, action="book", **{"visit-3": picked})
    )
    assert answer.status_code == 303
    series_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    picked_wall = datetime.fromisoformat(picked)
    assert course_starts(series_id) == [
        (local(MONDAY, 14), "confirmed"),
        (local(THURSDAY, 14), "confirmed"),
        (picked_wall, "confirmed"),
        (local(THURSDAY + timedelta(days=7), 14), "confirmed"),
    ]
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "booked",
                                 AuditEntry.actor == "staff:desk@clinic.example")
        .order_by(AuditEntry.id)
    ).all()
    assert [entry.details.get("alternative_chosen", False) for entry in entries
            if entry.details.get("series") == series_id] == [
        False, False, True, False
    ]
    page = desk.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Booked a course of 4 visits of Dry needling session for Robin Patient" in page
    assert "0 done, 4 to come, 0 cancelled" in page
    # One confirmation for the whole course.
    assert pending("confirmation", series_id) == 1


def test_booking_a_course_with_a_taken_visit_not_replaced_is_refused_whole(desk, patient):
    block(MONDAY + timedelta(days=7), 14)
    answer = desk.post("/desk/courses/new", data=course_form(patient, action="book"))
    assert answer.status_code == 409
    html = answer.get_data(as_text=True)
    assert (f"Nothing was booked: {MONDAY + timedelta(days=7):%a %d %b} 14:00 is taken"
            in html)
    assert radio_values(html, "visit-3")  # the alternatives, to pick now
    # An override reason never books a taken time.
    overridden = desk.post("/desk/courses/new", data=course_form(
        patient, action="book", override_reason="patient insists"))
    assert overridden.status_code == 409
    assert series_count() == 0


def test_an_alternative_that_lands_on_another_visit_of_the_course_is_refused(desk, patient):
    # Visit 2's time picked for visit 3 as well: the course may not double-book itself.
    answer = desk.post("/desk/courses/new", data=course_form(
        patient, action="book", **{"visit-3": local(THURSDAY, 14).isoformat()}))
    assert answer.status_code == 409
    assert f"{THURSDAY:%a %d %b} 14:00 is taken" in answer.get_data(as_text=True)
    assert series_count() == 0


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"count": ""}, 422, "Give the number of visits, or the last day of the course."),
        ({"count": "20"}, 422, "A course of Dry needling session has at most 12 visits."),
        ({"count": "1"}, 422, "Number of visits: Number must be between 2 and 99."),
        ({"weekdays": ["someday"]}, 422, "Weekdays: &#39;someday&#39; is not a valid choice"),
        ({"visit-2": "next tuesday"}, 422, "visit-2: choose one of the times offered."),
        ({"visit-9": local(MONDAY, 15).isoformat()}, 422, "a visit the course no longer has"),
        ({"time": "20:00"}, 409, "outside the therapist&#39;s hours"),
        ({"therapist": "jamie-lee"}, 422, "Jamie Lee, PT does not offer Dry needling session"),
        ({"patient_id": "", "name": "Nia New", "email": "nia@example.com"}, 422,
         "Dry needling session follows an evaluation"),
        ({"patient_id": "", "name": "", "email": ""}, 422, "Give the patient&#39;s name"),
        ({"day": utc_now().astimezone(CLINIC_ZONE).date().isoformat()}, 409,
         "is too soon (inside the minimum notice)"),
    ],
)
def test_a_course_asked_for_wrongly_is_refused_naming_the_field_and_books_nothing(
    desk, patient, changes, status, message
):
    answer = desk.post("/desk/courses/new", data=course_form(patient, action="book", **changes))
    assert answer.status_code == status
    assert message in answer.get_data(as_text=True)
    assert series_count() == 0


def test_a_course_asked_for_by_its_last_day_counts_the_visits_up_to_it(desk, patient):
    last = MONDAY + timedelta(days=14)
    html = desk.post("/desk/courses/new", data=course_form(
        patient, count="", until=last.isoformat())).get_data(as_text=True)
    assert html.count('<th scope="row">') == 5  # Mon, Thu, Mon, Thu, Mon
    capped = desk.post("/desk/courses/new", data=course_form(
        patient, count="", until=(MONDAY + timedelta(days=80)).isoformat()))
    assert capped.status_code == 200
    text = capped.get_data(as_text=True)
    assert "the course is its first 12 visits" in text
    assert text.count('<th scope="row">') == 12


# --- the course's page -----------------------------------------------------------------------


def test_the_course_page_warns_as_the_authorisation_runs_out(desk, patient):
    series_id = booked_course(desk, patient, authorised_visits="10",
                              authorised_until=(MONDAY + timedelta(days=60)).isoformat())
    page = desk.get(f"/desk/courses/{series_id}").get_data(as_text=True)
    assert "10 visits, 10 left; until" in page
    assert "running out" not in page

    answer = desk.post(f"/desk/courses/{series_id}/authorisation",
                       data={"authorised_visits": "2", "authorised_until": ""})
    assert answer.status_code == 303
    page = desk.get(f"/desk/courses/{series_id}").get_data(as_text=True)
    assert "The insurance authorisation is running out" in page
    assert "2 authorised visit(s) left" in page
    assert "(2 visit(s) to come beyond it)" in page

    soon = (utc_now().astimezone(CLINIC_ZONE).date() + timedelta(days=7)).isoformat()
    desk.post(f"/desk/courses/{series_id}/authorisation",
              data={"authorised_visits": "", "authorised_until": soon})
    page = desk.get(f"/desk/courses/{series_id}").get_data(as_text=True)
    assert "7 day(s) until it ends" in page
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "authorisation_changed")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry.details["to"] == {"visits": None, "until": soon}

    refused = desk.post(f"/desk/courses/{series_id}/authorisation",
                        data={"authorised_visits": "-3"})
    assert refused.status_code == 422
    assert "Visits authorised by the insurer: Number must be between 1 and 999." in (
        refused.get_data(as_text=True))


def test_the_visit_page_names_its_place_in_the_course(desk, patient):
    series_id = booked_course(desk, patient)
    [_, second, *_] = db.session.scalars(
        select(Appointment).where(Appointment.series_id == series_id)
        .order_by(Appointment.start_at)
    ).all()
    page = desk.get(f"/desk/appointments/{second.id}").get_data(as_text=True)
    assert "visit 2 of 4" in page
    assert f'href="/desk/courses/{series_id}">see the course</a>' in page


def test_moving_this_and_the_following_visits_to_friday_morning(desk, patient):
    series_id = booked_course(desk, patient)
    second = db.session.scalars(
        select(Appointment.id).where(Appointment.series_id == series_id)
        .order_by(Appointment.start_at).offset(1)
    ).first()
    answer = desk.post(f"/desk/courses/{series_id}/move-following",
                       data={"visit": str(second), "weekday": "fri", "time": "09:00"})
    assert answer.status_code == 303
    assert course_starts(series_id) == [
        (local(MONDAY, 14), "confirmed"),
        (local(FRIDAY, 9), "confirmed"),
        (local(MONDAY + timedelta(days=8), 9), "confirmed"),  # Tuesday: Alex works 08-12
        (local(FRIDAY + timedelta(days=7), 9), "confirmed"),
    ]
    assert db.session.get(AppointmentSeries, series_id).weekdays == ["tue", "fri"]
    assert pending("reschedule", series_id) == 1  # one mail tells of the three
    moved = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "rescheduled")
    ).all()
    assert {entry.details["scope"] for entry in moved} == {"following"}
    assert len(moved) == 3


def said(day, clock: str) -> str:
    """A day and time as the mail says it: 'Friday 11 December 2026 at 9:00 AM'."""
    return f"{day:%A} {day.day} {day:%B %Y} at {clock}"


def mailed_course(desk, patient, smtp_inbox, **changes) -> tuple[int, dict[int, str]]:
    """A course booked and its confirmation sent: the series and each visit's UID as the
    confirmation's .ics gave it."""
    series_id = booked_course(desk, patient, **changes)
    send_due(utc_now())
    [confirmation] = [mail for mail in smtp_inbox.take()
                      if mail["Subject"].startswith("Booked: 4 visits")]
    _, events = events_of(confirmation)
    assert [event["SEQUENCE"] for event in events] == [0, 0, 0, 0]
    return series_id, {
        visit.id: str(event["UID"])
        for visit, event in zip(course_visits(series_id), events, strict=True)
    }


def course_visits(series_id: int) -> list[Appointment]:
    db.session.rollback()
    return list(db.session.scalars(
        select(Appointment).where(Appointment.series_id == series_id)
        .order_by(Appointment.start_at)
    ))


def pending_reminders(series_id: int) -> dict[int, list[datetime]]:
    db.session.rollback()
    due = {}
    for visit_id, at in db.session.execute(
        select(Notification.appointment_id, Notification.due_at)
        .join(Appointment, Notification.appointment_id == Appointment.id)
        .where(Appointment.series_id == series_id, Notification.kind == "reminder",
               Notification.status == NotificationStatus.PENDING)
        .order_by(Notification.due_at)
    ):
        due.setdefault(visit_id, []).append(at)
    return due


@pytest.mark.usefixtures("smtp_settings")
def test_moving_the_following_visits_sends_one_mail_listing_each_old_and_new_time(
    desk, patient, smtp_inbox
):
    series_id, uids = mailed_course(desk, patient, smtp_inbox)
    [first, second, third, fourth] = course_visits(series_id)
    answer = desk.post(f"/desk/courses/{series_id}/move-following",
                       data={"visit": str(second.id), "weekday": "fri", "time": "09:00"})
    assert answer.status_code == 303
    assert "one message tells the patient" in desk.get(answer.headers["Location"]).get_data(
        as_text=True)
    new_starts = [local(FRIDAY, 9), local(MONDAY + timedelta(days=8), 9),
                  local(FRIDAY + timedelta(days=7), 9)]
    # Each moved visit's reminders went with it; the first visit's stayed.
    reminders = pending_reminders(series_id)
    assert set(reminders) == {first.id, second.id, third.id, fourth.id}
    for visit, start in zip((second, third, fourth), new_starts, strict=True):
        assert len(reminders[visit.id]) == 2
        assert all(start - timedelta(days=2) <= due < start for due in reminders[visit.id])

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["X-Booking-Notification"] == "reschedule"
    assert mail["To"] == "Robin Patient <robin@example.com>"
    assert mail["Subject"] == f"Moved: 3 visits, {VISIT}, from {said(FRIDAY, '9:00 AM')}"
    text = mail.get_body(("plain",)).get_content()
    lines = " ".join(text.split())
    assert lines.count(" - from ") == 3
    for before, after in (
        (said(THURSDAY, "2:00 PM"), said(FRIDAY, "9:00 AM")),
        (said(MONDAY + timedelta(days=7), "2:00 PM"), said(MONDAY + timedelta(days=8), "9:00 AM")),
        (said(THURSDAY + timedelta(days=7), "2:00 PM"),
         said(FRIDAY + timedelta(days=7), "9:00 AM")),
    ):
        assert f"- from {before} to {after}" in lines
    assert f"Moved: {VISIT}, to these days (clinic time):" in lines
    assert said(MONDAY, "2:00 PM") not in lines  # the first visit did not move
    method, events = events_of(mail)
    assert method == "REQUEST"
    assert [
        (str(event["UID"]), event["SEQUENCE"], event.decoded("DTSTART")) for event in events
    ] == [
        (uids[visit.id], 1, start)
        for visit, start in zip((second, third, fourth), new_starts, strict=True)
    ]


@pytest.mark.usefixtures("smtp_settings")
def test_moving_or_adding_to_a_walk_in_course_sends_no_mail(desk, smtp_inbox):
    start = local(MONDAY - timedelta(days=14), 10)
    walk_in = scheduling.book_appointment(
        scheduling.bookable_service("pt-evaluation"),
        start,
        scheduling.PatientDetails.model_validate(
            {"name": "Wendy Walker", "email": "", "phone": "+1 586 555 0199"},
            context=details_context(at_the_desk=True),
        ),
        therapist_slug="jamie-lee",
        booked_by="staff:desk@clinic.example",
        override=scheduling.StaffOverride("desk@clinic.example", "evaluated on paper"),
        now=start - timedelta(days=1),
    )
    db.session.commit()
    series_id = booked_course(desk, walk_in.patient_id)
    second = course_visits(series_id)[1]
    moved = desk.post(f"/desk/courses/{series_id}/move-following",
                      data={"visit": str(second.id), "weekday": "fri", "time": "09:00"})
    assert moved.status_code == 303
    added = desk.post(f"/desk/courses/{series_id}/add-visits", data={"count": "1"})
    assert added.status_code == 303
    assert len(course_visits(series_id)) == 5
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
    assert send_due(utc_now()) == DispatchReport()
    assert smtp_inbox.take() == []


@pytest.mark.usefixtures("smtp_settings")
def test_adding_visits_sends_one_confirmation_of_the_whole_course(desk, patient, smtp_inbox):
    series_id, uids = mailed_course(desk, patient, smtp_inbox)
    added = desk.post(f"/desk/courses/{series_id}/add-visits", data={"count": "2"})
    assert added.status_code == 303
    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["X-Booking-Notification"] == "confirmation"
    assert mail["Subject"] == f"Booked: 6 visits, {VISIT}, from {said(MONDAY, '2:00 PM')}"
    lines = " ".join(mail.get_body(("plain",)).get_content().split())
    for day in (MONDAY + timedelta(days=14), THURSDAY + timedelta(days=14)):
        assert f"- {said(day, '2:00 PM')}, with Alex Rivera, PT, DPT" in lines
    method, events = events_of(mail)
    visits = course_visits(series_id)
    assert method == "REQUEST"
    # The four booked before keep their UIDs (and their calendar events); two are new.
    assert [str(event["UID"]) for event in events][:4] == [uids[visit.id] for visit in visits[:4]]
    assert [str(event["UID"]) for event in events][4:] == [visit.calendar_uid
                                                           for visit in visits[4:]]
    assert len(set(str(event["UID"]) for event in events)) == 6
    assert [event.decoded("DTSTART") for event in events][4:] == [
        local(MONDAY + timedelta(days=14), 14), local(THURSDAY + timedelta(days=14), 14)]


def test_moving_a_course_onto_the_times_of_its_own_later_visits_is_no_conflict(desk, patient):
    # Mondays and Wednesdays at 10:00 become Wednesdays and Fridays: each Monday visit moves
    # onto the time its Wednesday visit holds until it moves on itself.
    series_id = booked_course(desk, patient, weekdays=["mon", "wed"], time="10:00")
    wednesday = MONDAY + timedelta(days=2)
    first = db.session.scalars(
        select(Appointment.id).where(Appointment.series_id == series_id)
        .order_by(Appointment.start_at)
    ).first()
    answer = desk.post(f"/desk/courses/{series_id}/move-following",
                       data={"visit": str(first), "weekday": "wed", "time": "10:00"})
    assert answer.status_code == 303
    assert course_starts(series_id) == [
        (local(wednesday, 10), "confirmed"),
        (local(FRIDAY, 10), "confirmed"),
        (local(wednesday + timedelta(days=7), 10), "confirmed"),
        (local(FRIDAY + timedelta(days=7), 10), "confirmed"),
    ]
    assert scheduling.appointments_overlapping_count() == 0


def test_moving_the_following_visits_onto_a_taken_time_names_it_and_moves_nothing(
    desk, patient
):
    series_id = booked_course(desk, patient)
    before = course_starts(series_id)
    block(FRIDAY + timedelta(days=7), 9)
    first = db.session.scalars(
        select(Appointment.id).where(Appointment.series_id == series_id)
        .order_by(Appointment.start_at)
    ).first()
    answer = desk.post(f"/desk/courses/{series_id}/move-following",
                       data={"visit": str(first), "weekday": "fri", "time": "09:00"})
    assert answer.status_code == 409
    html = answer.get_data(as_text=True)
    assert f"Nothing was moved: {FRIDAY + timedelta(days=7):%a %d %b} 09:00 is taken." in html
    assert course_starts(series_id) == before
    # A visit of another course, or none at all, is refused naming the field.
    other = desk.post(f"/desk/courses/{series_id}/move-following",
                      data={"visit": "999999", "weekday": "fri", "time": "09:00"})
    assert other.status_code == 422
    assert "From the visit: Choose one of the course&#39;s visits to come." in (
        other.get_data(as_text=True))
    assert course_starts(series_id) == before


def test_adding_visits_to_the_end_books_them_all_or_none(desk, patient):
    series_id = booked_course(desk, patient)
    block(THURSDAY + timedelta(days=14), 14)
    refused = desk.post(f"/desk/courses/{series_id}/add-visits", data={"count": "2"})
    assert refused.status_code == 409
    assert (f"Nothing was added: {THURSDAY + timedelta(days=14):%a %d %b} 14:00 is taken"
            in refused.get_data(as_text=True))
    assert len(course_starts(series_id)) == 4

    added = desk.post(f"/desk/courses/{series_id}/add-visits", data={"count": "1"})
    assert added.status_code == 303
    assert course_starts(series_id)[-1] == (local(MONDAY + timedelta(days=14), 14), "confirmed")
    assert db.session.get(AppointmentSeries, series_id).visit_count == 5
    # One more confirmation, listing the whole course.
    assert pending("confirmation", series_id) == 2
    assert desk.post(f"/desk/courses/{series_id}/add-visits",
                     data={"count": "0"}).status_code == 422


def test_cancelling_the_rest_of_the_course_tells_the_patient_once(desk, patient):
    series_id = booked_course(desk, patient)
    third = db.session.scalars(
        select(Appointment.id).where(Appointment.series_id == series_id)
        .order_by(Appointment.start_at).offset(2)
    ).first()
    refused = desk.post(f"/desk/courses/{series_id}/cancel-following",
                        data={"visit": str(third), "reason": ""})
    assert refused.status_code == 422
    answer = desk.post(f"/desk/courses/{series_id}/cancel-following",
                       data={"visit": str(third), "reason": "patient moved away"})
    assert answer.status_code == 303
    assert [status for _, status in course_starts(series_id)] == [
        "confirmed", "confirmed", "cancelled", "cancelled"
    ]
    assert pending("cancellation", series_id) == 1
    page = desk.get(f"/desk/courses/{series_id}").get_data(as_text=True)
    assert "0 done, 2 to come, 2 cancelled" in page


def test_time_off_that_strands_course_visits_lists_them_as_part_of_the_course(desk, patient):
    series_id = booked_course(desk, patient)
    day = THURSDAY + timedelta(days=7)
    answer = desk.post("/desk/therapists/alex-rivera/time-off", data={
        "starts": f"{day.isoformat()}T08:00", "ends": f"{day.isoformat()}T18:00",
        "reason": "Conference",
    })
    assert answer.status_code == 303
    page = desk.get("/desk/therapists/alex-rivera/schedule").get_data(as_text=True)
    assert "1 booked visit(s) now fall outside the hours" in page
    assert (f"{day:%a %d %b %Y} 14:00 Robin Patient, Dry needling session</a>, visit 4 of 4 "
            f'of a <a href="/desk/courses/{series_id}">course</a>') in page


def test_a_therapist_sees_their_own_courses_but_changes_nothing(app, staff, patient):
    desk = signed_in(app, staff["front_desk"])
    series_id = booked_course(desk, patient)
    alex = signed_in(app, staff["therapist"])
    page = alex.get(f"/desk/courses/{series_id}")
    assert page.status_code == 200
    assert "Move this and the following visits" not in page.get_data(as_text=True)
    assert alex.get("/desk/courses/new").status_code == 403
    assert alex.post(f"/desk/courses/{series_id}/add-visits",
                     data={"count": "1"}).status_code == 403
    assert len(course_starts(series_id)) == 4


@pytest.fixture
def csrf_on(app_settings):
    app_settings["WTF_CSRF_ENABLED"] = True


@pytest.mark.usefixtures("csrf_on")
def test_a_course_posted_without_its_form_token_is_refused_and_books_nothing(desk, patient):
    refused = desk.post("/desk/courses/new", data=course_form(patient, action="book"))
    assert refused.status_code == 400
    assert series_count() == 0
    page = desk.get(f"/desk/courses/new?patient={patient}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    booked = desk.post("/desk/courses/new",
                       data=course_form(patient, action="book", csrf_token=token))
    assert booked.status_code == 303
    assert series_count() == 1
