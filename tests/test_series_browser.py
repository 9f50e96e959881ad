"""A weekly course booked by a patient in a real browser (Debian's Chromium through
Playwright): "repeat weekly" on the public booking page, a taken visit moved to one of the
times offered, every visit booked at once; then the rest cancelled from the series' link in
the confirmation mail, and the one cancellation in the real SMTP inbox.
"""

from __future__ import annotations

import re

import pytest
from icalendar import Calendar
from sqlalchemy import select

from booking.extensions import db
from booking.models import Appointment, AppointmentStatus, Notification, utc_now
from booking.notifications.dispatcher import DispatchReport, send_due
from tests.conftest import CLINIC_ZONE, local
from tests.test_patient_browser import assert_accessible, details_url
from tests.test_series import MONDAY, evaluated, mondays_and_thursdays, someone_else_with

pytestmark = pytest.mark.usefixtures("smtp_settings", "clinic")


def series_visits() -> list[Appointment]:
    db.session.rollback()  # the server wrote in its own sessions
    return list(db.session.scalars(
        select(Appointment).where(Appointment.series_id.is_not(None))
        .order_by(Appointment.start_at)))


def test_a_patient_books_a_weekly_follow_up_and_cancels_the_rest_from_the_mail(
    client, page, live_server, smtp_inbox
):
    patient = evaluated(50)
    starts = [start.astimezone(CLINIC_ZONE) for start in
              mondays_and_thursdays(4, local(MONDAY, 14))]
    someone_else_with(client, "alex-rivera", starts[1])  # Thursday's 14:00 is taken
    send_due(utc_now())
    smtp_inbox.take()

    page.goto(details_url(live_server, "dry-needling", starts[0], "alex-rivera"))
    page.get_by_label("Your full name").fill(patient["name"])
    page.get_by_label("Your email").fill(patient["email"])
    assert page.get_by_label("Monday").is_checked()  # the first visit's weekday
    page.get_by_label("Thursday").check()
    page.get_by_label("How many visits, this one included?").select_option("4")
    page.get_by_role("button", name="See the weekly visits").click()

    preview = page.locator(".series-preview")
    # The preview is below the form: the reader is taken to it.
    # Asked again until true: while the preview's page loads there is no focused element yet.
    page.wait_for_function("() => document.activeElement?.id === 'series-preview-heading'")
    assert preview.get_by_role("heading").first.inner_text() == "Your 4 visits"
    assert "1 visit cannot be booked at its weekly time" in preview.inner_text()
    assert "not free: taken" in preview.locator('[data-visit="2"]').inner_text()
    assert page.get_by_role("button", name=re.compile("^Book these")).count() == 0
    assert_accessible(page)
    alternatives = page.get_by_role("group", name="Another time for visit 2")
    chosen = alternatives.get_by_role("radio").first
    chosen_start = chosen.get_attribute("value")
    chosen.check()
    page.get_by_role("button", name="Check the visits again").click()
    assert "Every visit is free" in page.locator(".series-preview").inner_text()
    assert series_visits() == []  # nothing is booked by looking
    page.get_by_role("button", name="Book these 4 visits").click()

    page.wait_for_url(re.compile(r"/manage/[^/]+/confirmation$"))
    assert page.locator("h1").inner_text() == "You're booked"
    assert "Your 4 weekly visits are confirmed." in page.locator("main").inner_text()
    assert_accessible(page)
    booked = series_visits()
    assert [visit.start_at.astimezone(CLINIC_ZONE).isoformat() for visit in booked] == [
        starts[0].isoformat(), chosen_start, starts[2].isoformat(), starts[3].isoformat()]

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [confirmation] = smtp_inbox.take()
    assert confirmation["X-Booking-Notification"] == "confirmation"
    text = confirmation.get_body(("plain",)).get_content()
    series_link = re.search(r"cancel the rest:\s+(\S+)", text).group(1)
    path = series_link.removeprefix("http://127.0.0.1:5000")  # PUBLIC_BASE_URL in the tests

    page.goto(live_server + path)
    assert page.locator("h1").inner_text() == "Your weekly visits"
    assert page.locator("tbody tr").count() == 4
    assert_accessible(page)
    page.get_by_role("link", name="Cancel it and the later ones (from visit 3)").click()
    assert page.locator("h1").inner_text() == "Cancel these visits?"
    assert page.locator(".cancelled-visits li").count() == 2
    page.get_by_role("button", name="Yes, cancel these 2 visits").click()
    page.wait_for_url(re.compile(r"/manage/[^/]+$"))
    assert "2 visits are cancelled" in page.locator("[role=status]").inner_text()
    assert [row.get_attribute("data-status") for row in page.locator("tbody tr").all()] == [
        "confirmed", "confirmed", "cancelled", "cancelled"]

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [cancellation] = smtp_inbox.take()
    assert cancellation["X-Booking-Notification"] == "cancellation"
    [attachment] = list(cancellation.iter_attachments())
    calendar = Calendar.from_ical(attachment.get_content())
    assert str(calendar["METHOD"]) == "CANCEL"
    assert [str(event["UID"]) for event in calendar.walk("VEVENT")] == [
        visit.calendar_uid for visit in booked[2:]]
    after = series_visits()
    assert [visit.status for visit in after] == [AppointmentStatus.CONFIRMED] * 2 + [
        AppointmentStatus.CANCELLED] * 2
    still_pending = db.session.scalars(select(Notification.appointment_id).where(
        Notification.kind == "reminder", Notification.status == "pending",
        Notification.appointment_id.in_([visit.id for visit in booked]))).all()
    assert set(still_pending) == {booked[0].id, booked[1].id}
