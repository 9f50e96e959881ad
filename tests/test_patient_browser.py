"""The patient's pages in a real browser (Debian's Chromium through Playwright): booking end to
end by keyboard, the dry needling refusal, two patients racing for one time, the manage link,
all of it again without JavaScript, and axe-core on every page.

Screenshots of each step at 375 and 1280 px go to test-output/screenshots/patient-*.png.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from booking.extensions import db
from booking.models import Appointment, AppointmentStatus, Patient
from booking.patients.manage_links import manage_token_for
from booking.scheduling import appointments_overlapping_count
from tests.conftest import local, next_weekday, screenshot

pytestmark = pytest.mark.usefixtures("clinic")

MONDAY = next_weekday(0)
TUESDAY = next_weekday(1)
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (375, 1280)


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def shots(request):
    """Screenshots at both widths, once per run (the pages are the same on either database)."""
    wanted = request.node.callspec.params.get("database_url") == "sqlite"

    def shots(page, name: str) -> None:
        if not wanted:
            return
        size = page.viewport_size
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            screenshot(page, f"patient-{name}-{width}")
        page.set_viewport_size(size)

    return shots


def assert_accessible(page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    assert AXE.exists(), "axe-core is missing: `make install` installs it from package-lock.json"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())  # evaluated by the browser tool, so the CSP allows it
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{page.url}: {serious}"


def tab_to(page, selector: str, presses: int = 60) -> None:
    """Press Tab until the focus is on `selector`, and check that the focus can be seen."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none"), f"no visible focus on {selector}"
            return
    raise AssertionError(f"the keyboard never reached {selector}")


def fill_details(page, *, name="Pat Example", email="pat@example.com") -> None:
    page.fill("#name", name)
    page.fill("#email", email)
    page.fill("#phone", "+1 586 555 0199")


def appointments() -> list[Appointment]:
    db.session.rollback()  # the server wrote in its own sessions
    return list(db.session.scalars(select(Appointment).order_by(Appointment.id)))


def details_url(live_server: str, service: str, start, therapist: str = "") -> str:
    start_text = start.isoformat().replace("+", "%2B")
    query = f"start={start_text}" + (f"&therapist={therapist}" if therapist else "")
    return f"{live_server}/book/{service}/details?{query}"


# --- with JavaScript -----------------------------------------------------------------------


def test_booking_a_call_end_to_end_by_keyboard(browser, live_server, shots):
    context = browser.new_context(viewport={"width": 375, "height": 800},
                                  timezone_id="Europe/London")
    page = context.new_page()
    page.goto(live_server)
    assert_accessible(page)
    shots(page, "1-services")
    tab_to(page, 'a[href="/book/schedule-a-call"]')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/book/schedule-a-call$"))
    assert page.locator(".zone-note").is_visible()  # London is not Detroit
    assert "Europe/London" in page.locator(".zone-note").inner_text()
    assert_accessible(page)
    shots(page, "2-times")

    # The slot picker changes therapist and week without reloading the page.
    page.evaluate("() => { window.stillThisPage = true; }")
    tab_to(page, "#therapist")
    page.keyboard.press("ArrowDown")  # Alex Rivera
    page.wait_for_url(re.compile(r"therapist=alex-rivera"))
    page.wait_for_function("() => !document.getElementById('times').hasAttribute('aria-busy')")
    assert page.evaluate("() => document.activeElement.id") == "therapist"  # focus stays put
    tab_to(page, 'a[data-week-link][rel="next"]')
    heading = page.locator("#times-heading").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "h => document.getElementById('times-heading').textContent !== h", arg=heading
    )
    assert page.evaluate("() => window.stillThisPage") is True
    assert page.evaluate("() => document.activeElement.id") == "times-heading"
    assert "Showing free times for" in page.locator("[data-times-status]").inner_text()
    first = page.locator("a.slot").first
    chosen = re.search(r"start=([^&]+)", first.get_attribute("href")).group(1)
    tab_to(page, "a.slot")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/details\?"))
    assert_accessible(page)
    shots(page, "3-details")

    # The child's fields show only when the visit is for a child.
    assert not page.locator("#child-fields").is_visible()
    # Chromium shows a date box in the device's order, so the hint shows no format of its own.
    assert page.locator("#child_date_of_birth-hint").inner_text() == (
        "Pick the date, or type it in the order the box shows.")
    tab_to(page, "input[name=visit_for]:checked")
    page.keyboard.press("ArrowDown")
    assert page.locator("#child-fields").is_visible()
    page.keyboard.press("ArrowUp")
    assert not page.locator("#child-fields").is_visible()
    for selector, text in (("#name", "Kim Keys"), ("#email", "kim@example.com"),
                           ("#phone", "+1 586 555 0142"), ("#note", "Back pain")):
        tab_to(page, selector)
        page.keyboard.type(text)
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/manage/[^/]+/confirmation$"))
    assert page.locator("h1").inner_text() == "You're booked"
    assert_accessible(page)
    shots(page, "4-confirmation")

    [appointment] = appointments()
    assert appointment.start_at == datetime.fromisoformat(unquote(chosen))
    assert (appointment.therapist.slug, appointment.patient.name, appointment.notes) == (
        "alex-rivera", "Kim Keys", "Back pain")
    visit = page.locator("dl.visit").inner_text()
    assert "Alex Rivera, PT, DPT" in visit and "1 Test Street" in visit
    with page.expect_download() as download:
        page.get_by_role("link", name="Add to calendar (.ics)").click()
    calendar = Path(download.value.path()).read_text()
    assert f"UID:{appointment.calendar_uid}" in calendar
    assert page.get_by_role("link", name=re.compile("Add to Google Calendar")).get_attribute(
        "href").startswith("https://calendar.google.com/calendar/render?action=TEMPLATE")
    context.close()


PHONE = {"width": 375, "height": 667}


def page_height_in_screens(page) -> float:
    return page.evaluate("() => document.documentElement.scrollHeight") / PHONE["height"]


def shown_days(page) -> list[str]:
    return page.eval_on_selector_all(
        ".day-times", "sections => sections.filter(s => s.offsetParent !== null)"
                      ".map(s => s.dataset.day)")


def test_on_a_phone_the_week_is_day_chips_and_one_day_of_times(browser, live_server, shots):
    context = browser.new_context(viewport=PHONE, timezone_id="America/Detroit")
    page = context.new_page()
    page.goto(f"{live_server}/book/schedule-a-call?week={MONDAY.isoformat()}")
    chips = page.locator(".day-chips li")
    assert chips.count() == 7
    screenshot(page, "patient-phone-week-375x667")
    monday = f"Mon {MONDAY.day} {MONDAY:%B} 36 free times"
    assert " ".join(chips.first.inner_text().split()) == monday
    assert shown_days(page) == [MONDAY.isoformat()]  # the first free day is open
    assert page.locator(".slot:visible").count() == 36  # 8:00 AM to 4:45 PM
    assert page_height_in_screens(page) <= 2, "the time picker must fit in about two screens"
    assert_accessible(page)
    shots(page, "phone-week")

    page.evaluate("() => { window.stillThisPage = true; }")
    tuesday = page.get_by_role("link", name=re.compile(rf"^Tue {TUESDAY.day} "))
    tuesday.click()
    assert shown_days(page) == [TUESDAY.isoformat()]
    assert tuesday.get_attribute("aria-current") == "true"
    assert page.evaluate("() => window.stillThisPage") is True
    assert f"day={TUESDAY.isoformat()}" in page.url  # a reload keeps the day
    assert page.evaluate("() => document.activeElement.dataset.day") == TUESDAY.isoformat()
    assert page_height_in_screens(page) <= 2
    assert_accessible(page)
    screenshot(page, "patient-phone-tuesday-375x667")

    # A wide screen shows the whole week; the chips only jump.
    page.set_viewport_size({"width": 1280, "height": 800})
    assert len(shown_days(page)) == 5  # Monday to Friday: no one works at the weekend
    context.close()


def test_on_a_phone_without_javascript_a_day_chip_is_a_link_to_that_day(
    plain_page, live_server
):
    page = plain_page
    page.goto(f"{live_server}/book/schedule-a-call?week={MONDAY.isoformat()}")
    assert shown_days(page) == [MONDAY.isoformat()]
    page.get_by_role("link", name=re.compile(rf"^Tue {TUESDAY.day} ")).click()
    page.wait_for_url(re.compile(rf"day={TUESDAY.isoformat()}"))
    assert shown_days(page) == [TUESDAY.isoformat()]
    assert page_height_in_screens(page) <= 2
    page.locator("a.slot:visible").first.click()
    page.wait_for_url(re.compile(r"/details\?"))
    assert f"{TUESDAY:%A}, {TUESDAY:%B} {TUESDAY.day} at 8:00 AM" in page.locator(
        "dl.visit").inner_text()
    # No script: the hint stays as the server wrote it, true of the date box Chromium shows.
    assert page.locator("#child_date_of_birth-hint").inner_text() == (
        "Pick the date, or type it in the order the box shows.")


def test_a_time_off_the_grid_is_refused_as_such_and_the_nearest_is_booked(page, live_server, shots):
    page.goto(details_url(live_server, "schedule-a-call", local(MONDAY, 10, 7), "alex-rivera"))
    fill_details(page, name="Odd Time")
    page.get_by_role("button", name="Book this visit").click()
    alert = page.locator("#refusal")
    assert "is not one of our times" in alert.inner_text()
    assert "taken" not in alert.inner_text()
    # The page's script moves the focus to the refusal once it runs: wait for it, as a reader's
    # screen reader would.
    expect(alert).to_be_focused()
    assert_accessible(page)
    shots(page, "off-grid")
    page.get_by_label(re.compile(r"10:00 AM$")).check()
    page.get_by_role("button", name="Book this visit").click()
    page.wait_for_url(re.compile(r"/confirmation$"))
    assert [(row.patient.name, row.start_at) for row in appointments()] == [
        ("Odd Time", local(MONDAY, 10))]


def test_dry_needling_without_an_evaluation_is_refused_kindly(page, live_server, shots):
    page.goto(details_url(live_server, "dry-needling", local(MONDAY, 9)))
    fill_details(page)
    page.get_by_role("button", name="Book this visit").click()
    assert page.locator("h1").inner_text() == "An evaluation comes first"
    assert "Nothing was booked" in page.locator("[role=alert]").inner_text()
    assert_accessible(page)
    shots(page, "dry-needling-refused")
    page.get_by_role("link", name="Book a physical therapy evaluation").click()
    page.wait_for_url(re.compile(r"/book/pt-evaluation$"))
    assert appointments() == []


def test_two_patients_racing_for_one_time_one_wins_the_other_is_told_kindly(
    browser, live_server, shots
):
    contexts = [browser.new_context(viewport={"width": 375, "height": 800},
                                    timezone_id="America/Detroit") for _ in range(2)]
    first, second = (context.new_page() for context in contexts)
    for page, name in ((first, "Ana First"), (second, "Ben Second")):
        page.goto(details_url(live_server, "schedule-a-call", local(MONDAY, 10), "alex-rivera"))
        fill_details(page, name=name, email=f"{name.split()[0].lower()}@example.com")
        page.fill("#note", f"Note from {name}")
    assert not second.locator(".zone-note").is_visible()  # the browser is in the clinic's zone

    first.get_by_role("button", name="Book this visit").click()
    first.wait_for_url(re.compile(r"/confirmation$"))
    second.get_by_role("button", name="Book this visit").click()
    alert = second.locator("#refusal")
    assert "was just taken" in alert.inner_text()
    assert second.evaluate("() => document.activeElement.id") == "refusal"
    assert second.input_value("#name") == "Ben Second"
    assert second.input_value("#note") == "Note from Ben Second"
    assert second.locator("input[name=other_start]").count() == 3
    assert_accessible(second)
    shots(second, "race-lost")

    second.get_by_label(re.compile(r"10:15 AM$")).check()
    second.get_by_role("button", name="Book this visit").click()
    second.wait_for_url(re.compile(r"/confirmation$"))
    booked = {(row.patient.name, row.start_at) for row in appointments()}
    assert booked == {("Ana First", local(MONDAY, 10)), ("Ben Second", local(MONDAY, 10, 15))}
    assert appointments_overlapping_count() == 0
    for context in contexts:
        context.close()


def test_moving_and_cancelling_through_the_manage_link(page, live_server, book, shots):
    appointment = book("schedule-a-call", local(MONDAY, 10), "jamie-lee")
    token = manage_token_for(appointment)
    page.goto(f"{live_server}/manage/{token}")
    assert "Confirmed." in page.locator(".status").inner_text()
    assert_accessible(page)
    shots(page, "manage")

    page.get_by_role("link", name="Move to another time").click()
    page.wait_for_url(re.compile(r"/reschedule$"))
    page.evaluate("() => { window.stillThisPage = true; }")
    page.get_by_role("link", name="Later week").click()
    page.wait_for_url(re.compile(r"week="))
    assert page.evaluate("() => window.stillThisPage") is True
    assert_accessible(page)
    shots(page, "reschedule")
    slot = page.locator("button.slot").first
    new_start = slot.get_attribute("value")
    slot.click()
    page.wait_for_url(f"{live_server}/manage/{token}")
    assert "Your visit is moved to" in page.locator(".notice").inner_text()
    [moved] = appointments()
    assert (moved.start_at, moved.sequence) == (datetime.fromisoformat(new_start), 1)

    page.get_by_role("link", name="Cancel the visit").click()
    assert page.locator("h1").inner_text() == "Cancel your visit?"
    assert appointments()[0].status == AppointmentStatus.CONFIRMED  # asking changes nothing
    assert_accessible(page)
    shots(page, "cancel-confirm")
    page.get_by_role("button", name="Yes, cancel the visit").click()
    page.wait_for_url(f"{live_server}/manage/{token}")
    assert "Cancelled." in page.locator(".status").inner_text()
    assert_accessible(page)
    shots(page, "cancelled")
    assert appointments()[0].status == AppointmentStatus.CANCELLED


# --- without JavaScript --------------------------------------------------------------------


@pytest.fixture
def plain_page(browser):
    context = browser.new_context(viewport={"width": 360, "height": 800},
                                  java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_booking_for_a_child_then_moving_and_cancelling_without_javascript(
    plain_page, live_server
):
    page = plain_page
    page.goto(live_server)
    page.get_by_role("link", name="See free times for Schedule a call").click()
    page.select_option("#therapist", "jamie-lee")
    page.get_by_role("button", name="Show times").click()
    page.wait_for_url(re.compile(r"therapist=jamie-lee"))
    page.get_by_role("link", name="Later week").click()
    page.locator("a.slot").first.click()
    assert page.locator("#child-fields").is_visible()  # no script to hide it
    page.check("#visit_for-1")
    fill_details(page, name="Robin Parent", email="robin@example.com")
    page.get_by_role("button", name="Book this visit").click()
    assert "Enter your child's full name." in page.locator("#errors").inner_text()
    assert page.input_value("#email") == "robin@example.com"
    page.fill("#child_name", "Kit Parent")
    page.fill("#child_date_of_birth", "2019-04-23")
    page.get_by_role("button", name="Book this visit").click()
    page.wait_for_url(re.compile(r"/confirmation$"))
    [booked] = appointments()
    assert (booked.patient.name, booked.patient.guardian_name) == ("Kit Parent", "Robin Parent")
    assert booked.therapist.slug == "jamie-lee"

    page.get_by_role("link", name="Manage this visit").click()
    page.get_by_role("link", name="Move to another time").click()
    # A time of the day the page opens on: the others are hidden until their day is chosen
    # (on a Friday afternoon the open day may hold only one or two times).
    slot = page.locator(".day-times.is-open button.slot").last
    new_start = slot.get_attribute("value")
    slot.click()
    assert "Your visit is moved to" in page.locator(".notice").inner_text()
    assert appointments()[0].start_at == datetime.fromisoformat(new_start)
    page.get_by_role("link", name="Cancel the visit").click()
    page.get_by_role("button", name="Yes, cancel the visit").click()
    assert "Cancelled." in page.locator(".status").inner_text()
    assert appointments()[0].status == AppointmentStatus.CANCELLED


def test_racing_and_the_dry_needling_refusal_without_javascript(browser, live_server):
    contexts = [browser.new_context(java_script_enabled=False) for _ in range(2)]
    first, second = (context.new_page() for context in contexts)
    for page, name in ((first, "Ana First"), (second, "Ben Second")):
        page.goto(details_url(live_server, "schedule-a-call", local(TUESDAY, 9), "alex-rivera"))
        fill_details(page, name=name, email=f"{name.split()[0].lower()}@example.com")
    first.get_by_role("button", name="Book this visit").click()
    second.get_by_role("button", name="Book this visit").click()
    assert "was just taken" in second.locator("#refusal").inner_text()
    assert second.input_value("#name") == "Ben Second"
    second.get_by_role("button", name="Book this visit").click()  # no new time chosen yet
    assert "was just taken" in second.locator("#refusal").inner_text()
    second.get_by_label(re.compile(r"8:45 AM$")).check()
    second.get_by_role("button", name="Book this visit").click()
    second.wait_for_url(re.compile(r"/confirmation$"))
    starts = {row.patient.name: row.start_at for row in appointments()}
    assert starts == {"Ana First": local(TUESDAY, 9), "Ben Second": local(TUESDAY, 8, 45)}

    first.goto(details_url(live_server, "dry-needling", local(TUESDAY, 14)))
    fill_details(first, name="Nia Needle", email="nia@example.com")
    first.get_by_role("button", name="Book this visit").click()
    assert first.locator("h1").inner_text() == "An evaluation comes first"
    db.session.rollback()
    assert db.session.scalars(select(Patient).where(Patient.name == "Nia Needle")).all() == []
    for context in contexts:
        context.close()
