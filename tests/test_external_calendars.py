"""A therapist's own calendar (hospital rota, personal) blocks online booking where it is busy.

The calendar is served over HTTP by a small server in the test, as a hospital's would be.
"""

from __future__ import annotations

import contextlib
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from booking.calendars.busy_calendars import (
    ExternalCalendarError,
    add_calendar_by_url,
    add_calendar_upload,
    calendars_of,
    refresh_external_calendars,
    remove_calendar,
)
from booking.extensions import db
from booking.models import ExternalBusyTime, ExternalCalendar, Therapist
from booking.notifications import periodic_work
from tests.conftest import next_weekday
from tests.servers import serving_in_a_thread

WEEK_1 = next_weekday(0, at_least_days=7)  # a Monday
WEEK_2 = WEEK_1 + timedelta(days=7)
WEEK_3 = WEEK_1 + timedelta(days=14)


def stamp(day: date, hour: int, minute: int = 0) -> str:
    return f"{day:%Y%m%d}T{hour:02d}{minute:02d}00"


def rota(extra: str = "") -> bytes:
    """The hospital rota: a weekly meeting (one week skipped, one moved), a meeting set in
    Chicago time, and two events marked free (one all day) that must not block anything."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Hospital//Rota//EN",
        "BEGIN:VTIMEZONE",
        "TZID:America/Detroit",
        "BEGIN:DAYLIGHT",
        "DTSTART:20070311T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
        "TZOFFSETFROM:-0500",
        "TZOFFSETTO:-0400",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "DTSTART:20071104T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
        "TZOFFSETFROM:-0400",
        "TZOFFSETTO:-0500",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "UID:team-meeting@hospital.example",
        "DTSTAMP:20260101T000000Z",
        "SUMMARY:Team meeting",
        f"DTSTART;TZID=America/Detroit:{stamp(WEEK_1, 10)}",
        f"DTEND;TZID=America/Detroit:{stamp(WEEK_1, 11)}",
        "RRULE:FREQ=WEEKLY;COUNT=4",
        f"EXDATE;TZID=America/Detroit:{stamp(WEEK_2, 10)}",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:team-meeting@hospital.example",
        "DTSTAMP:20260101T000000Z",
        "SUMMARY:Team meeting (moved)",
        f"RECURRENCE-ID;TZID=America/Detroit:{stamp(WEEK_3, 10)}",
        f"DTSTART;TZID=America/Detroit:{stamp(WEEK_3, 14)}",
        f"DTEND;TZID=America/Detroit:{stamp(WEEK_3, 15)}",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:chicago-call@hospital.example",
        "DTSTAMP:20260101T000000Z",
        "SUMMARY:Call with Chicago",
        f"DTSTART;TZID=America/Chicago:{stamp(WEEK_2, 8)}",
        f"DTEND;TZID=America/Chicago:{stamp(WEEK_2, 8, 30)}",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:conference@hospital.example",
        "DTSTAMP:20260101T000000Z",
        "SUMMARY:Conference (working from the clinic)",
        f"DTSTART;VALUE=DATE:{WEEK_1:%Y%m%d}",
        f"DTEND;VALUE=DATE:{WEEK_1 + timedelta(days=1):%Y%m%d}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:reminder@hospital.example",
        "DTSTAMP:20260101T000000Z",
        "SUMMARY:Reminder to call the pharmacy",
        f"DTSTART;TZID=America/Detroit:{stamp(WEEK_1, 8)}",
        f"DTEND;TZID=America/Detroit:{stamp(WEEK_1, 9)}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        *([extra] if extra else []),
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


# The rota blocks exactly these 15-minute slot starts (clinic time) on Alex's Mondays.
BLOCKED = {
    WEEK_1: {"10:00", "10:15", "10:30", "10:45"},
    WEEK_2: {"09:00", "09:15"},  # 08:00-08:30 in Chicago
    WEEK_3: {"14:00", "14:15", "14:30", "14:45"},
}
ALEX_MONDAY = [f"{hour:02d}:{minute:02d}" for hour in (8, 9, 10, 11, 13, 14, 15, 16)
               for minute in (0, 15, 30, 45)]


class CalendarSource:
    """What the test's HTTP server serves, and what it was asked."""

    def __init__(self):
        self.body = rota()
        self.status = 200
        self.etag = '"v1"'
        self.delay = 0.0
        self.requests: list[dict] = []


@pytest.fixture
def source():
    served = CalendarSource()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            served.requests.append(dict(self.headers))
            time.sleep(served.delay)
            if served.status != 200:
                self.send_response(served.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == served.etag:
                self.send_response(304)
                self.send_header("ETag", served.etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("ETag", served.etag)
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            # The app gives up on a slow or oversized answer, as it should.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(served.body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving_in_a_thread(server):
        served.url = f"http://127.0.0.1:{server.server_port}/rota.ics"
        yield served


@pytest.fixture
def local_sources_allowed(app_settings):
    """The test's server is on loopback: allow it, as a clinic may for its own network."""
    app_settings["EXTERNAL_CALENDAR_ALLOW_PRIVATE_ADDRESSES"] = True


def alex() -> Therapist:
    return db.session.scalars(select(Therapist).where(Therapist.slug == "alex-rivera")).one()


def free_mondays(client) -> dict[date, set[str]]:
    """Alex's free Schedule-a-call starts on the three Mondays, through the public API."""
    response = client.get(
        "/api/v1/availability",
        query_string={
            "service": "schedule-a-call",
            "therapist": "alex-rivera",
            "start": WEEK_1.isoformat(),
            "end": WEEK_3.isoformat(),
        },
    )
    assert response.status_code == 200, response.json
    free: dict[date, set[str]] = {WEEK_1: set(), WEEK_2: set(), WEEK_3: set()}
    for slot in response.json["slots"]:
        day, clock = slot["start"][:10], slot["start"][11:16]
        if date.fromisoformat(day) in free:
            free[date.fromisoformat(day)].add(clock)
    return free


def expected_free(blocked: dict[date, set[str]]) -> dict[date, set[str]]:
    return {day: set(ALEX_MONDAY) - blocked.get(day, set()) for day in (WEEK_1, WEEK_2, WEEK_3)}


# --- the stories -----------------------------------------------------------------------------


@pytest.mark.usefixtures("local_sources_allowed")
def test_a_hospital_rota_blocks_exactly_its_busy_times(client, clinic, source):
    assert free_mondays(client) == expected_free({})

    calendar = add_calendar_by_url(alex(), source.url, name="Hospital rota")
    db.session.commit()

    assert free_mondays(client) == expected_free(BLOCKED)
    assert (calendar.name, calendar.last_error, calendar.etag) == ("Hospital rota", "", '"v1"')
    assert [c.name for c in calendars_of(alex())] == ["Hospital rota"]
    # Jamie's Mondays are untouched by Alex's rota.
    jamie = client.get("/api/v1/availability", query_string={
        "service": "schedule-a-call", "therapist": "jamie-lee",
        "start": WEEK_1.isoformat(), "end": WEEK_1.isoformat()})
    assert "10:00" in {slot["start"][11:16] for slot in jamie.json["slots"]}


@pytest.mark.usefixtures("local_sources_allowed")
def test_a_refresh_asks_conditionally_and_a_failing_source_keeps_its_last_good_copy(
    client, clinic, source
):
    add_calendar_by_url(alex(), source.url, name="Hospital rota")
    db.session.commit()

    unchanged = refresh_external_calendars()
    assert (unchanged.changed, unchanged.unchanged, unchanged.failed) == (0, 1, 0)
    assert source.requests[-1]["If-None-Match"] == '"v1"'

    source.status = 500
    failed = refresh_external_calendars()
    db.session.rollback()
    [calendar] = calendars_of(alex())
    assert (failed.changed, failed.unchanged, failed.failed) == (0, 0, 1)
    assert calendar.last_error == "the server answered 500 Internal Server Error"
    assert free_mondays(client) == expected_free(BLOCKED)

    source.status, source.etag, source.body = 200, '"login-page"', b"<html>Sign in</html>"
    assert refresh_external_calendars().failed == 1
    db.session.rollback()
    assert calendars_of(alex())[0].last_error.startswith("not an iCalendar (.ics) file")
    assert calendars_of(alex())[0].etag == '"v1"'
    assert free_mondays(client) == expected_free(BLOCKED)

    source.status = 200
    source.etag = '"v2"'
    source.body = rota(
        "\r\n".join([
            "BEGIN:VEVENT", "UID:new@hospital.example", "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID=America/Detroit:{stamp(WEEK_1, 16)}",
            f"DTEND;TZID=America/Detroit:{stamp(WEEK_1, 16, 20)}",
            "END:VEVENT",
        ])
    )
    changed = refresh_external_calendars()
    db.session.rollback()
    assert (changed.changed, changed.failed) == (1, 0)
    assert calendars_of(alex())[0].last_error == ""
    assert free_mondays(client) == expected_free(
        {**BLOCKED, WEEK_1: BLOCKED[WEEK_1] | {"16:00", "16:15"}}
    )


def test_an_uploaded_file_blocks_the_same_times_and_can_be_removed(client, clinic):
    calendar = add_calendar_upload(alex(), rota(), name="  My   calendar ")
    db.session.commit()

    assert calendar.name == "My calendar"
    assert free_mondays(client) == expected_free(BLOCKED)

    remove_calendar(calendar)
    db.session.commit()
    assert free_mondays(client) == expected_free({})
    assert db.session.scalar(select(func.count()).select_from(ExternalBusyTime)) == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:9/rota.ics", "on this machine or a private network"),
        ("http://localhost:9/rota.ics", "on this machine or a private network"),
        ("http://[::1]:9/rota.ics", "on this machine or a private network"),
        ("http://10.1.2.3/rota.ics", "on this machine or a private network"),
        ("http://169.254.169.254/latest/meta-data", "on this machine or a private network"),
        ("http://[64:ff9b::7f00:1]/rota.ics", "on this machine or a private network"),
        ("http://[64:ff9b:1::a01:203]/rota.ics", "on this machine or a private network"),
        ("http://[2002:7f00:1::]/rota.ics", "on this machine or a private network"),
        ("http://[::ffff:10.1.2.3]/rota.ics", "on this machine or a private network"),
        ("http://224.0.0.1/rota.ics", "on this machine or a private network"),
        ("http://[ff02::1]/rota.ics", "on this machine or a private network"),
        ("file:rota.ics", "only http:// and https://"),
        ("ftp://calendar.example/rota.ics", "only http:// and https://"),
        ("https://user:secret@calendar.example/rota.ics", "user name or password"),
        ("", "address is missing"),
    ],
)
def test_addresses_that_may_not_be_fetched_are_refused_and_nothing_is_added(
    clinic, url, message
):
    with pytest.raises(ExternalCalendarError) as refused:
        add_calendar_by_url(alex(), url, name="Sneaky")

    assert refused.value.field == "url"
    assert message in refused.value.message
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ExternalCalendar)) == 0


@pytest.mark.usefixtures("local_sources_allowed")
def test_sources_too_big_too_slow_or_not_calendars_are_refused(app, clinic, source):
    app.config["EXTERNAL_CALENDAR_MAX_BYTES"] = 1000
    with pytest.raises(ExternalCalendarError, match="over 1,000 bytes"):
        add_calendar_by_url(alex(), source.url)
    app.config["EXTERNAL_CALENDAR_MAX_BYTES"] = 1_000_000

    source.body = b"<html>Sign in to see this calendar</html>"
    with pytest.raises(ExternalCalendarError, match="not an iCalendar"):
        add_calendar_by_url(alex(), source.url)

    app.config["EXTERNAL_CALENDAR_TIMEOUT_SECONDS"] = 0.3
    source.delay = 1.0
    started = time.monotonic()
    with pytest.raises(ExternalCalendarError, match="took too long"):
        add_calendar_by_url(alex(), source.url)
    assert time.monotonic() - started < 1.0

    every_minute = rota("\r\n".join([
        "BEGIN:VEVENT", "UID:flood@x", "DTSTAMP:20260101T000000Z",
        f"DTSTART:{stamp(WEEK_1, 8)}", f"DTEND:{stamp(WEEK_1, 8, 1)}", "RRULE:FREQ=MINUTELY",
        "END:VEVENT",
    ]))
    app.config["EXTERNAL_CALENDAR_MAX_EVENTS"] = 500
    with pytest.raises(ExternalCalendarError, match="over 500 events"):
        add_calendar_upload(alex(), every_minute, name="Flood")

    with pytest.raises(ExternalCalendarError) as not_ics:
        add_calendar_upload(alex(), b"BEGIN:VCARD\r\nEND:VCARD\r\n", name="Card")
    assert not_ics.value.field == "file"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ExternalCalendar)) == 0


def test_the_scheduler_refreshes_external_calendars_every_15_minutes(app):
    [work] = [w for w in periodic_work.PERIODIC_WORK if w.run is refresh_external_calendars]
    assert app.config[work.interval_setting] == 15 * 60


def test_busy_times_are_in_the_clinic_zone_for_floating_and_all_day_events(client, clinic):
    extra = "\r\n".join([
        "BEGIN:VEVENT", "UID:floating@x", "DTSTAMP:20260101T000000Z",
        f"DTSTART:{stamp(WEEK_2, 11)}", f"DTEND:{stamp(WEEK_2, 11, 30)}",
        "END:VEVENT",
        "BEGIN:VEVENT", "UID:away@x", "DTSTAMP:20260101T000000Z",
        f"DTSTART;VALUE=DATE:{WEEK_3:%Y%m%d}", "SUMMARY:Away all day (busy)",
        "END:VEVENT",
    ])
    add_calendar_upload(alex(), rota(extra), name="Personal")
    db.session.commit()

    assert free_mondays(client) == {
        **expected_free({**BLOCKED, WEEK_2: BLOCKED[WEEK_2] | {"11:00", "11:15"}}),
        WEEK_3: set(),
    }


@pytest.mark.usefixtures("local_sources_allowed")
def test_a_refresh_that_finds_a_flood_since_1900_fails_at_once_and_keeps_the_last_copy(
    client, clinic, source
):
    add_calendar_by_url(alex(), source.url, name="Hospital rota")
    db.session.commit()
    source.etag = '"flood"'
    source.body = rota("\r\n".join([
        "BEGIN:VEVENT", "UID:flood@x", "DTSTAMP:20260101T000000Z",
        "DTSTART:19000101T000000Z", "DTEND:19000101T000100Z", "RRULE:FREQ=MINUTELY",
        "END:VEVENT",
    ]))

    started = time.monotonic()
    report = refresh_external_calendars()
    took = time.monotonic() - started
    db.session.rollback()

    assert took < 10.0  # it took minutes, holding the scheduler, before
    assert (report.changed, report.failed) == (0, 1)
    [calendar] = calendars_of(alex())
    assert calendar.last_error == (
        "one repeating event has over 5,000 occurrences in the coming months")
    assert free_mondays(client) == expected_free(BLOCKED)


def test_a_file_of_more_events_than_are_read_is_refused_before_it_is_parsed(app, clinic):
    app.config["EXTERNAL_CALENDAR_MAX_EVENTS_IN_FILE"] = 4

    with pytest.raises(ExternalCalendarError) as refused:
        add_calendar_upload(alex(), rota(), name="Rota")

    assert (refused.value.field, refused.value.message) == (
        "file", "it holds 5 events; at most 4 are read")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ExternalCalendar)) == 0
