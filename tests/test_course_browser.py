"""A course of care booked by the front desk in a real browser (headless Chromium): the
preview table shows a taken visit with its alternatives, the desk picks one, books, lands on
the course's page, and the patient gets one confirmation for the whole course."""

from __future__ import annotations

from datetime import timedelta

import pytest

from booking import scheduling
from booking.extensions import db
from booking.models import utc_now
from booking.notifications import dispatcher
from tests.conftest import local, next_weekday, screenshot
from tests.desk_staff import staff_logins
from tests.test_desk_browser import _log_in, assert_accessible
from tests.test_desk_courses import robin_evaluated_by_jamie

pytestmark = pytest.mark.usefixtures("smtp_settings")

MONDAY = next_weekday(0, at_least_days=7)


@pytest.fixture
def evaluated_patient(clinic):
    """Robin, evaluated by Jamie Lee two weeks before the course begins."""
    staff_logins()
    robin = robin_evaluated_by_jamie(MONDAY)
    # Someone else's call with Alex Rivera at the course's third visit.
    scheduling.book_appointment(
        scheduling.bookable_service("schedule-a-call"),
        local(MONDAY + timedelta(days=7), 14),
        scheduling.PatientDetails(name="Sam Other", email="sam@example.com"),
        therapist_slug="alex-rivera",
    )
    db.session.commit()
    return robin


def _mail_to_robin(inbox) -> list[str]:
    db.session.rollback()  # see what the server's thread committed
    dispatcher.send_due(utc_now())
    return [message["X-Booking-Notification"] for message in inbox.take()
            if message["To"] == "Robin Patient <robin@example.com>"]


def test_the_desk_books_a_course_with_one_alternative_picked_and_sees_the_course(
    app, evaluated_patient, live_server, page, smtp_inbox
):
    problems = []
    page.on("response", lambda response: response.status >= 400
            and not response.url.endswith("/favicon.ico") and problems.append(response.url))
    _mail_to_robin(smtp_inbox)  # the evaluation's and the call's mail, sent before the story
    page.set_viewport_size({"width": 1280, "height": 900})
    _log_in(page, live_server, "desk@clinic.example")
    page.goto(f"{live_server}/desk/patients/{evaluated_patient}")
    page.click("text=Book a course for Robin Patient")
    page.select_option("#service", "dry-needling")
    page.select_option("#therapist", "alex-rivera")
    page.fill("#day", MONDAY.isoformat())
    page.fill("#time", "14:00")
    page.check("input[name=weekdays][value=mon]")
    page.check("input[name=weekdays][value=thu]")
    page.fill("#count", "4")
    page.fill("#authorised_visits", "4")
    page.click("button:text('Preview the course')")

    preview = page.locator("table.course-preview")
    preview.wait_for()
    rows = preview.locator("tbody tr")
    assert rows.count() == 4
    assert "Not free: taken" in rows.nth(2).inner_text()
    assert [rows.nth(index).locator("td").nth(1).inner_text() for index in (0, 1, 3)] == [
        "Free", "Free", "Free"
    ]
    alternatives = page.get_by_role("group", name="Instead of visit 3").get_by_role("radio")
    assert 1 <= alternatives.count() <= 3
    screenshot(page, "desk-course-preview-1280")
    assert_accessible(page)
    alternatives.first.check()
    picked = page.get_by_role("group", name="Instead of visit 3").locator("label").first
    picked_time = picked.inner_text().strip()
    page.click("button:text('Book the course')")

    page.wait_for_selector("text=Booked a course of 4 visits of Dry needling session")
    assert page.url.startswith(f"{live_server}/desk/courses/")
    assert page.inner_text(".course-counts") == "0 done, 4 to come, 0 cancelled"
    assert "4 visits, 4 left" in page.inner_text(".authorisation")
    visits = page.locator("table.course-visits tbody tr")
    assert visits.count() == 4
    weekday, day, month, _year, time = visits.nth(2).locator("td").first.inner_text().split()
    assert [weekday, day, month, time] == picked_time.split()
    screenshot(page, "desk-course-1280")
    assert_accessible(page)

    assert _mail_to_robin(smtp_inbox) == ["confirmation"]
    assert _mail_to_robin(smtp_inbox) == []  # once, not once per visit
    assert problems == []
