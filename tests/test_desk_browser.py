"""The back office in a real browser (headless Chromium): a walk-in booked, moved and cancelled
by the front desk, each change in the audit log and each message in the patient's inbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from booking.extensions import db
from booking.models import utc_now
from booking.notifications import dispatcher
from tests.conftest import local, next_weekday, screenshot
from tests.desk_staff import PASSWORD, staff_logins


@pytest.fixture
def staff(clinic):
    return staff_logins()

pytestmark = pytest.mark.usefixtures("smtp_settings")


AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def assert_accessible(page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    assert AXE.exists(), "axe-core is missing: `make install` installs it from package-lock.json"
    page.evaluate(AXE.read_text())  # run by the browser tool itself, so the CSP allows it
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{page.url}: {serious}"


def _log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/desk/")
    assert page.url.startswith(f"{base}/desk/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button:text('Log in')")
    page.wait_for_url(f"{base}/desk/")


def _send_due(inbox) -> list[str]:
    db.session.rollback()  # see what the server's thread committed
    dispatcher.send_due(utc_now())
    return [message["X-Booking-Notification"] for message in inbox.take()
            if message["To"] == "Wendy Walker <wendy@example.com>"]


def test_front_desk_books_moves_and_cancels_a_walk_in(
    app, staff, book, live_server, page, smtp_inbox
):
    problems = []  # CSP refusals and failed loads, but the browser's own favicon guess
    page.on("console", lambda message: message.type == "error"
            and "404" not in message.text and problems.append(message.text))
    page.on("response", lambda response: response.status >= 400
            and not response.url.endswith("/favicon.ico") and problems.append(response.url))
    day = next_weekday(0)
    for hour, name in ((8, "Ana Alvarez"), (10, "Ben Brooks"), (14, "Cleo Carter")):
        book(start=local(day, hour), therapist="alex-rivera", name=name,
             email=f"{name.split()[0].lower()}@example.com")
    book("pt-evaluation", start=local(day, 9), therapist="jamie-lee", name="Dan Diaz",
         email="dan@example.com")

    _log_in(page, live_server, "desk@clinic.example")
    page.goto(f"{live_server}/desk/?day={day}")
    assert page.locator("h2.column-head").count() == 2
    screenshot(page, "desk-day-375")
    assert_accessible(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "desk-day-1280")

    page.click("nav.desk-nav >> text=Book")
    page.fill("#name", "Wendy Walker")
    page.fill("#email", "wendy@example.com")
    page.fill("#phone", "+1 586 555 0199")
    page.select_option("#service", "schedule-a-call")
    page.select_option("#therapist", "alex-rivera")
    page.fill("#day", day.isoformat())
    page.fill("#time", "09:30")
    screenshot(page, "desk-book-1280")
    assert_accessible(page)
    page.click("button:text('Book')")
    page.wait_for_selector("text=Booked Schedule a call for Wendy Walker.")
    assert "09:30–09:45" in page.inner_text(".facts")
    appointment_url = page.url
    assert _send_due(smtp_inbox) == ["confirmation"]

    page.select_option("#therapist", "jamie-lee")
    page.fill("#time", "11:00")
    page.click("button:text('Move the visit')")
    page.wait_for_selector("text=Moved; the patient is told.")
    assert "11:00–11:15" in page.inner_text(".facts")
    assert "Jamie Lee, PT" in page.inner_text(".facts")
    assert _send_due(smtp_inbox) == ["reschedule"]

    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "desk-appointment-375")
    assert_accessible(page)
    page.fill("#reason", "Patient is travelling")
    page.click("button:text('Cancel the visit')")
    page.wait_for_selector("text=Cancelled; the patient is told.")
    assert "cancelled" in page.inner_text(".facts")
    assert _send_due(smtp_inbox) == ["cancellation"]

    page.click("nav.desk-nav >> text=Log out")
    page.wait_for_url(f"{live_server}/desk/login")
    _log_in(page, live_server, "admin@clinic.example")
    page.click("nav.desk-nav >> text=Audit log")
    assert page.locator("table.audit tbody tr").count() == 7  # four booked online, and ours
    page.fill("#actor", "desk@")
    page.click("button:text('Filter')")
    rows = page.locator("table.audit tbody tr")
    assert rows.count() == 3
    texts = [rows.nth(index).inner_text() for index in range(3)]
    appointment_id = appointment_url.rsplit("/", 1)[1]
    for text, action in zip(texts, ("cancelled", "rescheduled", "booked"), strict=True):
        assert action in text
        assert "staff:desk@clinic.example" in text
        assert f"#{appointment_id}" in text
    assert "Patient is travelling" in texts[0]
    page.fill("#actor", "")
    page.select_option("#action", "rescheduled")
    page.click("button:text('Filter')")
    assert page.locator("table.audit tbody tr").count() == 1
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "desk-audit-1280")
    assert_accessible(page)
    assert problems == []


def test_a_therapist_copies_their_feed_url(app, staff, live_server, browser):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    try:
        _log_in(page, live_server, "alex@clinic.example")
        page.click("nav.desk-nav >> text=My calendar feed")
        url = page.input_value("#feed-url")
        assert url.startswith("http://127.0.0.1:5000/feeds/")
        page.click("button:text('Copy')")
        page.wait_for_selector("button:text('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == url
        screenshot(page, "desk-feed-375")
        assert_accessible(page)
    finally:
        context.close()
