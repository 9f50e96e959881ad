"""Weekly visits on the patient's pages (CONTRACT "Series of visits", issue 14): "repeat
weekly" on the booking page with the preview the API gives, booked all or nothing, and the
series' manage link: every visit with its status, cancel one or the rest, move one.

Through the test client, as the patient sees it (status, page text) and as the clinic records
it (appointments, reminders, the mail in the SMTP inbox).
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from booking.extensions import db
from booking.models import Appointment, AppointmentStatus, Notification, utc_now
from booking.notifications.dispatcher import DispatchReport, send_due
from booking.patients.manage_links import manage_token_for
from tests.conftest import CLINIC_ZONE, local
from tests.test_series import MONDAY, THURSDAY, evaluated, mondays_and_thursdays, someone_else_with

pytestmark = pytest.mark.usefixtures("clinic")

DRY_NEEDLING = "/book/dry-needling/details"


def weekly_form(patient: dict, *, count: int = 6, weekdays=("mon", "thu"), **overrides) -> dict:
    form = {
        "start": local(MONDAY, 14).isoformat(),
        "therapist": "alex-rivera",
        "visit_for": "me",
        "name": patient["name"],
        "email": patient["email"],
        "phone": "",
        "note": "",
        "website": "",
        "weekdays": list(weekdays),
        "count": str(count),
        "action": "see-weekly-visits",
    }
    form.update(overrides)
    return form


def text_of(answer) -> str:
    html = answer.get_data(as_text=True)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def hidden(answer, name: str) -> str:
    found = re.search(rf'name="{name}" type="hidden" value="([^"]*)"|'
                      rf'type="hidden" name="{name}" value="([^"]*)"|'
                      rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"',
                      answer.get_data(as_text=True))
    assert found, f"no hidden {name}"
    return unescape(next(group for group in found.groups() if group is not None))


def carried(answer, form: dict) -> dict:
    """The form again, with what the preview page carries to the next step."""
    return {**form, "therapist": hidden(answer, "therapist"),
            "previewed": hidden(answer, "previewed"),
            "booking_key": hidden(answer, "booking_key")}


def counts() -> tuple[int, int]:
    """(appointments, live appointments)"""
    db.session.rollback()
    total = db.session.scalar(select(func.count()).select_from(Appointment))
    live = db.session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.status == AppointmentStatus.CONFIRMED))
    return total, live


def series_token_of(answer) -> str:
    assert answer.status_code == 303, text_of(answer)
    found = re.fullmatch(r"/manage/([^/]+)/confirmation", answer.headers["Location"])
    assert found, answer.headers["Location"]
    return found.group(1)


def visits_of_patient(email: str) -> list[Appointment]:
    db.session.rollback()
    return list(db.session.scalars(
        select(Appointment).join(Appointment.patient)
        .where(Appointment.series_id.is_not(None))
        .order_by(Appointment.start_at)
    ))


def events_of(mail) -> tuple[str, list]:
    [attachment] = list(mail.iter_attachments())
    calendar = Calendar.from_ical(attachment.get_content())
    return str(calendar["METHOD"]), list(calendar.walk("VEVENT"))


def book_weekly(client, patient: dict, **options) -> str:
    form = weekly_form(patient, **options)
    preview = client.post(DRY_NEEDLING, data=form)
    assert preview.status_code == 200, text_of(preview)
    booked = client.post(DRY_NEEDLING, data={**carried(preview, form),
                                             "action": "book-weekly-visits"})
    return series_token_of(booked)


# --- the booking page ------------------------------------------------------------------------


def test_repeat_weekly_is_offered_only_for_a_service_booked_as_a_series(client):
    start = local(MONDAY, 14).isoformat()
    page = client.get(DRY_NEEDLING, query_string={"start": start, "therapist": "alex-rivera"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Repeat weekly (optional)" in text_of(page)
    assert "Book up to 12 visits" in text_of(page)
    # The first visit's weekday is ticked; every box has its label.
    assert re.search(r'<input checked id="weekdays-0" name="weekdays" type="checkbox" '
                     r'value="mon">\s*<label for="weekdays-0">Monday</label>', html)
    assert '<label for="count">How many visits, this one included?</label>' in html
    call = client.get("/book/schedule-a-call/details", query_string={"start": start})
    assert "Repeat weekly" not in text_of(call)


def test_the_preview_shows_each_visit_as_the_api_does_and_books_nothing(client):
    patient = evaluated(20)
    third = mondays_and_thursdays(6, local(MONDAY, 14))[2].astimezone(CLINIC_ZONE)
    someone_else_with(client, "alex-rivera", third)
    before = counts()

    preview = client.post(DRY_NEEDLING, data=weekly_form(patient))
    assert preview.status_code == 200
    text = text_of(preview)
    assert "Your 6 visits" in text
    assert "1 visit cannot be booked at its weekly time" in text
    html = preview.get_data(as_text=True)
    assert re.findall(r'data-free="(yes|no)"', html) == ["yes", "yes", "no", "yes", "yes", "yes"]
    assert "not free: taken" in text
    # The alternatives are the API's, each a choice for visit 3.
    api = client.post("/api/v1/appointments/series", json={
        "service": "dry-needling", "start": local(MONDAY, 14).isoformat(),
        "therapist": "alex-rivera", "patient": patient, "preview": True,
        "repeat": {"weekdays": ["mon", "thu"], "count": 6}}).json
    offered = re.findall(r'name="visit-3" id="visit-3-\d" value="([^"]+)"', html)
    assert offered == [alternative["start"] for alternative in api["visits"][2]["alternatives"]]
    assert len(offered) == 3
    assert '<legend>Another time for visit 3</legend>' in html
    # Nothing to book until visit 3 has a time: the button checks again.
    assert 'value="book-weekly-visits"' not in html
    assert counts() == before


def test_a_time_chosen_for_a_taken_visit_is_checked_then_every_visit_is_booked_once(
    client
):
    patient = evaluated(21)
    starts = mondays_and_thursdays(4, local(MONDAY, 14))
    someone_else_with(client, "alex-rivera", starts[1].astimezone(CLINIC_ZONE))
    form = weekly_form(patient, count=4)
    preview = client.post(DRY_NEEDLING, data=form)
    [nearest, *_] = re.findall(r'name="visit-2" id="visit-2-\d" value="([^"]+)"',
                               preview.get_data(as_text=True))

    checked = client.post(DRY_NEEDLING, data={**carried(preview, form), "visit-2": nearest})
    assert checked.status_code == 200
    html = checked.get_data(as_text=True)
    assert re.findall(r'data-free="(yes|no)"', html) == ["yes"] * 4
    assert "(the time you chose)" in text_of(checked)
    assert "Book these 4 visits" in text_of(checked)
    before = counts()

    book = {**carried(checked, form), "visit-2": nearest, "action": "book-weekly-visits"}
    booked = client.post(DRY_NEEDLING, data=book)
    token = series_token_of(booked)
    visits = visits_of_patient(patient["email"])
    assert [visit.start_at.astimezone(CLINIC_ZONE).isoformat() for visit in visits] == [
        starts[0].astimezone(CLINIC_ZONE).isoformat(), nearest,
        *[start.astimezone(CLINIC_ZONE).isoformat() for start in starts[2:]],
    ]
    assert counts() == (before[0] + 4, before[1] + 4)

    # The same form sent again (a double click, the back button) books nothing more.
    again = client.post(DRY_NEEDLING, data=book)
    assert series_token_of(again) == token
    assert counts() == (before[0] + 4, before[1] + 4)

    # The same form changed (another name) after it booked: refused, nothing more booked.
    other = client.post(DRY_NEEDLING, data={**book, "name": "Robin Other"})
    assert other.status_code == 409
    assert "This form has already booked weekly visits" in text_of(other)
    assert counts() == (before[0] + 4, before[1] + 4)

    confirmation = client.get(f"/manage/{token}/confirmation")
    assert confirmation.status_code == 200
    text = text_of(confirmation)
    assert "Your 4 weekly visits are confirmed." in text
    assert text.count("Confirmed") == 4
    assert "Manage your weekly visits" in text


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"count": "13"}, 422, "Number of visits: choose from 2 to 12."),
        ({"count": "1"}, 422, "Number of visits: choose from 2 to 12."),
        ({"count": "many"}, 422, "Number of visits: choose from 2 to 12."),
        ({"weekdays": ["someday"]}, 422, "Weekdays: choose days from the list."),
        ({"email": "not-an-address"}, 422, "Enter an email address like name@example.com."),
        ({"start": "tomorrow"}, 400, "Start: please choose a time from the list."),
    ],
)
def test_a_series_asked_for_wrongly_names_the_field_and_books_nothing(
    client, change, status, message
):
    patient = evaluated(22)
    before = counts()
    for action in ("see-weekly-visits", "book-weekly-visits"):
        answer = client.post(DRY_NEEDLING, data=weekly_form(patient, action=action, **change))
        assert answer.status_code == status
        assert message in text_of(answer)
    assert counts() == before


def test_a_bad_chosen_time_or_a_service_without_series_is_refused(client):
    patient = evaluated(23)
    form = weekly_form(patient, count=4)
    preview = client.post(DRY_NEEDLING, data=form)
    before = counts()
    for visit, value in (("visit-9", local(MONDAY, 15).isoformat()), ("visit-2", "soon")):
        answer = client.post(DRY_NEEDLING, data={**carried(preview, form), visit: value,
                                                 "action": "book-weekly-visits"})
        assert answer.status_code == 400
        assert f"{visit}: choose one of the times offered for that visit." in text_of(answer)
    call = client.post("/book/schedule-a-call/details", data={
        **weekly_form(patient), "start": local(MONDAY, 9).isoformat(), "phone": "+1 586 555 0199"})
    assert call.status_code == 422
    assert "Repeat weekly: Schedule a call is not booked as weekly visits online." in text_of(call)
    assert counts() == before


def test_the_evaluation_rule_is_checked_on_the_first_visit(client):
    newcomer = {"name": "New Person", "email": "new@example.com"}
    answer = client.post(DRY_NEEDLING, data=weekly_form(newcomer))
    assert answer.status_code == 422
    assert "evaluation" in text_of(answer).lower()
    assert counts() == (0, 0)


def test_the_clearance_rule_is_checked_on_the_first_visit(client):
    from booking.clinic import clinic_file
    from tests.conftest import CLINIC_FILE

    text = CLINIC_FILE.read_text(encoding="utf-8").replace(
        'aftercare_advice = "dry-needling"\n', 'aftercare_advice = "dry-needling"\n'
        'requires_clearance = true\n')
    clinic_file.apply_clinic(clinic_file.parse_clinic_file(text, "clinic.toml"))
    db.session.commit()
    patient = evaluated(31)  # evaluated, but not cleared
    before = counts()
    for action in ("see-weekly-visits", "book-weekly-visits"):
        answer = client.post(DRY_NEEDLING, data=weekly_form(patient, action=action))
        assert answer.status_code == 422
        assert "A therapist clears you for this first" in text_of(answer)
    assert counts() == before


def test_visits_taken_after_the_preview_book_nothing_and_are_named_again(client):
    patient = evaluated(24)
    form = weekly_form(patient, count=4)
    preview = client.post(DRY_NEEDLING, data=form)
    assert "Book these 4 visits" in text_of(preview)
    fourth = mondays_and_thursdays(4, local(MONDAY, 14))[3].astimezone(CLINIC_ZONE)
    someone_else_with(client, "alex-rivera", fourth)
    before = counts()

    refused = client.post(DRY_NEEDLING, data={**carried(preview, form),
                                              "action": "book-weekly-visits"})
    assert refused.status_code == 409
    text = text_of(refused)
    assert "Sorry, some of these visits were just taken" in text
    assert "Nothing was booked for you." in text
    assert re.findall(r'data-free="(yes|no)"', refused.get_data(as_text=True)) == [
        "yes", "yes", "yes", "no"]
    assert counts() == before


# --- the series' manage link -----------------------------------------------------------------


def test_the_manage_link_shows_every_visit_and_opening_its_links_changes_nothing(client):
    patient = evaluated(25)
    token = book_weekly(client, patient, count=4)
    before = counts()
    page = client.get(f"/manage/{token}")
    assert page.status_code == 200
    text = text_of(page)
    assert "Your weekly visits" in text
    rows = re.findall(r'<tr data-visit="(\d)" data-status="(\w+)">',
                      page.get_data(as_text=True))
    assert rows == [(str(number), "confirmed") for number in range(1, 5)]
    starts = mondays_and_thursdays(4, local(MONDAY, 14))
    assert "Thursday" in text and "2:00 PM" in text
    visits = visits_of_patient(patient["email"])
    # Every link on the page, followed: nothing is cancelled or moved, no mail is planned.
    pending = db.session.scalar(select(func.count()).select_from(Notification))
    for visit in visits:
        visit_token = manage_token_for(visit)
        for url in (f"/manage/{visit_token}", f"/manage/{visit_token}/cancel",
                    f"/manage/{visit_token}/cancel?scope=following",
                    f"/manage/{visit_token}/reschedule", f"/manage/{token}/appointment.ics",
                    f"/manage/{token}/confirmation"):
            assert client.get(url).status_code == 200, url
    assert counts() == before
    assert db.session.scalar(select(func.count()).select_from(Notification)) == pending
    calendar = Calendar.from_ical(client.get(f"/manage/{token}/appointment.ics").data)
    assert [event.decoded("DTSTART") for event in calendar.walk("VEVENT")] == starts
    assert "ATTENDEE" not in calendar.to_ical().decode()  # a file shared from a browser

    visit_page = text_of(client.get(f"/manage/{manage_token_for(visits[1])}"))
    assert "This is visit 2 of 4 of your weekly visits." in visit_page
    asked = text_of(client.get(f"/manage/{manage_token_for(visits[1])}/cancel?scope=following"))
    assert "This cancels 3 visits of your weekly visits:" in asked
    assert "Yes, cancel these 3 visits" in asked


@pytest.mark.usefixtures("smtp_settings")
def test_cancelling_the_rest_from_the_page_sends_one_mail_listing_every_visit(
    client, smtp_inbox
):
    patient = evaluated(26)
    token = book_weekly(client, patient, count=5)
    send_due(utc_now())
    smtp_inbox.take()
    visits = visits_of_patient(patient["email"])
    third = manage_token_for(visits[2])

    answer = client.post(f"/manage/{third}/cancel", data={"scope": "following"})
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/manage/{token}"
    page = client.get(f"/manage/{token}")
    assert "3 visits are cancelled. One email to confirm them is on its way." in text_of(page)
    assert re.findall(r'data-status="(\w+)"', page.get_data(as_text=True)) == [
        "confirmed", "confirmed", "cancelled", "cancelled", "cancelled"]
    ids = [visit.id for visit in visits]
    pending = dict(db.session.execute(
        select(Notification.appointment_id, func.count())
        .where(Notification.kind == "reminder", Notification.status == "pending")
        .group_by(Notification.appointment_id)).all())
    assert pending == {ids[0]: 2, ids[1]: 2}

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["X-Booking-Notification"] == "cancellation"
    assert mail["Subject"].startswith("Cancelled: 3 visits, your dry needling session")
    text = mail.get_body(("plain",)).get_content()
    listed = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(listed) == 3
    method, events = events_of(mail)
    assert method == "CANCEL"
    db.session.rollback()
    assert [(str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) for event in events] == [
        (visit.calendar_uid, 1, "CANCELLED") for visit in visits_of_patient(patient["email"])[2:]
    ]


@pytest.mark.usefixtures("smtp_settings")
def test_cancelling_one_visit_leaves_the_others_and_tells_of_that_one(client, smtp_inbox):
    patient = evaluated(27)
    token = book_weekly(client, patient, count=3)
    send_due(utc_now())
    smtp_inbox.take()
    visits = visits_of_patient(patient["email"])

    answer = client.post(f"/manage/{manage_token_for(visits[1])}/cancel", data={})
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/manage/{token}"
    page = client.get(f"/manage/{token}")
    assert "Your visit is cancelled." in text_of(page)
    assert re.findall(r'data-status="(\w+)"', page.get_data(as_text=True)) == [
        "confirmed", "cancelled", "confirmed"]
    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    method, [event] = events_of(mail)
    assert (method, str(event["UID"])) == ("CANCEL", visits[1].calendar_uid)


@pytest.mark.usefixtures("smtp_settings")
def test_moving_one_visit_from_the_page_keeps_its_uid_and_raises_its_sequence(
    client, smtp_inbox
):
    patient = evaluated(28)
    token = book_weekly(client, patient, count=3)
    send_due(utc_now())
    smtp_inbox.take()
    visits = visits_of_patient(patient["email"])
    second = visits[1]  # Thursday 14:00
    new_start = local(THURSDAY, 15, 15)

    moved = client.post(f"/manage/{manage_token_for(second)}/reschedule",
                        data={"start": new_start.isoformat()})
    assert moved.status_code == 303
    assert moved.headers["Location"] == f"/manage/{token}"
    assert "Your visit is moved to Thursday" in text_of(client.get(f"/manage/{token}"))
    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["X-Booking-Notification"] == "reschedule"
    _, [event] = events_of(mail)
    assert (str(event["UID"]), event["SEQUENCE"]) == (second.calendar_uid, 1)
    assert event.decoded("DTSTART") == new_start


def test_a_cancel_scope_that_is_not_one_of_the_two_is_refused_naming_it(client):
    patient = evaluated(29)
    book_weekly(client, patient, count=2)
    first = manage_token_for(visits_of_patient(patient["email"])[0])
    before = counts()
    for answer in (client.get(f"/manage/{first}/cancel?scope=everything"),
                   client.post(f"/manage/{first}/cancel", data={"scope": "everything"})):
        assert answer.status_code == 400
        assert "Scope: choose this visit, or this visit and the following ones." in text_of(answer)
    assert counts() == before


@pytest.mark.usefixtures("smtp_settings")
def test_the_confirmation_mail_links_to_the_whole_series(client, smtp_inbox):
    patient = evaluated(30)
    send_due(utc_now())
    smtp_inbox.take()  # the evaluation's own
    token = book_weekly(client, patient, count=2)
    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["Subject"].startswith("Booked: 2 visits")
    text = mail.get_body(("plain",)).get_content()
    assert f"/manage/{token}\r\n" in text
    assert "See every visit, move or cancel one, or cancel the rest:" in text


def test_two_visits_moved_onto_one_time_cannot_both_be_had(app):
    from booking import scheduling

    starts = mondays_and_thursdays(3, local(MONDAY, 14))
    wednesday = local(MONDAY + timedelta(days=2), 10)
    plan = scheduling.plan_series(
        scheduling.bookable_service("dry-needling"), starts[0], [0, 3], 3,
        therapist_slug="alex-rivera", chosen={1: wednesday, 2: wednesday + timedelta(minutes=30)},
    )
    assert [(visit.start, visit.reason) for visit in plan.visits] == [
        (starts[0], None), (wednesday, None), (wednesday + timedelta(minutes=30), "taken")]
    with pytest.raises(scheduling.SchedulingError, match="has no visit 4"):
        scheduling.plan_series(
            scheduling.bookable_service("dry-needling"), starts[0], [0, 3], 3,
            therapist_slug="alex-rivera", chosen={3: wednesday},
        )
