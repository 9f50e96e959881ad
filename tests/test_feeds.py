"""Calendar feeds and calendar files, as Google, Apple and Outlook read them.

Every feed and file is read back twice: by icalendar, and by vobject, an independent parser.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import vobject
from icalendar import Calendar
from sqlalchemy import select

from booking import scheduling
from booking.calendars.feed_tokens import clinic_feed_url, feed_url_for
from booking.calendars.ical import (
    FeedEvent,
    VisitEvent,
    calendar_file,
    feed_event,
    feed_event_text,
    visit_event,
    visit_event_text,
    vtimezone,
)
from booking.clinic import clinic_file
from booking.extensions import db
from booking.feeds import content as feed_content
from booking.models import Therapist, WorkingHours, utc_now
from booking.notifications.dispatcher import send_due
from tests.conftest import CLINIC_FILE, CLINIC_ZONE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins

STAFF = scheduling.StaffOverride(staff="staff:desk@clinic.example", reason="test set-up")


def therapist(slug: str) -> Therapist:
    return db.session.scalars(select(Therapist).where(Therapist.slug == slug)).one()


def feed_path(owner) -> str:
    url = clinic_feed_url(owner) if not isinstance(owner, Therapist) else feed_url_for(owner)
    return urlsplit(url).path


def visit(start: datetime, *, service="schedule-a-call", who="alex-rivera", name="Pat Example",
          email="pat@example.com", phone="+1 586 555 0111", now=None):
    appointment = scheduling.book_appointment(
        scheduling.bookable_service(service),
        start,
        scheduling.PatientDetails(name=name, email=email, phone=phone),
        therapist_slug=who,
        override=STAFF,
        booked_by="staff:desk@clinic.example",
        now=now,
    )
    db.session.commit()
    return appointment


def read_both(body: bytes):
    """(icalendar's VEVENTs by UID, vobject's VEVENTs by UID) for the same text."""
    calendar = Calendar.from_ical(body)
    parsed = vobject.readOne(body.decode())
    by_icalendar = {str(event["UID"]): event for event in calendar.walk("VEVENT")}
    by_vobject = {event.uid.value: event for event in getattr(parsed, "vevent_list", [])}
    assert by_icalendar.keys() == by_vobject.keys()
    return calendar, by_icalendar, by_vobject


def get_feed(client, owner, **headers):
    return client.get(feed_path(owner), headers=headers)


@pytest.fixture
def sundays(clinic):
    """Alex also works Sundays, the day clocks change in America/Detroit."""
    alex = therapist("alex-rivera")
    alex.hours.append(WorkingHours(weekday=6, start_time=time(8), end_time=time(17)))
    db.session.commit()


def clock_change_days(after: date) -> dict[str, date]:
    """The next day clocks go forward ("spring") and back ("fall") at the clinic."""
    found: dict[str, date] = {}
    day = after
    while len(found) < 2:
        day += timedelta(days=1)
        before, after_change = local(day - timedelta(days=1), 12), local(day, 12)
        if before.utcoffset() != after_change.utcoffset():
            kind = "spring" if after_change.utcoffset() > before.utcoffset() else "fall"
            found.setdefault(kind, day)
    return found


def first_monday_of(month: int, after: date) -> date:
    day = after + timedelta(days=1)
    while not (day.month == month and day.weekday() == 0):
        day += timedelta(days=1)
    return day


# --- what a subscribed calendar sees -------------------------------------------------------


def test_a_therapist_sees_their_own_visits_with_initials_and_no_contact_details(client, book):
    mine = book("schedule-a-call", local(next_weekday(0), 9), name="Pat Q. Example",
                email="pat@example.com", phone="+1 586 555 0123")
    theirs = book("schedule-a-call", local(next_weekday(0), 10), therapist="jamie-lee",
                  name="Robin Other", email="robin@example.com")

    response = get_feed(client, therapist("alex-rivera"))

    assert response.status_code == 200
    assert response.content_type == "text/calendar; charset=utf-8"
    assert "private" in response.headers["Cache-Control"]
    calendar, by_icalendar, by_vobject = read_both(response.data)
    assert list(by_icalendar) == [mine.calendar_uid]
    assert theirs.calendar_uid not in response.text
    assert str(calendar["X-WR-CALNAME"]) == "Alex Rivera, PT, DPT: Test Therapy Clinic"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M" in response.text
    assert "X-PUBLISHED-TTL:PT15M" in response.text
    [timezone] = calendar.walk("VTIMEZONE")
    assert str(timezone["TZID"]) == "America/Detroit"
    event = by_icalendar[mine.calendar_uid]
    assert str(event["SUMMARY"]) == "Schedule a call (PQE)"
    assert by_vobject[mine.calendar_uid].summary.value == "Schedule a call (PQE)"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == local(next_weekday(0), 9)
    assert event["DTSTART"].params["TZID"] == "America/Detroit"
    assert event.decoded("LAST-MODIFIED") == mine.updated_at.replace(microsecond=0)
    assert event.decoded("DTSTAMP") == mine.updated_at.replace(microsecond=0)
    for private in ("pat@example.com", "586 555 0123", "Pat Q. Example", "Robin", "ATTENDEE"):
        assert private not in response.text


def test_visits_land_at_the_right_instant_in_summer_winter_and_on_clock_change_days(
    client, sundays
):
    today = utc_now().astimezone(CLINIC_ZONE).date() + timedelta(days=3)
    changes = clock_change_days(today)
    days = {
        "summer": first_monday_of(7, today),
        "winter": first_monday_of(1, today),
        "spring forward": changes["spring"],
        "fall back": changes["fall"],
    }
    booked = {label: visit(local(day, 9)) for label, day in days.items()}
    # 09:00 in Detroit is 13:00 UTC under daylight time and 14:00 UTC under standard time.
    expected_utc_hour = {"summer": 13, "winter": 14, "spring forward": 13, "fall back": 14}

    response = get_feed(client, therapist("alex-rivera"))

    _, by_icalendar, by_vobject = read_both(response.data)
    for label, appointment in booked.items():
        day = days[label]
        instant = datetime(day.year, day.month, day.day, expected_utc_hour[label], tzinfo=UTC)
        event = by_icalendar[appointment.calendar_uid]
        assert event.decoded("DTSTART").astimezone(UTC) == instant, label
        assert event.decoded("DTEND").astimezone(UTC) == instant + timedelta(minutes=15), label
        other = by_vobject[appointment.calendar_uid]
        assert other.dtstart.value.astimezone(UTC) == instant, label
        assert other.dtend.value.astimezone(UTC) == instant + timedelta(minutes=15), label
        assert f"DTSTART;TZID=America/Detroit:{day:%Y%m%d}T090000" in response.text


def test_a_cancelled_and_a_moved_visit_show_their_status_and_sequence(client, book):
    monday = next_weekday(0)
    moved = book("schedule-a-call", local(monday, 9), name="Moe Ved")
    cancelled = book("schedule-a-call", local(monday, 10), name="Cass Celled")
    scheduling.reschedule_appointment(moved, local(monday, 11), changed_by="patient")
    scheduling.cancel_appointment(cancelled, cancelled_by="patient")
    db.session.commit()

    response = get_feed(client, therapist("alex-rivera"))

    _, by_icalendar, by_vobject = read_both(response.data)
    assert by_icalendar[moved.calendar_uid]["SEQUENCE"] == 1
    assert str(by_icalendar[moved.calendar_uid]["STATUS"]) == "CONFIRMED"
    assert by_icalendar[moved.calendar_uid].decoded("DTSTART") == local(monday, 11)
    assert by_vobject[moved.calendar_uid].sequence.value == "1"
    assert by_icalendar[cancelled.calendar_uid]["SEQUENCE"] == 1
    assert str(by_icalendar[cancelled.calendar_uid]["STATUS"]) == "CANCELLED"
    assert by_vobject[cancelled.calendar_uid].status.value == "CANCELLED"


def test_a_cancelled_visit_leaves_the_feed_30_days_after_it_was_cancelled(client, clinic):
    now = utc_now()
    long_ago = visit(local(next_weekday(0), 9), now=now - timedelta(days=40))
    scheduling.cancel_appointment(long_ago, now=now - timedelta(days=31))
    recently = visit(local(next_weekday(0), 10), now=now - timedelta(days=40))
    scheduling.cancel_appointment(recently, now=now - timedelta(days=29))
    db.session.commit()

    _, by_icalendar, _ = read_both(get_feed(client, therapist("alex-rivera")).data)

    assert list(by_icalendar) == [recently.calendar_uid]


def test_visits_from_more_than_30_days_ago_are_left_out(client, clinic):
    now = utc_now()
    today = now.astimezone(CLINIC_ZONE).date()
    day_33_ago, day_27_ago = today - timedelta(days=33), today - timedelta(days=27)
    monday_before = day_33_ago - timedelta(days=day_33_ago.weekday())
    monday_after = day_27_ago + timedelta(days=(7 - day_27_ago.weekday()) % 7)
    old = visit(local(monday_before, 9), now=now - timedelta(days=60))
    recent = visit(local(monday_after, 9), now=now - timedelta(days=60))

    _, by_icalendar, _ = read_both(get_feed(client, therapist("alex-rivera")).data)

    assert list(by_icalendar) == [recent.calendar_uid]
    assert old.calendar_uid not in by_icalendar


# --- conditional requests and tokens -------------------------------------------------------


def test_an_unchanged_feed_answers_304_without_being_built(client, book, monkeypatch):
    book("schedule-a-call", local(next_weekday(0), 9))
    alex = therapist("alex-rivera")
    first = get_feed(client, alex)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]

    def no_building(*_args, **_kwargs):
        raise AssertionError("the feed was built for a conditional request")

    monkeypatch.setattr("booking.feeds.views.build_feed", no_building)
    by_etag = get_feed(client, alex, **{"If-None-Match": etag})
    by_date = get_feed(client, alex, **{"If-Modified-Since": last_modified})

    assert (by_etag.status_code, by_etag.data) == (304, b"")
    assert by_etag.headers["ETag"] == etag
    assert (by_date.status_code, by_date.data) == (304, b"")
    monkeypatch.undo()
    # A stale ETag wins over a current date: RFC 9110 reads If-None-Match alone.
    stale = get_feed(
        client, alex, **{"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    )
    assert stale.status_code == 200


def test_a_booking_a_move_or_a_new_feed_setting_changes_the_etag(client, book):
    alex = therapist("alex-rivera")
    etags = [get_feed(client, alex).headers["ETag"]]
    appointment = book("schedule-a-call", local(next_weekday(0), 9))
    etags.append(get_feed(client, alex).headers["ETag"])
    scheduling.reschedule_appointment(appointment, local(next_weekday(0), 10))
    db.session.commit()
    etags.append(get_feed(client, alex).headers["ETag"])
    text = CLINIC_FILE.read_text().replace(
        "slot_step_minutes = 15", 'slot_step_minutes = 15\nfeed_details = "service"'
    )
    clinic_file.apply_clinic(clinic_file.parse_clinic_file(text, "clinic.toml"))
    db.session.commit()
    response = get_feed(client, alex, **{"If-None-Match": etags[-1]})
    etags.append(response.headers["ETag"])

    assert len(set(etags)) == 4
    assert response.status_code == 200
    _, by_icalendar, by_vobject = read_both(response.data)
    assert str(by_icalendar[appointment.calendar_uid]["SUMMARY"]) == "Schedule a call"
    assert by_vobject[appointment.calendar_uid].summary.value == "Schedule a call"
    # Someone else's booking is no change to Alex's feed.
    book("schedule-a-call", local(next_weekday(0), 11), therapist="jamie-lee")
    assert get_feed(client, alex, **{"If-None-Match": etags[-1]}).status_code == 304


def test_a_wrong_or_rotated_token_answers_404(app, client, clinic):
    alex = therapist("alex-rivera")
    old_path = feed_path(alex)
    assert client.get(old_path).status_code == 200

    result = app.test_cli_runner().invoke(args=["feeds", "rotate", "alex-rivera"])

    assert result.exit_code == 0, result.output
    db.session.rollback()
    new_path = feed_path(therapist("alex-rivera"))
    assert result.output.strip().endswith(new_path)
    assert new_path != old_path
    assert client.get(old_path).status_code == 404
    assert client.get(new_path).status_code == 200
    assert client.get("/feeds/" + "a" * 32 + ".ics").status_code == 404
    assert client.get("/feeds/nothing.ics").status_code == 404


def test_feeds_url_prints_the_url_again_and_names_unknown_therapists(app, clinic):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["feeds", "url", "jamie-lee"])
    again = runner.invoke(args=["feeds", "url", "jamie-lee"])
    unknown = runner.invoke(args=["feeds", "url", "nobody"])

    assert first.exit_code == 0
    assert first.output == again.output
    assert first.output.strip() == feed_url_for(therapist("jamie-lee"))
    assert first.output.startswith("http://127.0.0.1:5000/feeds/")
    assert len(urlsplit(first.output.strip()).path) >= len("/feeds/.ics") + 32  # 160 bits
    assert unknown.exit_code != 0
    assert "there is no therapist 'nobody'" in unknown.output


def test_the_front_desk_feed_holds_every_therapists_visits_under_its_own_token(
    app, client, book
):
    alex_visit = book("schedule-a-call", local(next_weekday(0), 9), name="Pat Example")
    jamie_visit = book("schedule-a-call", local(next_weekday(0), 9), therapist="jamie-lee",
                       name="Robin Other")
    runner = app.test_cli_runner()
    url = runner.invoke(args=["feeds", "url", "--clinic"]).output.strip()

    response = client.get(urlsplit(url).path)

    assert response.status_code == 200
    _, by_icalendar, _ = read_both(response.data)
    assert {uid: str(event["SUMMARY"]) for uid, event in by_icalendar.items()} == {
        alex_visit.calendar_uid: "Schedule a call (PE) with Alex Rivera, PT, DPT",
        jamie_visit.calendar_uid: "Schedule a call (RO) with Jamie Lee, PT",
    }
    assert urlsplit(url).path not in (feed_path(therapist("alex-rivera")),
                                      feed_path(therapist("jamie-lee")))
    rotated = runner.invoke(args=["feeds", "rotate", "--clinic"])
    assert rotated.exit_code == 0
    assert client.get(urlsplit(url).path).status_code == 404
    assert client.get(urlsplit(rotated.output.strip()).path).status_code == 200


def test_a_no_show_shows_cancelled_and_only_the_front_desk_feed_says_why(app, client, book):
    monday = next_weekday(0)
    missed = book("pt-evaluation", local(monday, 9), name="Nora Show")
    called_off = book("pt-evaluation", local(monday, 13), name="Cal Off")
    scheduling.record_attendance(
        missed, "no_show", by="staff:desk@clinic.example", now=local(monday, 10, 30)
    )
    scheduling.cancel_appointment(
        called_off, cancelled_by="staff:desk@clinic.example", reason="Therapist ill"
    )
    db.session.commit()

    response = get_feed(client, therapist("alex-rivera"))
    _, by_icalendar, by_vobject = read_both(response.data)
    for gone in (missed, called_off):
        event = by_icalendar[gone.calendar_uid]
        assert str(event["STATUS"]) == "CANCELLED"
        assert str(event["TRANSP"]) == "TRANSPARENT"
        assert event["SEQUENCE"] == 1
        assert by_vobject[gone.calendar_uid].status.value == "CANCELLED"
    assert "No-show" not in response.text
    assert "Therapist ill" not in response.text

    url = app.test_cli_runner().invoke(args=["feeds", "url", "--clinic"]).output.strip()
    desk_feed = client.get(urlsplit(url).path)
    _, by_icalendar, _ = read_both(desk_feed.data)
    assert str(by_icalendar[missed.calendar_uid]["STATUS"]) == "CANCELLED"
    assert str(by_icalendar[missed.calendar_uid]["DESCRIPTION"]) == "No-show."
    assert str(by_icalendar[called_off.calendar_uid]["DESCRIPTION"]) == "Cancelled: Therapist ill"


def test_a_call_has_no_street_and_links_to_its_page_behind_the_login_with_the_number(
    app, client, book
):
    monday = next_weekday(0)
    call = book("schedule-a-call", local(monday, 9), name="Pat Example", phone="+1 586 555 0123")
    evaluation = book("pt-evaluation", local(monday, 13), name="Eve Valu")

    response = get_feed(client, therapist("alex-rivera"))

    _, by_icalendar, by_vobject = read_both(response.data)
    call_event = by_icalendar[call.calendar_uid]
    assert "LOCATION" not in call_event
    page = f"http://127.0.0.1:5000/desk/appointments/{call.id}"
    assert str(call_event["URL"]) == page
    assert by_vobject[call.calendar_uid].url.value == page
    assert str(call_event["DESCRIPTION"]) == (
        f"A phone call: the number to call is on the visit's page: {page}"
    )
    assert "586 555 0123" not in response.text
    assert str(by_icalendar[evaluation.calendar_uid]["LOCATION"]) == (
        "1 Test Street, Clinton Township, MI"
    )

    path = urlsplit(page).path
    assert client.get(path).status_code == 302  # the back office's login first
    alex = staff_logins()["therapist"]
    visit_page = signed_in(app, alex).get(path)
    assert visit_page.status_code == 200
    assert "Number to call" in visit_page.text
    assert "+1 586 555 0123" in visit_page.text


# --- the patient's calendar file -----------------------------------------------------------


def test_the_patients_file_is_an_invitation_then_an_update_then_a_cancellation(book, clinic):
    monday = next_weekday(0)
    appointment = book("schedule-a-call", local(monday, 9), name="Pat Example")
    now = utc_now()
    booked = calendar_file(appointment, clinic, method="REQUEST", now=now)
    scheduling.reschedule_appointment(appointment, local(monday, 10))
    db.session.commit()
    moved = calendar_file(appointment, clinic, method="REQUEST", now=now)
    scheduling.cancel_appointment(appointment)
    db.session.commit()
    cancelled = calendar_file(appointment, clinic, method="CANCEL", now=now)

    seen = []
    for text in (booked, moved, cancelled):
        calendar, by_icalendar, by_vobject = read_both(text.encode())
        [(uid, event)] = by_icalendar.items()
        other = by_vobject[uid]
        assert uid == appointment.calendar_uid
        assert event["DTSTART"].params["TZID"] == "America/Detroit"
        assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["America/Detroit"]
        assert str(event["ORGANIZER"]) == "mailto:frontdesk@clinic.example"
        assert event["ORGANIZER"].params["CN"] == "Test Therapy Clinic"
        assert str(event["ATTENDEE"]) == "mailto:pat@example.com"
        assert other.attendee.value == "mailto:pat@example.com"
        seen.append((
            str(calendar["METHOD"]), str(event["STATUS"]), event["SEQUENCE"],
            event.decoded("DTSTART"), other.dtstart.value.astimezone(UTC),
        ))
    assert seen == [
        ("REQUEST", "CONFIRMED", 0, local(monday, 9), local(monday, 9).astimezone(UTC)),
        ("REQUEST", "CONFIRMED", 1, local(monday, 10), local(monday, 10).astimezone(UTC)),
        ("CANCEL", "CANCELLED", 2, local(monday, 10), local(monday, 10).astimezone(UTC)),
    ]


@pytest.mark.usefixtures("smtp_settings")
def test_the_mailed_file_of_a_moved_visit_updates_the_event_the_patient_has(
    smtp_inbox, book
):
    appointment = book("schedule-a-call", local(next_weekday(0), 9))
    scheduling.reschedule_appointment(appointment, local(next_weekday(0), 11))
    db.session.commit()

    send_due(utc_now())

    files = {}
    for mail in smtp_inbox.take():
        [attachment] = list(mail.iter_attachments())
        files[mail["X-Booking-Notification"]] = attachment.get_content()
    assert set(files) == {"confirmation", "reschedule"}
    _, moved, other = read_both(files["reschedule"].encode())
    assert list(moved) == [appointment.calendar_uid]
    assert moved[appointment.calendar_uid]["SEQUENCE"] == 1
    assert other[appointment.calendar_uid].sequence.value == "1"
    assert other[appointment.calendar_uid].dtstart.value == local(next_weekday(0), 11)


# --- no database -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "summary",
    [
        "Schedule a call (PE)",
        "Dry needling; session, with \\ backslash",
        "Évaluation orthophonique (ZÑ) with Zoë Ñúñez-Okafor, CCC-SLP " * 2,
        "x" * 73 + ",",
    ],
)
def test_feed_events_are_written_exactly_as_icalendar_writes_them(summary):
    zone = ZoneInfo("America/Detroit")
    item = FeedEvent(
        uid="0b8a1f9e-2f55-4a1d-9b8e-3d8f1c2a7b6e@clinic-booking",
        sequence=3,
        cancelled=summary.startswith("Dry"),
        start=datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
        end=datetime(2027, 3, 14, 8, 15, tzinfo=UTC),
        created=datetime(2026, 11, 1, 12, 0, 5, 123456, tzinfo=UTC),
        last_modified=datetime(2026, 11, 2, 12, 0, 6, tzinfo=UTC),
        summary=summary,
        location="1 Test Street, Clinton Township, MI",
    )
    assert feed_event_text(item, zone) == feed_event(item, zone).to_ical().decode()


@pytest.mark.parametrize(
    ("description", "url"),
    [
        ("A phone call: the number to call is on the visit's page (staff login).",
         "http://127.0.0.1:5000/desk/appointments/12"),
        ("A phone call; the number.\nCancelled: Thérapeute malade, \\ " * 3, ""),
        ("", "https://booking.clinic.example/desk/appointments/" + "9" * 60),
    ],
)
def test_feed_event_descriptions_and_links_are_written_exactly_as_icalendar_writes_them(
    description, url
):
    zone = ZoneInfo("America/Detroit")
    item = FeedEvent(
        uid="0b8a1f9e-2f55-4a1d-9b8e-3d8f1c2a7b6e@clinic-booking",
        sequence=1,
        cancelled=bool(url),
        start=datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
        end=datetime(2027, 3, 14, 8, 15, tzinfo=UTC),
        created=datetime(2026, 11, 1, 12, 0, 5, tzinfo=UTC),
        last_modified=datetime(2026, 11, 2, 12, 0, 6, tzinfo=UTC),
        summary="Schedule a call (PE)",
        description=description,
        url=url,
    )
    assert feed_event_text(item, zone) == feed_event(item, zone).to_ical().decode()


@pytest.mark.parametrize(
    ("patient", "clinic", "location"),
    [
        ("Ana Pérez", "Lakeside Therapy", "1 Test Street, Clinton Township, MI"),
        ('Zoë "Z" Ñúñez-Okafor; guardian: Ana', "Lakeside Therapy, PLLC", ""),
        ("Tab\there ^caret O'Brien", "Clinic:Name;with,marks", "Suite 4; rear door, \\ ring"),
        ("x" * 90, "é" * 40, "Évaluation orthophonique, étage " * 3),
        ("", "Lakeside Therapy", ""),
    ],
)
@pytest.mark.parametrize(("cancelled", "attendee"), [(False, True), (True, True), (False, False)])
def test_a_visits_calendar_event_is_written_exactly_as_icalendar_writes_it(
    patient, clinic, location, cancelled, attendee
):
    zone = ZoneInfo("America/Detroit")
    item = VisitEvent(
        uid="0b8a1f9e-2f55-4a1d-9b8e-3d8f1c2a7b6e@clinic-booking",
        sequence=2,
        cancelled=cancelled,
        start=datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
        end=datetime(2027, 3, 14, 8, 15, tzinfo=UTC),
        stamp=datetime(2026, 12, 2, 17, 0, 1, 250000, tzinfo=UTC),
        created=datetime(2026, 11, 1, 12, 0, 5, 123456, tzinfo=UTC),
        last_modified=datetime(2026, 11, 2, 12, 0, 6, tzinfo=UTC),
        summary=f"Dry needling at {clinic}",
        description="We will call you at +1 (313) 555-0100; or, later.\nWith Alex.",
        location=location,
        organizer_name=clinic,
        organizer_email="front.desk+booking@clinic.example",
        attendee_name=patient if attendee else "",
        attendee_email="ana.perez@example.com" if attendee else "",
    )
    assert visit_event_text(item, zone) == visit_event(item, zone).to_ical().decode()


@pytest.mark.parametrize(
    ("zone_name", "instants"),
    [
        ("America/Detroit", ["2027-03-14T06:59Z", "2027-03-14T07:00Z",
                             "2027-11-07T05:59Z", "2027-11-07T06:00Z"]),
        ("Europe/London", ["2027-03-28T00:59Z", "2027-03-28T01:00Z",
                           "2027-10-31T00:59Z", "2027-10-31T01:00Z"]),
        ("Australia/Sydney", ["2027-04-03T15:59Z", "2027-04-03T16:00Z", "2027-07-01T00:00Z"]),
        ("Asia/Kolkata", ["2027-01-01T00:00Z", "2027-07-01T00:00Z"]),
    ],
)
def test_the_time_zone_description_gives_the_zones_own_offsets(zone_name, instants):
    """vobject turns our VTIMEZONE into a time zone: it must agree with the tz database."""
    calendar = Calendar()
    calendar.add("prodid", "-//test//EN")
    calendar.add("version", "2.0")
    calendar.add_component(vtimezone(zone_name))
    zone = vobject.readOne(calendar.to_ical().decode()).vtimezone.gettzinfo()
    for instant in instants:
        utc = datetime.fromisoformat(instant)
        assert utc.astimezone(zone).utcoffset() == utc.astimezone(ZoneInfo(zone_name)).utcoffset()


def test_event_summaries_follow_the_clinic_setting():
    assert feed_content.event_summary("Dry needling session", "pat  o'brien", None) == (
        "Dry needling session (PO)"
    )
    assert feed_content.event_summary("Dry needling session", None, None) == (
        "Dry needling session"
    )
    assert feed_content.event_summary("Call", "Pat Example", "Jamie Lee, PT") == (
        "Call (PE) with Jamie Lee, PT"
    )


def test_each_visit_of_a_weekly_series_says_which_of_the_course_it_is_and_nothing_private(
    client, clinic
):
    monday = next_weekday(0)
    booked = scheduling.book_series(
        scheduling.bookable_service("dry-needling"), local(monday, 14), [0, 3], 4,
        scheduling.PatientDetails(name="Pat Q. Example", email="pat@example.com",
                                  phone="+1 586 555 0123"),
        therapist_slug="alex-rivera", notes="Sore knee since March", override=STAFF,
        booked_by="staff:desk@clinic.example",
    )
    db.session.commit()
    scheduling.cancel_appointment(booked.appointments[1], cancelled_by="patient")
    db.session.commit()
    single = visit(local(monday, 9))

    for owner in (therapist("alex-rivera"), clinic):
        response = get_feed(client, owner)
        assert response.status_code == 200
        _, by_icalendar, by_vobject = read_both(response.data)
        descriptions = [
            str(by_icalendar[appointment.calendar_uid]["DESCRIPTION"]).splitlines()[0]
            for appointment in booked.appointments
        ]
        assert descriptions == [
            f"Visit {number} of 4 of a weekly course." for number in range(1, 5)
        ]
        second = booked.appointments[1].calendar_uid
        assert str(by_icalendar[second]["STATUS"]) == "CANCELLED"
        assert by_vobject[booked.appointments[2].calendar_uid].description.value == (
            "Visit 3 of 4 of a weekly course.")
        assert "weekly course" not in str(by_icalendar[single.calendar_uid].get("DESCRIPTION", ""))
        for private in ("pat@example.com", "586 555 0123", "Pat Q. Example", "Sore knee"):
            assert private not in response.text


@pytest.mark.parametrize("escape_at", range(70, 80))
def test_content_lines_are_folded_as_icalendar_folds_them(escape_at):
    """The .ics writer's folding (sliced for ASCII lines) is icalendar's: pieces under 75
    octets, an escape never split from what it escapes, and other scripts by their octets."""
    from icalendar.parser import Contentline

    from booking.calendars.ical import _folded

    lines = [
        "DESCRIPTION:" + "x" * length for length in (0, 61, 62, 63, 64, 140, 300)
    ] + [
        # an escape ("\," "\;" "\n", or RFC 6868's "^") at every place near a fold
        "LOCATION:" + "a" * (escape_at - 9) + escape + "b" * 90
        for escape in ("\\,", "\\;", "\\n", "\\\\", "^n", "^^")
    ] + [
        "SUMMARY:" + "\\," * 80,
        "SUMMARY:" + "^^" * 80,
        "SUMMARY:Evaluación de fisioterapia con " + "Ñ" * 60,
        "SUMMARY:" + "تقييم العلاج الطبيعي " * 6,
    ]
    for line in lines:
        assert _folded(line) == Contentline(line).to_ical().decode(), line
        assert all(len(piece.encode()) < 75 for piece in _folded(line).split("\r\n "))
