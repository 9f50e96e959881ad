"""The board in Chromium: visits dragged to another time and therapist (the database and the
audit log change), a drop on a taken time put back with the rule that refused it, a click at
14:30 that books 14:30, a keyboard-only move, and a therapist who sees only their column.
And what the board and the visit's page say of a visit: its place in its series, its forms
and the patient's clearance."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from booking import scheduling
from booking.extensions import db
from booking.models import Appointment, AuditEntry, Service, utc_now
from booking.rules.clinical import ClearanceDecision
from booking.scheduling.clearances import record_clearance
from tests.conftest import CLINIC_FILE, CLINIC_ZONE, local, next_weekday, screenshot
from tests.desk_staff import PASSWORD, signed_in, staff_logins
from tests.test_desk_browser import assert_accessible
from tests.test_forms import clinic_file_with_forms, load


@pytest.fixture
def staff(clinic):
    return staff_logins()


def _log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/desk/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button:text('Log in')")
    page.wait_for_url(f"{base}/desk/")


def _open_board(page, base: str, day, problems: list) -> None:
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{base}/desk/board?day={day.isoformat()}")
    page.wait_for_selector("#board .ec-event")


SLOT_PIXELS_PER_MINUTE = 40 / 15  # desk-board.js: slotHeight 40 for 15 minutes, from 07:00


def _point(page, column: int, hour: int, minute: int) -> tuple[float, float]:
    """Where on the screen a time is in a therapist's column (the board starts at 07:00),
    scrolled to the middle of the window (away from the edges, where a drag scrolls)."""
    offset = ((hour - 7) * 60 + minute) * SLOT_PIXELS_PER_MINUTE + 3
    box = page.evaluate(
        """([column, offset]) => {
            const day = document.querySelectorAll('#board .ec-body .ec-day')[column];
            const top = day.getBoundingClientRect().top + window.scrollY + offset;
            window.scrollTo(0, top - window.innerHeight / 2);
            const box = day.getBoundingClientRect();
            return {left: box.left, top: box.top, width: box.width};
        }""",
        [column, offset],
    )
    return box["left"] + box["width"] / 2, box["top"] + offset


def _drag(page, visit_name: str, column: int, hour: int, minute: int) -> None:
    """Drag the visit by the point 3 pixels under its top to the same point at the new time."""
    target_x, target_y = _point(page, column, hour, minute)
    box = page.locator("#board .ec-event", has_text=visit_name).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 3)
    page.mouse.down()
    page.mouse.move(target_x, target_y, steps=15)
    page.mouse.up()


def _visit(visit_id: int) -> Appointment:
    db.session.rollback()
    return db.session.get(Appointment, visit_id)


def test_the_board_draws_visits_and_no_inline_style_is_refused(app, staff, book, live_server,
                                                                page):
    day = next_weekday(0)
    book(start=local(day, 9), therapist="alex-rivera", name="Ana Alvarez",
         email="ana@example.com")
    problems: list = []
    _log_in(page, live_server, "desk@clinic.example")
    _open_board(page, live_server, day, problems)
    screenshot(page, "desk-board-1400")
    text = page.inner_text("#board")
    assert "Ana Alvarez" in text
    assert "Schedule a call" in text
    assert "confirmed" in text
    assert problems == []


def _audit_actions(visit_id: int) -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.appointment_id == visit_id)
        .order_by(AuditEntry.id)
    ))


def test_a_visit_dragged_to_another_time_and_therapist_moves(app, staff, book, live_server,
                                                           page):
    day = next_weekday(0)
    visit = book(start=local(day, 9), therapist="alex-rivera", name="Ana Alvarez",
                 email="ana@example.com")
    problems: list = []
    _log_in(page, live_server, "desk@clinic.example")
    _open_board(page, live_server, day, problems)
    _drag(page, "Ana Alvarez", 1, 10, 30)
    page.wait_for_selector("#board-message:has-text('Moved Ana Alvarez')")
    moved = _visit(visit.id)
    assert moved.therapist.slug == "jamie-lee"
    assert moved.start_at == local(day, 10, 30)
    assert _audit_actions(visit.id) == ["booked", "rescheduled"]
    assert problems == []


def test_a_drop_on_a_taken_time_goes_back_and_says_why(app, staff, book, live_server, page):
    day = next_weekday(0)
    visit = book(start=local(day, 9), therapist="alex-rivera", name="Ana Alvarez",
                 email="ana@example.com")
    book(start=local(day, 11), therapist="alex-rivera", name="Ben Brooks",
         email="ben@example.com")
    _log_in(page, live_server, "desk@clinic.example")
    _open_board(page, live_server, day, [])
    _drag(page, "Ana Alvarez", 0, 11, 0)
    message = page.locator("#board-message")
    message.filter(has_text="Not moved").wait_for()
    assert "Not moved (taken): that time is not available: it is already booked" in (
        message.inner_text()
    )
    assert page.locator("#board .ec-event", has_text="Ana Alvarez").inner_text().startswith(
        "09:00"
    )
    assert _visit(visit.id).start_at == local(day, 9)
    assert _audit_actions(visit.id) == ["booked"]
    # A taken time is a fact: no override is offered.
    assert not page.locator("#override-dialog").is_visible()


def test_a_click_at_1430_in_a_free_block_books_1430(app, staff, live_server, page):
    day = next_weekday(0)
    _log_in(page, live_server, "desk@clinic.example")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server}/desk/board?day={day.isoformat()}")
    page.locator("#board .ec-body .ec-day").nth(1).wait_for()
    x, y = _point(page, 1, 14, 30)
    page.mouse.click(x, y)
    page.wait_for_url("**/desk/book?**")
    assert page.input_value("#time") == "14:30"
    assert page.input_value("#therapist") == "jamie-lee"
    page.fill("#name", "Wendy Walker")
    page.fill("#email", "wendy@example.com")
    page.fill("#phone", "+1 586 555 0199")
    page.click("button:text('Book')")
    page.wait_for_url("**/desk/appointments/*")
    db.session.rollback()
    visit = db.session.scalars(select(Appointment)).one()
    assert visit.start_at == local(day, 14, 30)
    assert visit.therapist.slug == "jamie-lee"


def test_a_visit_moved_with_the_keyboard_alone(app, staff, book, live_server, page):
    day = next_weekday(0)
    visit = book(start=local(day, 9), therapist="alex-rivera", name="Ana Alvarez",
                 email="ana@example.com")
    _log_in(page, live_server, "desk@clinic.example")
    _open_board(page, live_server, day, [])
    page.locator("#board .ec-event", has_text="Ana Alvarez").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "move-therapist"
    page.keyboard.press("ArrowDown")  # Alex Rivera to Jamie Lee
    page.keyboard.press("Tab")  # the day stays
    page.keyboard.press("Tab")
    page.fill("#move-time", "11:15")  # typed into the focused field
    page.keyboard.press("Enter")
    page.wait_for_selector("#board-message:has-text('Moved Ana Alvarez')")
    moved = _visit(visit.id)
    assert (moved.therapist.slug, moved.start_at) == ("jamie-lee", local(day, 11, 15))
    assert_accessible(page)


def test_a_therapist_sees_only_their_column_and_cannot_drag(app, staff, book, live_server,
                                                          page):
    day = next_weekday(0)
    visit = book(start=local(day, 9), therapist="alex-rivera", name="Ana Alvarez",
                 email="ana@example.com")
    book(start=local(day, 9), therapist="jamie-lee", name="Ben Brooks", email="ben@example.com")
    _log_in(page, live_server, "alex@clinic.example")
    _open_board(page, live_server, day, [])
    assert page.locator("#board .ec-col-head").all_inner_texts() == ["Alex Rivera, PT, DPT"]
    assert "Ben Brooks" not in page.inner_text("#board")
    _drag(page, "Ana Alvarez", 0, 10, 0)
    assert _visit(visit.id).start_at == local(day, 9)
    # Nor through the board's address by hand.
    therapist = signed_in(app, staff["therapist"])
    answer = therapist.post(f"/desk/board/appointments/{visit.id}/move",
                            json={"start": f"{day}T10:00", "therapist": "alex-rivera"})
    assert answer.status_code == 403


def test_the_dashboard_draws_its_charts_and_passes_axe(app, staff, live_server, page):
    problems: list = []  # failed loads (but the browser's own favicon guess) and CSP refusals
    page.on("console", lambda message: message.type == "error"
            and "404" not in message.text and problems.append(message.text))
    page.on("response", lambda response: response.status >= 400
            and not response.url.endswith("/favicon.ico") and problems.append(response.url))
    _log_in(page, live_server, "admin@clinic.example")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/desk/dashboard")
    assert page.locator("canvas[data-chart]").count() == 5
    # Chart.js has drawn: its canvases have a size of their own.
    assert page.evaluate("() => document.querySelector('canvas[data-chart]').width") > 0
    assert_accessible(page)
    assert problems == []


def test_the_patient_search_answers_as_a_phone_is_typed(app, staff, book, live_server, page):
    book(name="Maria Gonzalez", email="maria@example.com", phone="+1 586 555 0142")
    book(name="Other Person", email="other@example.com", phone="+1 586 555 0999",
         start=local(next_weekday(1), 9))
    _log_in(page, live_server, "desk@clinic.example")
    page.goto(f"{live_server}/desk/book")
    page.locator("#q").press_sequentially("555 0142", delay=30)
    page.locator("#patient-results a", has_text="Maria Gonzalez").wait_for()
    assert "Other Person" not in page.inner_text("#patient-results")
    page.click("#patient-results a")
    assert "For Maria Gonzalez" in page.inner_text("p.chosen")


@pytest.fixture
def needling_course(clinic):
    """Pat evaluated on a Monday, then a course of four dry needling visits (Mondays and
    Thursdays at 14:00 from the next week) booked by the desk before any clearance; the
    clinic's dry needling asks for its screening form and a therapist's clearance."""
    load(clinic_file_with_forms().replace(
        'aftercare_advice = "dry-needling"\n',
        'aftercare_advice = "dry-needling"\nrequires_clearance = true\n',
    ))
    monday = next_weekday(0)
    pat = scheduling.PatientDetails(name="Pat Example", email="pat@example.com")
    scheduling.book_appointment(scheduling.bookable_service("pt-evaluation"), local(monday, 9),
                                pat, therapist_slug="alex-rivera")
    course = scheduling.book_series(
        scheduling.bookable_service("dry-needling"), local(monday + timedelta(days=7), 14),
        [0, 3], 4, pat, therapist_slug="alex-rivera", booked_by="staff:desk@clinic.example",
        override=scheduling.StaffOverride("staff:desk@clinic.example", "cleared by phone"),
    )
    db.session.commit()
    return scheduling.series_visits(course.series)


def _board_visit(client, visit) -> dict:
    day = visit.start_at.astimezone(CLINIC_ZONE).date()
    answer = client.get(f"/desk/board/events?start={day}&end={day + timedelta(days=1)}")
    assert answer.status_code == 200
    return next(event["extendedProps"] for event in answer.json["events"]
                if event["id"] == str(visit.id))


def test_the_board_and_the_visit_page_say_the_series_forms_and_clearance(app, staff,
                                                                         needling_course):
    third = needling_course[2]
    desk = signed_in(app, staff["front_desk"])
    shown = _board_visit(desk, third)
    assert (shown.get("series"), shown.get("forms"), shown.get("clearance")) == (
        "visit 3 of 4", "forms missing", "no decision yet")
    page = desk.get(f"/desk/appointments/{third.id}").get_data(as_text=True)
    assert '<dd class="series-place">visit 3 of 4 — <a' in page
    assert '<dd class="form-missing">missing</dd>' in page
    assert ('<dt>Clearance for dry needling session</dt>'
            '<dd class="clearance-none">no decision yet</dd>') in page

    record_clearance(third.patient, db.session.get(Service, third.service_id),
                     ClearanceDecision.CLEARED, by=staff["therapist"])
    db.session.commit()
    assert _board_visit(desk, third)["clearance"] == "cleared"
    assert '<dd class="clearance-cleared">cleared</dd>' in desk.get(
        f"/desk/appointments/{third.id}").get_data(as_text=True)
    # A visit of no series, of a service without forms or clearance, says none of it.
    evaluation = _board_visit(desk, db.session.scalars(
        select(Appointment).where(Appointment.series_id.is_(None))).one())
    assert {"series", "forms", "clearance"}.isdisjoint(evaluation)


def test_the_visit_on_the_board_says_its_series_forms_and_clearance(app, staff, needling_course,
                                                                     live_server, page):
    third = needling_course[2]
    _log_in(page, live_server, "desk@clinic.example")
    _open_board(page, live_server, third.start_at.astimezone(CLINIC_ZONE).date(), [])
    visit = page.locator("#board .ec-event", has_text="Pat Example")
    details = "visit 3 of 4 · forms missing · clearance: no decision yet"
    assert details in visit.inner_text()
    assert details in visit.get_attribute("title")
    visit.focus()
    page.keyboard.press("Enter")
    assert page.inner_text("#move-details") == details


def test_a_drop_past_the_booking_window_offers_to_move_anyway_with_a_reason(
        app, staff, book, live_server, page):
    """The calls' window ends on the Tuesday of the week shown (at this time of day): a call
    dropped on the Wednesday is refused, and the board asks at once for a reason to move it
    anyway, which the audit log keeps."""
    monday = next_weekday(0)
    days = (monday - utc_now().astimezone(CLINIC_ZONE).date()).days + 1
    load(CLINIC_FILE.read_text().replace("max_advance_days = 60", f"max_advance_days = {days}",
                                         1))
    visit = book(start=local(monday, 9), therapist="alex-rivera", name="Ana Alvarez",
                 email="ana@example.com")
    problems: list = []
    _log_in(page, live_server, "desk@clinic.example")
    # Scripts' errors; the browser's own note of the refused move (a 409) is expected.
    page.on("console", lambda message: message.type == "error"
            and "(CONFLICT)" not in message.text and problems.append(message.text))
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server}/desk/board?day={monday.isoformat()}&view=week")
    page.wait_for_selector("#board .ec-event")
    _drag(page, "Ana Alvarez", 2, 11, 0)  # Alex's Wednesday (the week starts on Monday)

    dialog = page.locator("#override-dialog")
    dialog.wait_for()
    assert "Not moved (window)" in page.inner_text("#board-message")
    assert "Refused (window): that time is not available: it is too far ahead" in (
        dialog.inner_text())
    assert page.evaluate("() => document.activeElement.id") == "override-reason"
    screenshot(page, "desk-board-override")
    assert_accessible(page)
    page.keyboard.press("Enter")  # no reason given: asked for one, nothing moves
    assert page.inner_text("#override-problem") == "Give the reason for the override."
    assert _visit(visit.id).start_at == local(monday, 9)

    page.keyboard.type("Patient away until then; agreed by phone")
    page.keyboard.press("Enter")
    page.wait_for_selector("#board-message:has-text('with an override')")
    assert not dialog.is_visible()
    moved = _visit(visit.id)
    assert moved.start_at == local(monday + timedelta(days=2), 11)
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.appointment_id == visit.id, AuditEntry.action == "rescheduled")).one()
    assert entry.details["override"] == "Patient away until then; agreed by phone"
    assert entry.actor == "staff:desk@clinic.example"
    assert problems == []



@pytest.fixture
def page_in_tokyo(browser):
    """A browser whose own time zone is Tokyo's, 13 or 14 hours ahead of the clinic's."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  timezone_id="Asia/Tokyo")
    page = context.new_page()
    yield page
    context.close()


def _from_board_top(page, selector: str, edge: str) -> float:
    """How far down the first therapist's column an element's edge is, in pixels."""
    return page.evaluate(
        """([selector, edge]) => {
            const day = document.querySelector('#board .ec-body .ec-day');
            return document.querySelector(selector).getBoundingClientRect()[edge]
                - day.getBoundingClientRect().top;
        }""",
        [selector, edge],
    )


def test_the_now_line_and_clicks_keep_the_clinics_clock_in_a_browser_elsewhere(
        app, staff, book, live_server, page_in_tokyo):
    page = page_in_tokyo
    day = next_weekday(0)
    book(start=local(day, 9), therapist="alex-rivera", name="Ana Alvarez",
         email="ana@example.com")
    _log_in(page, live_server, "desk@clinic.example")
    # The browser's clock: 10:30 at the clinic that day, past midnight in Tokyo.
    page.clock.set_fixed_time(local(day, 10, 30))
    page.goto(f"{live_server}/desk/board?day={day.isoformat()}")
    page.wait_for_selector("#board .ec-event")
    assert page.evaluate("() => new Date().getHours()") == local(day, 10, 30).astimezone(
        ZoneInfo("Asia/Tokyo")).hour
    assert page.locator("#board .ec-event", has_text="Ana Alvarez").inner_text().startswith(
        "09:00")
    # The now line is on the clinic's 10:30 (3.5 hours under the board's 07:00).
    page.locator("#board .ec-now-indicator").first.wait_for()
    assert _from_board_top(page, "#board .ec-now-indicator", "top") == pytest.approx(
        3.5 * 60 * SLOT_PIXELS_PER_MINUTE, abs=2)
    # 10:00 is past at the clinic; 14:30 is ahead and books 14:30.
    page.mouse.click(*_point(page, 1, 10, 0))
    page.locator("#board-message", has_text="That time is past").wait_for()
    page.mouse.click(*_point(page, 1, 14, 30))
    page.wait_for_url("**/desk/book?**")
    assert (page.input_value("#day"), page.input_value("#time")) == (day.isoformat(), "14:30")


def test_past_time_is_greyed_to_the_clinics_now_in_a_browser_elsewhere(
        app, staff, live_server, page_in_tokyo):
    page = page_in_tokyo
    now = utc_now().astimezone(CLINIC_ZONE)
    _log_in(page, live_server, "desk@clinic.example")
    page.goto(f"{live_server}/desk/board")  # the clinic's today
    page.locator("#board .ec-body .ec-day").first.wait_for()
    assert page.inner_text("h1").startswith(f"{now:%A %d %B %Y}")
    # The grey ends at the clinic's now (the board shows 07:00-20:00).
    minutes = (now.hour - 7) * 60 + now.minute
    greyed = page.locator("#board .ec-bg-event.board-past")
    if minutes <= 0:
        assert greyed.count() == 0 or _from_board_top(
            page, "#board .ec-bg-event.board-past", "bottom") <= 2
        return
    greyed.first.wait_for()
    assert _from_board_top(page, "#board .ec-bg-event.board-past", "bottom") == pytest.approx(
        min(minutes, 13 * 60) * SLOT_PIXELS_PER_MINUTE, abs=2 * SLOT_PIXELS_PER_MINUTE)
