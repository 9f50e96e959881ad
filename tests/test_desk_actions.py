"""The front desk at work: booking for patients, moving, cancelling, attendance, schedules,
patients' messages, the audit log and a therapist's feed, as staff see them in the pages."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from booking import create_app, scheduling
from booking.database import hold_write_lock
from booking.extensions import db
from booking.models import (
    Appointment,
    AuditEntry,
    Notification,
    Service,
    Therapist,
    TimeOff,
    last_dispatcher_run,
    record_dispatcher_run,
    utc_now,
)
from booking.notifications import dispatcher
from config import TestConfig, load_config
from tests.conftest import CLINIC_ZONE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins
from tests.servers import dispose_engines, free_port


@pytest.fixture
def staff(clinic):
    return staff_logins()


@pytest.fixture
def desk(app, staff):
    return signed_in(app, staff["front_desk"])


def _walk_in(day, hour, minute=0, **changes):
    form = {
        "name": "Wendy Walker",
        "email": "wendy@example.com",
        "phone": "+1 586 555 0199",
        "service": "schedule-a-call",
        "therapist": "alex-rivera",
        "day": day.isoformat(),
        "time": f"{hour:02d}:{minute:02d}",
    }
    form.update(changes)
    return form


def _only_appointment() -> Appointment:
    db.session.rollback()
    return db.session.scalars(select(Appointment)).one()


# --- booking -------------------------------------------------------------------------------


def test_front_desk_books_a_walk_in_who_gets_a_confirmation(desk):
    day = next_weekday(0)
    answer = desk.post("/desk/book", data=_walk_in(day, 9, 30))
    assert answer.status_code == 303
    visit = _only_appointment()
    assert answer.headers["Location"] == f"/desk/appointments/{visit.id}"
    assert visit.start_at == local(day, 9, 30)
    assert visit.booked_by == "staff:desk@clinic.example"
    assert visit.patient.phone == "+1 586 555 0199"
    page = desk.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Booked Schedule a call for Wendy Walker." in page
    kinds = db.session.scalars(
        select(Notification.kind).where(Notification.appointment_id == visit.id)
    ).all()
    assert "confirmation" in kinds


def test_front_desk_finds_a_patient_by_name_email_or_phone_and_books_for_them(desk, book):
    known = book(name="Maya Chen", email="lin.chen@example.com", phone="+1 (586) 555-0142")
    for search in ("maya", "LIN.CHEN", "5550142"):
        page = desk.get("/desk/book", query_string={"q": search}).get_data(as_text=True)
        assert f"/desk/book?patient={known.patient_id}" in page, search
    assert "No patient matches" in desk.get("/desk/book?q=zebra").get_data(as_text=True)
    day = next_weekday(1)
    answer = desk.post(
        "/desk/book",
        data={"patient_id": str(known.patient_id), "service": "pt-evaluation",
              "therapist": "jamie-lee", "day": day.isoformat(), "time": "10:00"},
    )
    assert answer.status_code == 303
    db.session.rollback()
    visits = db.session.scalars(
        select(Appointment).where(Appointment.patient_id == known.patient_id)
    ).all()
    assert len(visits) == 2


def test_a_booking_form_without_a_patient_is_refused_naming_the_fields(desk):
    answer = desk.post(
        "/desk/book", data=_walk_in(next_weekday(0), 9, name="", email="not-an-email")
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Give the patient&#39;s name" in html
    assert "Invalid email address." in html
    assert db.session.scalars(select(Appointment)).first() is None


@pytest.fixture
def two_weeks_notice(clinic):
    """Calls need two weeks' notice online, so next week is inside the minimum notice."""
    service = db.session.scalars(select(Service).where(Service.slug == "schedule-a-call")).one()
    service.min_notice_hours = 14 * 24
    db.session.commit()


@pytest.mark.usefixtures("two_weeks_notice")
def test_front_desk_overrides_the_minimum_notice_with_a_reason_the_public_api_cannot(
    desk, client, staff
):
    day = next_weekday(0)
    refused = desk.post("/desk/book", data=_walk_in(day, 9))
    assert refused.status_code == 409
    assert "give an override reason" in refused.get_data(as_text=True)
    assert db.session.scalars(select(Appointment)).first() is None

    booked = desk.post(
        "/desk/book", data=_walk_in(day, 9, override_reason="Acute pain, seen today")
    )
    assert booked.status_code == 303
    visit = _only_appointment()
    assert visit.evaluation_override == "Acute pain, seen today"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "booked")).one()
    assert entry.actor == "staff:desk@clinic.example"
    assert entry.details["override"] == "Acute pain, seen today"

    api = client.post(
        "/api/v1/appointments",
        json={"service": "schedule-a-call", "start": local(day, 10).isoformat(),
              "therapist": "alex-rivera",
              "patient": {"name": "Wendy Walker", "email": "wendy@example.com",
                          "phone": "+1 586 555 0199"}},
    )
    assert api.status_code == 409
    assert api.get_json()["error"]["code"] == "slot_unavailable"


def test_an_override_never_allows_a_double_booking(desk, book):
    day = next_weekday(0)
    book(start=local(day, 9), therapist="alex-rivera")
    answer = desk.post(
        "/desk/book", data=_walk_in(day, 9, override_reason="squeeze her in")
    )
    assert answer.status_code == 409
    assert "that time is not available" in answer.get_data(as_text=True)
    db.session.rollback()
    assert len(db.session.scalars(select(Appointment)).all()) == 1


# --- moving, cancelling, attendance --------------------------------------------------------


def test_front_desk_moves_a_visit_to_another_therapist_and_time(desk, book):
    visit = book(start=local(next_weekday(0), 9), therapist="alex-rivera")
    new_day = next_weekday(2)
    answer = desk.post(
        f"/desk/appointments/{visit.id}/move",
        data={"therapist": "jamie-lee", "day": new_day.isoformat(), "time": "11:15"},
    )
    assert answer.status_code == 303
    moved = _only_appointment()
    assert moved.start_at == local(new_day, 11, 15)
    assert moved.therapist.slug == "jamie-lee"
    assert moved.sequence == 1
    page = desk.get(f"/desk/appointments/{visit.id}").get_data(as_text=True)
    assert "Moved; the patient is told." in page
    assert "rescheduled by staff:desk@clinic.example" in page


def test_moving_onto_a_taken_time_is_refused_and_changes_nothing(desk, book):
    day = next_weekday(0)
    visit = book(start=local(day, 9), therapist="alex-rivera")
    book(start=local(day, 10), therapist="alex-rivera", name="Other Person",
         email="other@example.com")
    answer = desk.post(
        f"/desk/appointments/{visit.id}/move",
        data={"therapist": "alex-rivera", "day": day.isoformat(), "time": "10:00"},
    )
    assert answer.status_code == 409
    assert "that time is not available" in answer.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Appointment, visit.id).start_at == local(day, 9)


def test_cancelling_needs_a_reason_and_tells_the_patient(desk, book):
    visit = book(start=local(next_weekday(0), 9))
    without = desk.post(f"/desk/appointments/{visit.id}/cancel", data={"reason": ""})
    assert without.status_code == 422
    assert "Reason (the patient is told the visit is cancelled): This field is required." in (
        without.get_data(as_text=True)
    )
    answer = desk.post(
        f"/desk/appointments/{visit.id}/cancel", data={"reason": "Therapist ill"}
    )
    assert answer.status_code == 303
    cancelled = _only_appointment()
    assert cancelled.status == "cancelled"
    assert cancelled.cancel_reason == "Therapist ill"
    pending = db.session.scalars(
        select(Notification.kind).where(
            Notification.appointment_id == visit.id, Notification.status == "pending"
        )
    ).all()
    assert pending == ["cancellation"]


@pytest.fixture
def needling_last_monday(clinic):
    """A dry needling visit last Monday (booked the week before), aftercare still pending."""
    today = utc_now().astimezone(CLINIC_ZONE).date()
    monday = today - timedelta(days=today.weekday() + 7)
    start = local(monday, 9)
    visit = scheduling.book_appointment(
        scheduling.bookable_service("dry-needling"),
        start,
        scheduling.PatientDetails(name="Nora Needle", email="nora@example.com"),
        therapist_slug="alex-rivera",
        booked_by="staff:desk@clinic.example",
        override=scheduling.StaffOverride("staff:desk@clinic.example", "evaluated elsewhere"),
        now=start - timedelta(days=7),
    )
    db.session.commit()
    return visit


def _pending_kinds(visit_id: int) -> list[str]:
    db.session.rollback()
    return sorted(
        db.session.scalars(
            select(Notification.kind).where(
                Notification.appointment_id == visit_id, Notification.status == "pending"
            )
        )
    )


def test_a_no_show_drops_the_aftercare_still_waiting(desk, needling_last_monday):
    visit_id = needling_last_monday.id
    assert "aftercare" in _pending_kinds(visit_id)
    answer = desk.post(f"/desk/appointments/{visit_id}/attendance", data={"outcome": "no_show"})
    assert answer.status_code == 303
    assert "aftercare" not in _pending_kinds(visit_id)
    visit = db.session.get(Appointment, visit_id)
    assert visit.status == "no_show"
    assert visit.sequence == 1
    action = db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.appointment_id == visit_id)
        .order_by(AuditEntry.id.desc())
    ).first()
    assert action == "no_show"


def test_arrived_then_completed_keeps_the_aftercare(desk, needling_last_monday):
    visit_id = needling_last_monday.id
    url = f"/desk/appointments/{visit_id}/attendance"
    assert desk.post(url, data={"outcome": "arrived"}).status_code == 303
    page = desk.get(f"/desk/appointments/{visit_id}").get_data(as_text=True)
    assert "confirmed, arrived" in page
    assert desk.post(url, data={"outcome": "completed"}).status_code == 303
    db.session.rollback()
    visit = db.session.get(Appointment, visit_id)
    assert visit.status == "completed"
    assert visit.arrived_at is not None
    assert "aftercare" in _pending_kinds(visit_id)
    again = desk.post(url, data={"outcome": "no_show"})
    assert again.status_code == 409
    assert "this appointment is completed" in again.get_data(as_text=True)


def test_attendance_cannot_be_recorded_days_before_the_visit(desk, book):
    visit = book(start=local(next_weekday(0), 9))
    answer = desk.post(f"/desk/appointments/{visit.id}/attendance", data={"outcome": "arrived"})
    assert answer.status_code == 409
    assert "from 30 minutes before the start" in answer.get_data(as_text=True)


# --- therapists' schedules -----------------------------------------------------------------


def _slots(client, therapist: str, day) -> list[str]:
    answer = client.get(
        "/api/v1/availability",
        query_string={"service": "schedule-a-call", "start": day.isoformat(),
                      "end": day.isoformat(), "therapist": therapist},
    )
    assert answer.status_code == 200
    return [slot["start"] for slot in answer.get_json()["slots"]]


def test_new_weekly_hours_show_at_once_and_stranded_visits_are_listed(desk, client, book):
    monday = next_weekday(0)
    stranded = book(start=local(monday, 14), therapist="alex-rivera", name="Stan Strand",
                    email="stan@example.com")
    assert local(monday, 15).isoformat() in _slots(client, "alex-rivera", monday)
    hours = {"monday": "08:00-12:00", "tuesday": "08:00-12:00, 13:00-17:00",
             "wednesday": "10:00-18:00", "thursday": "08:00-12:00, 13:00-17:00",
             "friday": "08:00-12:00", "saturday": "", "sunday": ""}
    answer = desk.post("/desk/therapists/alex-rivera/hours", data=hours)
    assert answer.status_code == 303
    slots = _slots(client, "alex-rivera", monday)
    assert local(monday, 11, 45).isoformat() in slots
    assert local(monday, 15).isoformat() not in slots
    page = desk.get("/desk/therapists/alex-rivera/schedule").get_data(as_text=True)
    assert "1 booked visit(s) now fall outside the hours" in page
    assert f'href="/desk/appointments/{stranded.id}"' in page
    db.session.rollback()
    assert db.session.get(Appointment, stranded.id).status == "confirmed"  # kept, and listed
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "hours_changed")
    ).one()
    assert entry.therapist_id == stranded.therapist_id
    assert entry.details["to"].startswith("mon 08:00-12:00;")


def test_bad_hours_are_refused_naming_the_day_and_change_nothing(desk):
    answer = desk.post(
        "/desk/therapists/alex-rivera/hours",
        data={"monday": "09:00-12:00, 11:00-13:00", "tuesday": "nine to five"},
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Monday: &#34;11:00-13:00&#34; overlaps &#34;09:00-12:00&#34;" in html
    assert "Tuesday: must be a time window like &#34;08:00-12:00&#34;" in html
    db.session.rollback()
    alex = db.session.scalars(select(Therapist).where(Therapist.slug == "alex-rivera")).one()
    assert len(alex.hours) == 8


def test_time_off_closes_the_slots_at_once_and_removing_it_opens_them(desk, client, clinic):
    tuesday = next_weekday(1)
    assert len(_slots(client, "jamie-lee", tuesday)) == 32
    answer = desk.post(
        "/desk/therapists/jamie-lee/time-off",
        data={"starts": f"{tuesday}T12:00", "ends": f"{tuesday}T17:00", "reason": "Course"},
    )
    assert answer.status_code == 303
    assert len(_slots(client, "jamie-lee", tuesday)) == 12
    block = db.session.scalars(select(TimeOff)).one()
    assert desk.post(
        f"/desk/therapists/jamie-lee/time-off/{block.id}/remove"
    ).status_code == 303
    assert len(_slots(client, "jamie-lee", tuesday)) == 32
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["time_off_added", "time_off_removed"]


def test_time_off_ending_before_it_starts_is_refused(desk):
    tuesday = next_weekday(1)
    answer = desk.post(
        "/desk/therapists/jamie-lee/time-off",
        data={"starts": f"{tuesday}T12:00", "ends": f"{tuesday}T11:00"},
    )
    assert answer.status_code == 422
    assert "Until: Must be after the start." in answer.get_data(as_text=True)


def test_time_off_saved_while_the_scheduler_writes_waits_its_turn_and_is_saved(
    app, app_settings, desk
):
    """Under `make run` the scheduler writes to the same SQLite file as the pages. A save that
    began by reading could not become a write once the scheduler had committed meanwhile, and
    answered 503. Holding the write lock from its first statement, it waits for the scheduler
    and then saves."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's one writer at a time; on PostgreSQL writers lock rows")
    tuesday = next_weekday(1)
    db.session.rollback()  # the save starts its own transaction, as in a fresh request
    scheduler_writing, save_began = threading.Event(), threading.Event()
    scheduler_failed: list[BaseException] = []

    def scheduler_run():
        scheduler = create_app(app_settings)  # its own process under `make run`
        with scheduler.app_context():
            try:
                hold_write_lock()
                record_dispatcher_run(utc_now())
                scheduler_writing.set()
                # The save has read (and, before the fix, taken its snapshot): now commit.
                assert save_began.wait(timeout=30)
                db.session.commit()
            except BaseException as failure:
                scheduler_failed.append(failure)
                scheduler_writing.set()
            finally:
                db.session.remove()
                dispose_engines()

    def first_statement_ran(*_arguments):
        save_began.set()

    scheduler = threading.Thread(target=scheduler_run)
    scheduler.start()
    assert scheduler_writing.wait(timeout=30)
    event.listen(db.engine, "after_cursor_execute", first_statement_ran)
    try:
        answer = desk.post(
            "/desk/therapists/jamie-lee/time-off",
            data={"starts": f"{tuesday}T12:00", "ends": f"{tuesday}T17:00", "reason": "Course"},
        )
    finally:
        event.remove(db.engine, "after_cursor_execute", first_statement_ran)
        save_began.set()
        scheduler.join(timeout=30)
    assert scheduler_failed == []
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert "Time off added." in desk.get(answer.location).get_data(as_text=True)
    db.session.rollback()
    assert [row.reason for row in db.session.scalars(select(TimeOff))] == ["Course"]
    assert last_dispatcher_run() is not None  # the scheduler's write stands too


def test_with_the_database_out_of_reach_a_desk_page_says_so_in_the_back_offices_look():
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/booking"  # nothing listens
    app = create_app({**load_config(TestConfig), "SQLALCHEMY_DATABASE_URI": nowhere})
    answer = app.test_client().post(
        "/desk/login", data={"email": "desk@clinic.example", "password": "a long passphrase"}
    )
    assert answer.status_code == 503
    assert answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "Please try again in a moment" in page
    assert "Nothing was saved." in page
    with app.app_context():
        dispose_engines()


# --- patients and their messages -----------------------------------------------------------


@pytest.mark.usefixtures("smtp_settings")
def test_a_patients_page_shows_visits_evaluation_and_messages_and_resends(
    app, staff, book, smtp_inbox
):
    desk = signed_in(app, staff["front_desk"])
    visit = book("pt-evaluation", start=local(next_weekday(0), 9), name="Eve Evans",
                 email="eve@example.com")
    page = desk.get(f"/desk/patients/{visit.patient_id}").get_data(as_text=True)
    assert "none on record yet" in page
    assert "Physical therapy evaluation" in page
    assert '<td class="notification-pending">pending</td>' in page

    dispatcher.send_due(utc_now())
    assert [m["X-Booking-Notification"] for m in smtp_inbox.take()] == ["confirmation"]
    db.session.rollback()
    confirmation = db.session.scalars(
        select(Notification).where(Notification.kind == "confirmation")
    ).one()
    page = desk.get(f"/desk/patients/{visit.patient_id}").get_data(as_text=True)
    assert f"/desk/notifications/{confirmation.id}/resend" in page
    answer = desk.post(f"/desk/notifications/{confirmation.id}/resend")
    assert answer.status_code == 303
    dispatcher.send_due(utc_now())
    again = smtp_inbox.take()
    assert [m["X-Booking-Notification"] for m in again] == ["confirmation"]
    assert again[0]["To"] == "Eve Evans <eve@example.com>"

    listed = desk.get("/desk/patients?q=evans").get_data(as_text=True)
    assert f'href="/desk/patients/{visit.patient_id}">Eve Evans</a>' in listed


def test_an_evaluation_on_record_shows_on_the_patients_page(desk, needling_last_monday):
    # Nora's dry needling was booked with an override: no evaluation on record.
    page = desk.get(f"/desk/patients/{needling_last_monday.patient_id}").get_data(as_text=True)
    assert "none on record yet" in page


# --- the audit log and the feed ------------------------------------------------------------


def test_the_audit_log_filters_by_who_what_and_when(app, staff, book):
    admin = signed_in(app, staff["admin"])
    desk = signed_in(app, staff["front_desk"])
    visit = book(start=local(next_weekday(0), 9))
    desk.post(f"/desk/appointments/{visit.id}/cancel", data={"reason": "Moved away"})
    everything = admin.get("/desk/audit").get_data(as_text=True)
    assert everything.count('<td class="action">') == 2
    by_desk = admin.get("/desk/audit?actor=desk@").get_data(as_text=True)
    assert by_desk.count('<td class="action">') == 1
    assert "reason: Moved away" in by_desk
    booked = admin.get("/desk/audit?action=booked").get_data(as_text=True)
    assert '<td class="action">booked</td>' in booked
    assert f"start: {next_weekday(0)} 09:00" in booked  # in clinic time
    assert '<td class="action">cancelled</td>' not in booked
    yesterday = utc_now().astimezone(CLINIC_ZONE).date() - timedelta(days=1)
    old = admin.get(f"/desk/audit?until={yesterday}").get_data(as_text=True)
    assert "Nothing matches." in old
    assert admin.get("/desk/audit?since=yesterday").status_code == 422


def test_a_therapist_sees_and_rotates_their_feed_url(app, staff):
    therapist = signed_in(app, staff["therapist"])
    page = therapist.get("/desk/therapists/alex-rivera/feed").get_data(as_text=True)
    old_url = _feed_url(page)
    assert old_url.startswith("http://127.0.0.1:5000/feeds/")
    assert 'data-copy="feed-url"' in page
    assert therapist.post("/desk/therapists/alex-rivera/feed/rotate").status_code == 303
    new_url = _feed_url(therapist.get("/desk/therapists/alex-rivera/feed").get_data(as_text=True))
    assert new_url != old_url
    entry = db.session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.actor) == ("feed_rotated", "staff:alex@clinic.example")


def _feed_url(html: str) -> str:
    return html.split('id="feed-url" value="', 1)[1].split('"', 1)[0]


# --- the calendar views --------------------------------------------------------------------


def test_the_day_view_shows_each_therapist_their_visits_and_gaps(desk, book):
    day = next_weekday(0)
    book(start=local(day, 9), therapist="alex-rivera", name="Ana Alvarez",
         email="ana@example.com")
    cancelled = book(start=local(day, 10), therapist="jamie-lee", name="Ben Brooks",
                     email="ben@example.com")
    scheduling.cancel_appointment(cancelled, reason="ill")
    db.session.commit()
    html = desk.get(f"/desk/?day={day}").get_data(as_text=True)
    assert "Alex Rivera, PT, DPT" in html
    assert "Jamie Lee, PT" in html
    assert "09:00–09:15" in html
    assert "Ana Alvarez" in html
    assert "free 2 h 45 min" in html  # Alex: 09:15 to 12:00
    assert f"/desk/book?therapist=alex-rivera&amp;day={day}&amp;time=09:15" in html
    assert "1 cancelled" in html
    assert desk.get("/desk/?day=monday").status_code == 400


def test_the_week_view_shows_one_therapists_week(desk, book):
    day = next_weekday(2)
    book(start=local(day, 10), therapist="alex-rivera", name="Wes Wednesday",
         email="wes@example.com")
    html = desk.get(f"/desk/therapists/alex-rivera/week?day={day}").get_data(as_text=True)
    assert "Wes Wednesday" in html
    assert html.count('class="calendar-column"') == 7


def _queries_for(client, url) -> int:
    count = 0

    def counted(*_):
        nonlocal count
        count += 1

    event.listen(db.engine, "before_cursor_execute", counted)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", counted)
    return count


def test_the_day_view_reads_a_fixed_number_of_queries_however_full_the_day(desk, book):
    day = next_weekday(0)
    book(start=local(day, 9), therapist="alex-rivera")
    few = _queries_for(desk, f"/desk/?day={day}")
    for hour in (10, 11, 13, 14, 15):
        book(start=local(day, hour), therapist="alex-rivera", name=f"Patient {hour}",
             email=f"p{hour}@example.com")
        book(start=local(day, hour), therapist="jamie-lee", name=f"Other {hour}",
             email=f"o{hour}@example.com")
    assert _queries_for(desk, f"/desk/?day={day}") == few
