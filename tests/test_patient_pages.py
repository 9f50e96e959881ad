"""The patient's booking and manage pages through the test client: every page, refusal and
protection, as the patient sees them (status, page text) and as the clinic records them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from booking import create_app
from booking.extensions import db
from booking.models import Appointment, AppointmentStatus, Patient, utc_now
from tests.conftest import local, next_weekday
from tests.servers import dispose_engines

pytestmark = pytest.mark.usefixtures("clinic")

MONDAY = next_weekday(0)
TUESDAY = next_weekday(1)
CALL = "/book/schedule-a-call"


def visit_form(start, therapist: str = "", **overrides) -> dict:
    form = {
        "start": start.isoformat(),
        "therapist": therapist,
        "visit_for": "me",
        "name": "Pat Example",
        "email": "pat@example.com",
        "phone": "+1 586 555 0199",
        "note": "Knee pain after running",
        "website": "",
    }
    form.update(overrides)
    return form


def appointment_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Appointment))


def text_of(answer) -> str:
    """The page as read: tags dropped, spaces collapsed."""
    html = answer.get_data(as_text=True)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def token_from(location: str) -> str:
    found = re.fullmatch(r"/manage/([^/]+)/confirmation", location)
    assert found, location
    return found.group(1)


def book_through_the_page(client, start, **overrides) -> str:
    answer = client.post(f"{CALL}/details", data=visit_form(start, **overrides))
    assert answer.status_code == 303, text_of(answer)
    return token_from(answer.headers["Location"])


# --- choosing a service and a time -----------------------------------------------------------


def test_each_service_says_its_length_and_leads_to_its_free_times(client):
    page = client.get("/")
    assert page.status_code == 200
    text = text_of(page)
    assert "Schedule a call 15 minutes · by phone" in text
    assert "Dry needling session 45 minutes Available after an evaluation at the clinic." in text
    assert 'href="/book/dry-needling"' in page.get_data(as_text=True)


def test_a_week_of_free_times_is_grouped_by_day_in_the_clinic_zone(client, book):
    book("schedule-a-call", local(MONDAY, 9), "alex-rivera")
    book("schedule-a-call", local(MONDAY, 9), "jamie-lee", email="sam@example.com")
    page = client.get(f"{CALL}?week={MONDAY.isoformat()}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    text = text_of(page)
    assert (f'<h3 class="day" id="day-{MONDAY.isoformat()}">Monday, {MONDAY:%B} {MONDAY.day}</h3>'
            in html)
    chip = re.search(r'<a class="day-chip" href="([^"]+)"[^>]*>(.*?)</a>', html)
    assert unescape(chip.group(1)) == (
        f"{CALL}?week={MONDAY.isoformat()}&day={MONDAY.isoformat()}#day-{MONDAY.isoformat()}")
    assert " ".join(unescape(re.sub(r"<[^>]+>", " ", chip.group(2))).split()) == (
        f"Mon {MONDAY.day} {MONDAY:%B} 35 free times")  # 8:00 to 4:45 PM, but not 9:00
    assert "All times are clinic time (America/Detroit)." in text
    monday = text.split(f"Monday, {MONDAY:%B} {MONDAY.day}", 2)[2].split("Tuesday")[0]
    assert monday.startswith(" 8:00 AM 8:15 AM 8:30 AM 8:45 AM 9:15 AM")  # 9:00 is taken twice
    # First available: one link per start, without a therapist.
    links = [unescape(link) for link in re.findall(r'href="(/book/[^"]+/details\?[^"]+)"', html)]
    at_ten = [link for link in links if local(MONDAY, 10).isoformat() in link]
    assert at_ten == [f"{CALL}/details?start={local(MONDAY, 10).isoformat()}"]
    assert "Earlier week" in text and "Later week" in text


def test_choosing_a_therapist_shows_only_their_times(client):
    page = client.get(f"{CALL}?week={MONDAY.isoformat()}&therapist=jamie-lee")
    text = text_of(page)
    monday = text.split(f"Monday, {MONDAY:%B} {MONDAY.day}", 2)[2].split("Tuesday")[0]
    assert monday.startswith(" 9:00 AM 9:15 AM")  # Jamie starts at nine, Alex at eight
    assert "therapist=jamie-lee" in page.get_data(as_text=True)
    assert '<option value="jamie-lee" selected>' in page.get_data(as_text=True)


def test_without_a_week_the_page_opens_on_the_first_week_with_free_times(client):
    page = client.get(CALL)
    assert page.status_code == 200
    assert 'class="slot"' in page.get_data(as_text=True)
    assert "Earlier week" not in text_of(page)  # it starts today


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        (f"{CALL}?week=next-monday", 400, "Week: use a date like 2026-12-01."),
        (f"{CALL}?therapist=nobody", 400, "Therapist: there is no therapist 'nobody'"),
        ("/book/dry-needling?therapist=jamie-lee", 400,
         "Therapist: Jamie Lee, PT does not offer Dry needling session"),
        ("/book/massage", 404, "That service cannot be booked online."),
        (f"{CALL}/details", 400, "Start: please choose a time from the list."),
        (f"{CALL}/details?start=2026-12-01T09:00", 400, "Start: please choose a time"),
    ],
)
def test_bad_page_input_gets_a_clear_answer_naming_it(client, url, status, says):
    answer = client.get(url)
    assert answer.status_code == status
    assert says in text_of(answer)


def test_the_details_page_repeats_the_chosen_time(client):
    page = client.get(f"{CALL}/details", query_string={
        "start": local(MONDAY, 10).isoformat(), "therapist": "jamie-lee"})
    assert page.status_code == 200
    text = text_of(page)
    assert f"When {MONDAY:%A}, {MONDAY:%B} {MONDAY.day} at 10:00 AM" in text
    assert "With Jamie Lee, PT" in text
    html = page.get_data(as_text=True)
    assert 'class="honeypot"' in html
    assert '<label for="name">Your full name</label>' in html
    assert 'aria-describedby="name-hint"' in html


# --- booking -------------------------------------------------------------------------------


def test_booking_a_call_for_myself_confirms_it_with_calendar_links(client):
    start = local(MONDAY, 10)
    answer = client.post(f"{CALL}/details", data=visit_form(start))
    assert answer.status_code == 303
    location = answer.headers["Location"]
    for private in ("Pat", "pat@example.com", "586", "Knee"):
        assert private not in location
    token = token_from(location)

    appointment = db.session.scalars(select(Appointment)).one()
    assert appointment.start_at == start
    assert appointment.therapist.slug == "alex-rivera"  # least busy, first in the file
    assert appointment.patient.name == "Pat Example"
    assert appointment.patient.phone == "+1 586 555 0199"
    assert appointment.notes == "Knee pain after running"
    assert appointment.booked_by == "patient"

    page = client.get(location)
    assert page.status_code == 200
    text = text_of(page)
    assert "You're booked" in text
    assert f"When {MONDAY:%A}, {MONDAY:%B} {MONDAY.day} at 10:00 AM" in text
    assert "With Alex Rivera, PT, DPT" in text
    assert "1 Test Street, Clinton Township, MI" in text
    assert "Clinic phone +1 586 555 0100" in text
    html = page.get_data(as_text=True)
    assert f'href="/manage/{token}/appointment.ics"' in html
    google = unescape(re.search(r'href="(https://calendar.google.com/[^"]+)"', html).group(1))
    assert "dates=" + f"{MONDAY:%Y%m%d}T150000Z%2F{MONDAY:%Y%m%d}T151500Z" in google
    assert "Pat" not in google and token not in google

    ics = client.get(f"/manage/{token}/appointment.ics")
    assert ics.status_code == 200
    assert ics.mimetype == "text/calendar"
    assert ics.headers["Content-Disposition"] == 'attachment; filename="visit.ics"'
    body = ics.get_data(as_text=True)
    assert "METHOD:REQUEST" in body
    assert f"UID:{appointment.calendar_uid}" in body


def test_booking_for_a_child_records_the_child_with_the_guardian_as_contact(client):
    token = book_through_the_page(
        client, local(MONDAY, 11), visit_for="child", name="Robin Example",
        child_name="Kit Example", child_date_of_birth="2019-04-23",
    )
    patient = db.session.scalars(select(Patient)).one()
    assert (patient.name, patient.guardian_name, patient.email) == (
        "Kit Example", "Robin Example", "pat@example.com")
    assert patient.date_of_birth.isoformat() == "2019-04-23"
    assert "For Kit Example" in text_of(client.get(f"/manage/{token}"))


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": " "}, "name", "Enter your full name."),
        ({"email": "pat-at-example"}, "email", "Enter an email address like name@example.com."),
        ({"phone": "call me"}, "phone", "Enter a phone number, like +1 586 555 0100."),
        ({"visit_for": "child", "child_name": ""}, "child_name", "Enter your child's full name."),
        ({"visit_for": "child", "child_name": "Kit", "child_date_of_birth": "23/04/2019"},
         "child_date_of_birth", "Enter the date of birth like 2019-04-23."),
        ({"visit_for": "child", "child_name": "Kit", "child_date_of_birth": "2999-01-01"},
         "child_date_of_birth", "The date of birth cannot be in the future."),
    ],
)
def test_a_missing_or_wrong_field_is_named_and_nothing_is_booked(client, overrides, field,
                                                                  message):
    answer = client.post(f"{CALL}/details", data=visit_form(local(MONDAY, 10), **overrides))
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert f'<li><a href="#{field}">{unescape(message)}' in unescape(html)
    assert f'<p class="error" id="{field}-error">' in html
    field_tag = re.search(rf'<(input|textarea)[^>]*\bid="{field}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field_tag
    assert f"{field}-error" in field_tag
    assert 'value="pat@example.com"' in html or field == "email"  # what was typed is kept
    assert appointment_count() == 0


def test_a_filled_honeypot_books_nothing(client):
    answer = client.post(f"{CALL}/details",
                         data=visit_form(local(MONDAY, 10), website="http://spam.example"))
    assert answer.status_code == 400
    assert "Nothing was booked" in text_of(answer)
    assert appointment_count() == 0


def test_dry_needling_without_an_evaluation_offers_the_evaluation_instead(client):
    answer = client.post("/book/dry-needling/details", data=visit_form(local(MONDAY, 10)))
    assert answer.status_code == 422
    text = text_of(answer)
    assert "An evaluation comes first" in text
    assert "Nothing was booked" in text
    assert 'href="/book/pt-evaluation"' in answer.get_data(as_text=True)
    assert "Book a physical therapy evaluation" in text
    assert appointment_count() == 0


def test_dry_needling_after_an_evaluation_is_booked(client, book):
    book("pt-evaluation", local(MONDAY, 9), "alex-rivera")
    answer = client.post("/book/dry-needling/details", data=visit_form(local(TUESDAY, 9)))
    assert answer.status_code == 303
    assert appointment_count() == 2


def test_a_time_taken_meanwhile_keeps_what_was_typed_and_offers_the_nearest(client, book):
    book("schedule-a-call", local(MONDAY, 10), "alex-rivera", email="first@example.com")
    form = visit_form(local(MONDAY, 10), therapist="alex-rivera", name="Sam Late",
                      note="Shoulder")
    answer = client.post(f"{CALL}/details", data=form)
    assert answer.status_code == 409
    text = text_of(answer)
    assert f"Sorry, 10:00 AM on {MONDAY:%A}, {MONDAY:%B} {MONDAY.day} was just taken" in text
    html = answer.get_data(as_text=True)
    assert 'value="Sam Late"' in html and re.search(r">\s*Shoulder</textarea>", html)
    nearest = re.findall(r'name="other_start"[^>]*value="([^"]+)"', html)
    assert nearest == [local(MONDAY, hour, minute).isoformat() for hour, minute in
                       ((9, 30), (9, 45), (10, 15))]
    assert appointment_count() == 1

    answer = client.post(f"{CALL}/details", data={**form, "other_start": nearest[2]})
    assert answer.status_code == 303
    db.session.rollback()
    assert db.session.scalar(
        select(Appointment.start_at).join(Patient).where(Patient.name == "Sam Late")
    ) == local(MONDAY, 10, 15)


def test_a_time_off_the_grid_is_told_so_not_that_it_was_taken(client):
    form = visit_form(local(MONDAY, 10, 7), therapist="alex-rivera", name="Sam Odd")
    answer = client.post(f"{CALL}/details", data=form)
    assert answer.status_code == 409
    text = text_of(answer)
    assert (f"Sorry, 10:07 AM on {MONDAY:%A}, {MONDAY:%B} {MONDAY.day} is not one of our times "
            "Visits start every 15 minutes from the hour, and 10:07 AM falls between two of "
            "them. Nothing was booked for you, and what you typed is kept below.") in text
    assert "taken" not in text and "Someone" not in text
    html = answer.get_data(as_text=True)
    assert 'value="Sam Odd"' in html
    assert re.findall(r'name="other_start"[^>]*value="([^"]+)"', html) == [
        local(MONDAY, hour, minute).isoformat() for hour, minute in ((9, 45), (10, 0), (10, 15))]
    assert appointment_count() == 0


def test_a_time_inside_the_notice_is_told_it_is_too_soon(client):
    now = utc_now()
    soon = (now + timedelta(minutes=45)).replace(second=0, microsecond=0)
    soon -= timedelta(minutes=soon.minute % 15)  # on the grid: the notice is the only reason
    answer = client.post(f"{CALL}/details", data=visit_form(soon))
    assert answer.status_code == 409
    text = text_of(answer)
    assert "is too soon to book online Schedule a call is booked at least 2 hours ahead. For a " \
           "visit sooner than that, please call the clinic on +1 586 555 0100." in text
    assert "taken" not in text
    html = answer.get_data(as_text=True)
    offered = re.findall(r'name="other_start"[^>]*value="([^"]+)"', html)
    assert all(datetime.fromisoformat(start) >= now + timedelta(hours=2) for start in offered)
    assert appointment_count() == 0


def test_a_day_chip_opens_that_day_and_the_first_free_day_opens_by_default(client):
    def open_day(url: str) -> str:
        html = client.get(url).get_data(as_text=True)
        [day] = re.findall(r'class="day-times is-open" data-day="([^"]+)"', html)
        [current] = re.findall(r'data-day-link="([^"]+)" aria-current="true"', html)
        assert current == day
        return day

    week = f"{CALL}?week={MONDAY.isoformat()}"
    assert open_day(week) == MONDAY.isoformat()
    assert open_day(f"{week}&day={TUESDAY.isoformat()}") == TUESDAY.isoformat()
    sunday = MONDAY + timedelta(days=6)  # no one works on Sunday: the first free day opens
    assert open_day(f"{week}&day={sunday.isoformat()}") == MONDAY.isoformat()
    answer = client.get(f"{week}&day=tuesday")
    assert answer.status_code == 400
    assert "Day: use a date like 2026-12-01." in text_of(answer)


# --- the manage link -----------------------------------------------------------------------


def test_a_wrong_manage_link_says_it_does_not_work(client):
    for url in ("/manage/nonsense", "/manage/nonsense/cancel", "/manage/x/appointment.ics"):
        answer = client.get(url)
        assert answer.status_code == 404
        assert "This link does not work" in text_of(answer)


def test_cancelling_asks_first_and_only_a_post_cancels(client):
    token = book_through_the_page(client, local(MONDAY, 10))
    ask = client.get(f"/manage/{token}/cancel")
    assert ask.status_code == 200
    assert "Cancel your visit?" in text_of(ask)
    assert db.session.scalars(select(Appointment)).one().status == AppointmentStatus.CONFIRMED

    answer = client.post(f"/manage/{token}/cancel")
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/manage/{token}"
    db.session.rollback()
    assert db.session.scalars(select(Appointment)).one().status == AppointmentStatus.CANCELLED
    page = text_of(client.get(f"/manage/{token}"))
    assert "Your visit is cancelled." in page
    assert "Cancelled. This visit will not take place." in page
    assert "Move to another time" not in page
    assert "METHOD:CANCEL" in client.get(f"/manage/{token}/appointment.ics").get_data(
        as_text=True)

    again = client.post(f"/manage/{token}/reschedule", data={"start": local(MONDAY, 11)
                                                            .isoformat()})
    assert again.status_code == 409
    assert "This visit can no longer be changed online" in text_of(again)


def test_moving_a_visit_through_the_manage_link(client):
    token = book_through_the_page(client, local(MONDAY, 10), therapist="jamie-lee")
    page = client.get(f"/manage/{token}/reschedule?week={TUESDAY.isoformat()}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    new_start = local(TUESDAY, 14, 30).isoformat()
    assert f'name="start" value="{new_start}"' in html
    assert "Choose a new time with Jamie Lee, PT." in text_of(page)

    answer = client.post(f"/manage/{token}/reschedule", data={"start": new_start})
    assert answer.status_code == 303
    db.session.rollback()
    appointment = db.session.scalars(select(Appointment)).one()
    assert (appointment.start_at, appointment.therapist.slug) == (local(TUESDAY, 14, 30),
                                                                  "jamie-lee")
    assert appointment.sequence == 1
    moved = text_of(client.get(f"/manage/{token}"))
    assert f"Your visit is moved to {TUESDAY:%A}, {TUESDAY:%B} {TUESDAY.day} at 2:30 PM." in moved


def test_moving_to_a_time_taken_meanwhile_offers_the_nearest(client, book):
    token = book_through_the_page(client, local(MONDAY, 10), therapist="alex-rivera")
    book("schedule-a-call", local(TUESDAY, 9), "alex-rivera", email="other@example.com")
    answer = client.post(f"/manage/{token}/reschedule",
                         data={"start": local(TUESDAY, 9).isoformat()})
    assert answer.status_code == 409
    text = text_of(answer)
    assert "was just taken" in text and "Your visit has not moved." in text
    assert f'value="{local(TUESDAY, 9, 15).isoformat()}"' in answer.get_data(as_text=True)
    db.session.rollback()
    mine = db.session.scalars(select(Appointment).order_by(Appointment.id)).first()
    assert mine.start_at == local(MONDAY, 10)


def test_moving_to_a_time_too_far_ahead_is_told_so(client):
    token = book_through_the_page(client, local(MONDAY, 10), therapist="alex-rivera")
    far = next_weekday(0, at_least_days=70)  # calls are booked at most 60 days ahead
    answer = client.post(f"/manage/{token}/reschedule", data={"start": local(far, 9).isoformat()})
    assert answer.status_code == 409
    text = text_of(answer)
    assert (f"Sorry, 9:00 AM on {far:%A}, {far:%B} {far.day} is too far ahead Schedule a call "
            "can be booked up to 60 days ahead. Your visit has not moved.") in text
    assert "taken" not in text
    db.session.rollback()
    assert db.session.scalars(select(Appointment)).one().start_at == local(MONDAY, 10)


# --- protections ---------------------------------------------------------------------------


@pytest.fixture
def protected_client(app_settings, request):
    """A client of an app with the protections TestConfig turns off, as set by the test."""
    app = create_app({**app_settings, **request.param})
    yield app.test_client()
    with app.app_context():
        dispose_engines()


@pytest.mark.parametrize("protected_client", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_every_form_needs_its_csrf_token(protected_client):
    start = local(MONDAY, 10)
    refused = protected_client.post(f"{CALL}/details", data=visit_form(start))
    assert refused.status_code == 400
    assert "Please try again" in text_of(refused)
    assert appointment_count() == 0

    page = protected_client.get(f"{CALL}/details", query_string={"start": start.isoformat()})
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                     page.get_data(as_text=True)).group(1)
    booked = protected_client.post(f"{CALL}/details", data={**visit_form(start),
                                                            "csrf_token": csrf})
    assert booked.status_code == 303
    token = token_from(booked.headers["Location"])
    assert protected_client.post(f"/manage/{token}/cancel").status_code == 400
    assert protected_client.post(f"/manage/{token}/reschedule",
                                 data={"start": local(MONDAY, 11).isoformat()}).status_code == 400
    db.session.rollback()
    appointment = db.session.scalars(select(Appointment)).one()
    assert (appointment.status, appointment.start_at) == (AppointmentStatus.CONFIRMED, start)


@pytest.mark.parametrize(
    "protected_client",
    [{"RATELIMIT_ENABLED": True, "RATE_LIMIT_BOOKING": "2 per minute",
      "RATE_LIMIT_MANAGE": "1 per minute"}],
    indirect=True,
)
def test_booking_and_managing_too_fast_gets_a_clear_429_page(protected_client):
    answers = [protected_client.post(f"{CALL}/details", data=visit_form(local(MONDAY, 9 + hour)))
               for hour in range(3)]
    assert [answer.status_code for answer in answers] == [303, 303, 429]
    assert "Too many tries" in text_of(answers[2])
    assert "Please wait a minute and try again" in text_of(answers[2])
    assert int(answers[2].headers["Retry-After"]) > 0
    assert protected_client.get(f"{CALL}/details", query_string={
        "start": local(MONDAY, 14).isoformat()}).status_code == 200  # reading is not limited

    token = token_from(answers[0].headers["Location"])
    moved = protected_client.post(f"/manage/{token}/reschedule",
                                  data={"start": local(TUESDAY, 10).isoformat()})
    assert moved.status_code == 303
    assert protected_client.post(f"/manage/{token}/cancel").status_code == 429
    assert appointment_count() == 2
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(
        Appointment.status == AppointmentStatus.CANCELLED)) == 0


def test_the_pages_carry_no_inline_script_or_style_and_no_patient_data_in_links(client):
    token = book_through_the_page(client, local(MONDAY, 10), name="Quinn Private",
                                  email="quinn.private@example.com")
    pages = ["/", CALL, f"{CALL}/details?start={local(MONDAY, 11).isoformat()}",
             f"/manage/{token}/confirmation", f"/manage/{token}", f"/manage/{token}/cancel",
             f"/manage/{token}/reschedule"]
    for url in pages:
        answer = client.get(url.replace("+", "%2B"))
        assert answer.status_code == 200, url
        html = answer.get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], url
        assert " style=" not in html and "<style" not in html, url
        assert not re.search(r"<[^>]*\son[a-z]+=", html), url  # no inline event handlers
        for link in re.findall(r'(?:href|action|src)="([^"]*)"', html):
            assert "quinn" not in link.lower() and "private" not in link.lower(), (url, link)
        assert "Content-Security-Policy" in answer.headers
