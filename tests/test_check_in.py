"""The check-in two days after dry needling: the mail links to a page that asks (a GET changes
nothing), its POST records soreness, better / same / worse and a note; "worse" or soreness of
7 or more puts the patient on the front desk's call-back list the same day. The therapist sees
the answers; the front desk, the feeds, the mail and the logs never do."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from booking import scheduling
from booking.calendars.feed_tokens import feed_token_for
from booking.extensions import db
from booking.models import (
    Appointment,
    AuditEntry,
    CallListItem,
    CheckInAnswer,
    Notification,
    utc_now,
)
from booking.notifications.dispatcher import send_due
from booking.patients.manage_links import manage_token_for
from tests.conftest import CLINIC_ZONE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins

# smtp_settings first: it must add the mail server to the settings before `app` is built.
pytestmark = pytest.mark.usefixtures("smtp_settings", "clinic")

PAT = {"name": "Pat Example", "email": "pat@example.com"}
NOTE = "Throbbing at night near the left shoulder blade"


def _past_weekday(days_ago: int):
    """The latest Monday-to-Thursday at least this many days back (Alex works 08:00-12:00)."""
    day = utc_now().astimezone(CLINIC_ZONE).date() - timedelta(days=days_ago)
    while day.weekday() > 3:
        day -= timedelta(days=1)
    return day


def _needling_on(day) -> Appointment:
    """A dry needling session on `day` at 09:00, booked three days before."""
    start = local(day, 9)
    visit = scheduling.book_appointment(
        scheduling.bookable_service("dry-needling"), start, scheduling.PatientDetails(**PAT),
        therapist_slug="alex-rivera", booked_by="staff:desk@clinic.example",
        override=scheduling.StaffOverride("staff:desk@clinic.example", "evaluated elsewhere"),
        now=start - timedelta(days=3),
    )
    db.session.commit()
    return visit


@pytest.fixture
def session_done():
    return _needling_on(_past_weekday(3))


@pytest.fixture
def staff(clinic):
    return staff_logins()


def _answer(client, visit: Appointment, **answers):
    return client.post(f"/manage/{manage_token_for(visit)}/check-in", data=answers)


def _stored(model) -> int:
    db.session.rollback()  # see what the requests wrote
    return db.session.scalar(select(func.count()).select_from(model))


def test_following_every_link_of_the_check_in_mail_changes_nothing(client, session_done,
                                                                  smtp_inbox):
    check_in_due = session_done.end_at + timedelta(hours=48)
    send_due(check_in_due)
    [mail] = [m for m in smtp_inbox.take() if m["Subject"].startswith("Checking in after")]
    parts = [part.get_content() for part in mail.walk() if part.get_content_maintype() == "text"]
    links = {link for part in parts for link in re.findall(r"https?://[^\s\"<>]+", part)}
    check_in_link = f"/manage/{manage_token_for(session_done)}/check-in"
    assert any(link.endswith(check_in_link) for link in links)
    before = (session_done.status, session_done.start_at, session_done.sequence)

    for link in links:
        answer = client.get(re.sub(r"^https?://[^/]+", "", link))
        assert answer.status_code == 200, link

    page = client.get(check_in_link).get_data(as_text=True)
    assert "How are you doing after your session?" in page
    assert 'name="soreness"' in page and 'value="worse"' in page
    assert 'method="post"' in page
    assert _stored(CheckInAnswer) == 0
    assert _stored(CallListItem) == 0
    visit = db.session.get(Appointment, session_done.id)
    assert (visit.status, visit.start_at, visit.sequence) == before


def test_worse_puts_the_patient_on_the_call_back_list_the_same_day(app, client, session_done,
                                                                   staff):
    answer = _answer(client, session_done, soreness="4", trend="worse", note=NOTE)
    assert answer.status_code == 303
    thanks = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Thank you. Your therapist will see your answers." in thanks

    desk = signed_in(app, staff["front_desk"])
    listed = desk.get("/desk/call-backs")
    text = listed.get_data(as_text=True)
    assert listed.status_code == 200
    assert "Pat Example" in text
    assert f"/desk/appointments/{session_done.id}" in text
    assert NOTE not in text and "worse" not in text.replace("worse after", "")
    # Called back: marked done, gone from the list.
    item = db.session.scalars(select(CallListItem)).one()
    assert item.kind == "call_back"
    assert item.created_at.astimezone(CLINIC_ZONE).date() == (
        utc_now().astimezone(CLINIC_ZONE).date()
    )
    assert desk.post(f"/desk/call-lists/{item.id}/done").status_code == 303
    assert "Nobody to call." in desk.get("/desk/call-backs").get_data(as_text=True)


@pytest.mark.parametrize(
    ("soreness", "trend", "called_back"),
    [("7", "better", True), ("10", "same", True), ("6", "same", False), ("0", "better", False)],
)
def test_soreness_of_seven_or_more_calls_for_a_call_back(app, client, session_done, staff,
                                                        soreness, trend, called_back):
    assert _answer(client, session_done, soreness=soreness, trend=trend).status_code == 303
    page = signed_in(app, staff["front_desk"]).get("/desk/call-backs").get_data(as_text=True)
    assert ("Pat Example" in page) is called_back


def test_bad_answers_are_refused_naming_the_field_and_nothing_is_recorded(client, session_done):
    cases = [
        ({"soreness": "11", "trend": "same"}, "Soreness: choose a number from 0"),
        ({"soreness": "-1", "trend": "same"}, "Soreness: choose a number from 0"),
        ({"soreness": "lots", "trend": "same"}, "Soreness: choose a number from 0"),
        ({"soreness": "", "trend": "same"}, "Soreness: choose a number from 0"),
        ({"soreness": "3"}, "Since the session: choose better, the same or worse."),
        ({"soreness": "3", "trend": "awful"}, "Since the session: choose better"),
        ({"soreness": "3", "trend": "same", "note": "x" * 2001}, "Note: at most 2000 characters"),
        ({"soreness": "3", "trend": "same", "note": "a\x07b"}, "Note: at most 2000 characters"),
    ]
    for answers, message in cases:
        answer = _answer(client, session_done, **answers)
        assert answer.status_code == 422, answers
        assert message in answer.get_data(as_text=True), answers
    assert _stored(CheckInAnswer) == 0
    assert _stored(CallListItem) == 0


def test_a_check_in_is_answered_once_and_only_after_the_visit(client, session_done, book):
    assert _answer(client, session_done, soreness="2", trend="better").status_code == 303
    again = _answer(client, session_done, soreness="9", trend="worse")
    assert again.status_code == 409
    assert "your answers are with your therapist" in again.get_data(as_text=True)
    db.session.rollback()
    stored = db.session.scalars(select(CheckInAnswer)).one()
    assert (stored.soreness, stored.trend) == (2, "better")
    assert _stored(CallListItem) == 0

    call = book("schedule-a-call", start=local(next_weekday(0), 9), phone="+1 586 555 0199")
    not_open = _answer(client, call, soreness="9", trend="worse")
    assert not_open.status_code == 409
    assert "This visit has no check-in to answer" in not_open.get_data(as_text=True)
    assert _stored(CheckInAnswer) == 1


def test_the_therapist_sees_the_answers_on_the_patients_page_and_the_next_visit(
    app, client, session_done, staff
):
    _answer(client, session_done, soreness="8", trend="same", note=NOTE)
    next_visit = _needling_on(next_weekday(1))
    therapist = signed_in(app, staff["therapist"])
    page = therapist.get(f"/desk/patients/{session_done.patient_id}").get_data(as_text=True)
    assert "Check-ins after dry needling" in page
    assert NOTE in page
    assert "<td>8</td><td>same</td>" in page
    visit_page = therapist.get(f"/desk/appointments/{next_visit.id}").get_data(as_text=True)
    assert "soreness 8/10, same" in visit_page
    assert NOTE in visit_page


def test_the_front_desk_feeds_mail_and_logs_never_show_a_check_in_answer(
    app, client, session_done, staff, smtp_inbox, caplog
):
    caplog.set_level(logging.DEBUG)
    _answer(client, session_done, soreness="9", trend="worse", note=NOTE)
    desk = signed_in(app, staff["front_desk"])
    for url in (f"/desk/patients/{session_done.patient_id}",
                f"/desk/appointments/{session_done.id}", "/desk/call-backs",
                f"/desk/?day={session_done.start_at.astimezone(CLINIC_ZONE).date()}"):
        page = desk.get(url)
        assert page.status_code == 200, url
        text = page.get_data(as_text=True)
        assert NOTE not in text, url
        assert "Check-ins after dry needling" not in text, url

    feed = client.get(f"/feeds/{feed_token_for(session_done.therapist)}.ics")
    assert feed.status_code == 200
    assert NOTE not in feed.get_data(as_text=True)

    send_due(session_done.end_at + timedelta(days=3))
    mails = smtp_inbox.take()
    assert mails  # the confirmation, aftercare and check-in went out
    assert all(NOTE not in mail.as_string() for mail in mails)
    assert db.session.scalar(select(func.count()).select_from(Notification)) >= 3

    entries = db.session.scalars(select(AuditEntry)).all()
    assert all(NOTE not in repr(entry.details) for entry in entries)
    assert [entry.details for entry in entries if entry.action == "check_in_answered"] == [{}]
    assert NOTE not in caplog.text
