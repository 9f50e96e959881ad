"""Busy calendars in the back office: the front desk (or the therapist themself) adds a
hospital rota by its address or as a file, and its busy times leave the public availability;
a failing source says so and its last good copy keeps blocking."""

from __future__ import annotations

import contextlib
import io
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from booking.extensions import db
from booking.models import AuditEntry, ExternalCalendar, Therapist
from tests.conftest import CLINIC_ZONE, next_weekday
from tests.desk_staff import signed_in, staff_logins
from tests.servers import serving_in_a_thread

MONDAY = next_weekday(0, at_least_days=7)
# Alex works 08:00-12:00 and 13:00-17:00 on Mondays; Schedule a call takes 15-minute starts.
ALEX_MONDAY = {f"{hour:02d}:{minute:02d}" for hour in (8, 9, 10, 11, 13, 14, 15, 16)
               for minute in (0, 15, 30, 45)}
TEN_TO_ELEVEN = {"10:00", "10:15", "10:30", "10:45"}
TWO_TO_THREE = {"14:00", "14:15", "14:30", "14:45"}


def rota(hour: int = 10) -> bytes:
    """A hospital rota: a ward round from `hour` for an hour on MONDAY, clinic time, and a
    lunch marked free that blocks nothing."""
    day = f"{MONDAY:%Y%m%d}"
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Hospital//Rota//EN",
        "BEGIN:VEVENT", "UID:ward-round@hospital.example", "DTSTAMP:20260101T000000Z",
        "SUMMARY:Ward round",
        f"DTSTART;TZID=America/Detroit:{day}T{hour:02d}0000",
        f"DTEND;TZID=America/Detroit:{day}T{hour + 1:02d}0000",
        "END:VEVENT",
        "BEGIN:VEVENT", "UID:lunch@hospital.example", "DTSTAMP:20260101T000000Z",
        "SUMMARY:Lunch", f"DTSTART;TZID=America/Detroit:{day}T080000",
        f"DTEND;TZID=America/Detroit:{day}T090000", "TRANSP:TRANSPARENT", "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


class Source:
    """What the test's calendar server answers."""

    def __init__(self):
        self.body = rota()
        self.status = 200
        self.url = ""


@pytest.fixture
def source(app_settings):
    """A hospital's calendar server, on loopback: allowed, as a clinic may for its network.
    List it before `app` (or anything that builds the app)."""
    app_settings["EXTERNAL_CALENDAR_ALLOW_PRIVATE_ADDRESSES"] = True
    served = Source()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            body = served.body if served.status == 200 else b""
            self.send_response(served.status)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving_in_a_thread(server):
        # The secret part of a private calendar address: never shown on the page.
        served.url = f"http://127.0.0.1:{server.server_port}/private/rota.ics?key=s3cret-key"
        yield served


@pytest.fixture
def staff(clinic):
    return staff_logins()


@pytest.fixture
def desk(app, staff):
    return signed_in(app, staff["front_desk"])


ALEX = "/desk/therapists/alex-rivera/busy-calendars"
JAMIE = "/desk/therapists/jamie-lee/busy-calendars"


def free_on_monday(client) -> set[str]:
    """Alex's free Schedule-a-call starts on MONDAY, through the public API."""
    answer = client.get("/api/v1/availability", query_string={
        "service": "schedule-a-call", "therapist": "alex-rivera",
        "start": MONDAY.isoformat(), "end": MONDAY.isoformat()})
    assert answer.status_code == 200, answer.json
    return {slot["start"][11:16] for slot in answer.json["slots"]}


def upload(client, url: str, data: bytes, filename: str = "Hospital rota.ics", **fields):
    return client.post(
        url, data={"file": (io.BytesIO(data), filename), **fields},
        content_type="multipart/form-data",
    )


def calendars() -> list[ExternalCalendar]:
    db.session.rollback()
    return list(db.session.scalars(select(ExternalCalendar).order_by(ExternalCalendar.id)))


def text(answer) -> str:
    return answer.get_data(as_text=True)


# --- the stories ---------------------------------------------------------------------------


def test_front_desk_adds_a_rota_by_its_address_and_its_busy_times_leave_availability(
    source, app, desk
):
    public = app.test_client()
    assert free_on_monday(public) == ALEX_MONDAY
    assert "None yet" in text(desk.get(ALEX))

    refused = desk.post(f"{ALEX}/by-url", data={"url": "ftp://hospital.example/rota.ics"})
    assert refused.status_code == 422
    assert ("Calendar address (ICS URL): only http:// and https:// calendar addresses are "
            "accepted") in text(refused)
    assert calendars() == []

    added = desk.post(f"{ALEX}/by-url", data={"url": source.url, "name": "Hospital rota"})
    assert added.status_code == 303
    assert added.headers["Location"] == ALEX
    page = text(desk.get(ALEX))
    assert "Added Hospital rota: 1 busy time(s) in the coming 4 weeks." in page
    row = re.search(r"<td>Hospital rota</td>\s*<td>([^<]*)</td>", page)
    assert row.group(1) == "127.0.0.1"  # the host only: the rest of the address is a secret
    assert "s3cret-key" not in page
    assert "private/rota.ics" not in page

    assert free_on_monday(public) == ALEX_MONDAY - TEN_TO_ELEVEN
    [entry] = db.session.scalars(select(AuditEntry)).all()
    alex_id = db.session.scalars(
        select(Therapist.id).where(Therapist.slug == "alex-rivera")).one()
    assert (entry.action, entry.actor, entry.therapist_id) == (
        "busy_calendar_added", "staff:desk@clinic.example", alex_id)
    assert entry.details == {"calendar": "Hospital rota", "source": "127.0.0.1",
                             "therapist": "alex-rivera"}
    # The schedule page leads here.
    assert f'href="{ALEX}"' in text(desk.get("/desk/therapists/alex-rivera/schedule"))


def test_an_upload_blocks_a_file_that_is_no_calendar_is_refused_and_both_can_be_undone(
    app, desk
):
    public = app.test_client()
    added = upload(desk, f"{ALEX}/upload", rota(10))
    assert added.status_code == 303
    [calendar] = calendars()
    assert (calendar.name, calendar.is_upload) == ("Hospital rota", True)
    assert "<td>uploaded file</td>" in text(desk.get(ALEX))
    assert free_on_monday(public) == ALEX_MONDAY - TEN_TO_ELEVEN

    refused = upload(desk, f"{ALEX}/upload", b"<html>Sign in</html>", "rota.ics")
    assert refused.status_code == 422
    assert "Calendar file (.ics): not an iCalendar (.ics) file" in text(refused)
    assert len(calendars()) == 1
    nothing = desk.post(f"{ALEX}/upload", data={"name": "No file"},
                        content_type="multipart/form-data")
    assert nothing.status_code == 422
    assert "Calendar file (.ics): choose an .ics file" in text(nothing)

    replace = f"{ALEX}/{calendar.id}/replace"
    assert "A newer copy of the uploaded file" in text(desk.get(replace))
    bad_copy = upload(desk, replace, b"BEGIN:VCALENDAR\r\nnonsense", "rota.ics")
    assert bad_copy.status_code == 422
    assert "Calendar file (.ics):" in text(bad_copy)
    assert free_on_monday(public) == ALEX_MONDAY - TEN_TO_ELEVEN
    assert upload(desk, replace, rota(14)).status_code == 303
    assert free_on_monday(public) == ALEX_MONDAY - TWO_TO_THREE

    remove = f"{ALEX}/{calendar.id}/remove"
    confirm = text(desk.get(remove))
    assert "Remove Hospital rota?" in confirm
    assert f'action="{remove}"' in confirm
    assert free_on_monday(public) == ALEX_MONDAY - TWO_TO_THREE  # asking removes nothing
    assert desk.post(remove).status_code == 303
    assert calendars() == []
    assert free_on_monday(public) == ALEX_MONDAY
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["busy_calendar_added", "busy_calendar_replaced", "busy_calendar_removed"]


def test_a_failing_source_shows_its_error_and_its_last_good_copy_still_blocks(
    source, app, desk
):
    public = app.test_client()
    assert desk.post(f"{ALEX}/by-url", data={"url": source.url}).status_code == 303
    [calendar] = calendars()
    good_copy = calendar.succeeded_at

    source.status = 500
    refreshed = desk.post(f"{ALEX}/{calendar.id}/refresh")
    assert refreshed.status_code == 303
    page = text(desk.get(ALEX))
    when = f"{good_copy.astimezone(CLINIC_ZONE):%a %d %b %Y %H:%M}"
    assert ("127.0.0.1 could not be refreshed: the server answered 500 Internal Server "
            f"Error. It keeps using the copy from {when}.") in page
    assert ("127.0.0.1 is failing: the server answered 500 Internal Server Error. "
            f"Using the copy from {when}.") in page
    assert free_on_monday(public) == ALEX_MONDAY - TEN_TO_ELEVEN

    source.status, source.body = 200, rota(14)
    assert desk.post(f"{ALEX}/{calendar.id}/refresh").status_code == 303
    page = text(desk.get(ALEX))
    assert "Refreshed 127.0.0.1: it changed; 1 busy time(s) in the coming 4 weeks." in page
    assert "is failing" not in page
    assert free_on_monday(public) == ALEX_MONDAY - TWO_TO_THREE


def test_a_therapist_manages_their_own_calendars_and_cannot_touch_anothers(app, staff, desk):
    assert upload(desk, f"{JAMIE}/upload", rota(), "Jamie's rota.ics").status_code == 303
    [jamies] = calendars()
    alex = signed_in(app, staff["therapist"])

    assert alex.get(JAMIE).status_code == 403
    for url in (f"{JAMIE}/{jamies.id}/replace", f"{JAMIE}/{jamies.id}/remove",
                f"{ALEX}/{jamies.id}/replace", f"{ALEX}/{jamies.id}/remove"):
        assert alex.get(url).status_code == 403, url
    for url in (f"{JAMIE}/{jamies.id}/refresh", f"{JAMIE}/{jamies.id}/remove",
                f"{ALEX}/{jamies.id}/refresh", f"{ALEX}/{jamies.id}/remove"):
        assert alex.post(url).status_code == 403, url
    assert upload(alex, f"{JAMIE}/upload", rota()).status_code == 403
    assert upload(alex, f"{ALEX}/{jamies.id}/replace", rota(14)).status_code == 403
    assert alex.post(f"{JAMIE}/by-url", data={"url": "https://x.example/a.ics"}).status_code \
        == 403
    assert [(c.name, c.event_count) for c in calendars()] == [("Jamie's rota", 1)]

    assert upload(alex, f"{ALEX}/upload", rota(), "My hospital.ics").status_code == 303
    page = text(alex.get(ALEX))
    assert "My hospital" in page
    assert "Jamie&#39;s rota" not in page
    assert free_on_monday(app.test_client()) == ALEX_MONDAY - TEN_TO_ELEVEN
    mine = calendars()[-1]
    assert alex.post(f"{ALEX}/{mine.id}/remove").status_code == 303
    assert [c.name for c in calendars()] == ["Jamie's rota"]
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.actor) for e in entries] == [
        ("busy_calendar_added", "staff:desk@clinic.example"),
        ("busy_calendar_added", "staff:alex@clinic.example"),
        ("busy_calendar_removed", "staff:alex@clinic.example"),
    ]


@pytest.fixture
def csrf_and_a_small_limit(app_settings):
    app_settings["WTF_CSRF_ENABLED"] = True
    app_settings["EXTERNAL_CALENDAR_MAX_BYTES"] = 100_000


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def _padded_rota(size: int) -> bytes:
    """The rota, made `size` bytes long by a long description (folded at 75 octets)."""
    body = rota()
    filler = size - len(body)
    description = "DESCRIPTION:" + "x" * 60
    lines = [description] + [" " + "x" * 74] * ((filler - len(description)) // 77)
    return body.replace(b"SUMMARY:Ward round\r\n",
                        b"SUMMARY:Ward round\r\n" + "\r\n".join(lines).encode() + b"\r\n")


@pytest.mark.usefixtures("csrf_and_a_small_limit")
def test_uploads_carry_their_token_and_are_held_to_the_calendar_size_limit(app, staff):
    desk = signed_in(app, staff["front_desk"])
    token = _csrf_token(text(desk.get(ALEX)))
    bigger_than_a_json_body = _padded_rota(90_000)  # over the app's 64 KiB request limit
    assert len(bigger_than_a_json_body) > app.config["MAX_CONTENT_LENGTH"]

    forged = upload(desk, f"{ALEX}/upload", bigger_than_a_json_body)
    assert forged.status_code == 400
    assert calendars() == []

    added = upload(desk, f"{ALEX}/upload", bigger_than_a_json_body, csrf_token=token)
    assert added.status_code == 303
    [calendar] = calendars()
    assert calendar.name == "Hospital rota"
    for forged_change in (upload(desk, f"{ALEX}/{calendar.id}/replace", rota(14)),
                          desk.post(f"{ALEX}/{calendar.id}/refresh"),
                          desk.post(f"{ALEX}/{calendar.id}/remove")):
        assert forged_change.status_code == 400
    assert [c.content for c in calendars()] == [bigger_than_a_json_body]

    too_big = upload(desk, f"{ALEX}/upload", _padded_rota(120_000), csrf_token=token)
    assert too_big.status_code == 422
    assert "Calendar file (.ics): the file is 1" in text(too_big)
    assert "at most 100,000 are accepted" in text(too_big)
    far_too_big = upload(desk, f"{ALEX}/upload", _padded_rota(400_000), csrf_token=token)
    assert far_too_big.status_code == 413
    assert ("Calendar file (.ics): the file is too big; at most 100,000 bytes are accepted"
            in text(far_too_big))
    assert len(calendars()) == 1


@pytest.mark.parametrize(("name", "status", "message"), [
    # A NUL is refused before any view runs, in any form however encoded.
    ("Rota\x00night", 400, "name: must not contain a NUL character"),
    ("Rota\r\nBcc: x@example.com", 422,
     "The calendar&#39;s name must be one line, without control characters."),
])
def test_a_calendar_name_with_control_characters_is_refused_naming_it(
    app, desk, name, status, message
):
    refused = upload(desk, f"{ALEX}/upload", rota(10), name=name)
    assert refused.status_code == status
    assert message in text(refused)
    assert calendars() == []


# --- calendars whose rules reach far back (issue 11: a 161-byte file stalled a worker) --------


def series(start: str, rule: str, end: str = "") -> bytes:
    """A calendar of one repeating event."""
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Probe//EN",
        "BEGIN:VEVENT", "UID:series@probe.example", "DTSTAMP:20260101T000000Z",
        f"DTSTART{start}", *([f"DTEND{end}"] if end else []), f"RRULE:{rule}",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def timed_upload(client, data: bytes):
    """The upload's answer and how long it took: well under a worker's 30-second timeout."""
    started = time.monotonic()
    answer = upload(client, f"{ALEX}/upload", data, "Probe.ics")
    return answer, time.monotonic() - started


# Each of these took from 30 seconds to over a minute before; now well under a second.
QUICK = 10.0


def test_a_daily_series_since_1900_is_read_for_the_coming_months_only(app, desk):
    added, took = timed_upload(
        desk, series(";TZID=America/Detroit:19000101T090000", "FREQ=DAILY",
                     ";TZID=America/Detroit:19000101T100000"))

    assert added.status_code == 303
    assert took < QUICK
    [calendar] = calendars()
    assert 399 <= calendar.event_count <= 402  # one a day over the 400-day horizon
    assert free_on_monday(app.test_client()) == ALEX_MONDAY - {
        "09:00", "09:15", "09:30", "09:45"}


def test_a_series_with_a_count_since_1990_blocks_only_what_is_left_of_it(app, desk):
    # Every Monday and Wednesday at 14:00 since 1 January 1990 (a Monday), 5,000 times:
    # about 48 years' worth, so it still runs in the coming months.
    added, took = timed_upload(
        desk, series(";TZID=America/Detroit:19900101T140000",
                     "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5000",
                     ";TZID=America/Detroit:19900101T150000"))

    assert added.status_code == 303
    assert took < QUICK
    assert free_on_monday(app.test_client()) == ALEX_MONDAY - TWO_TO_THREE


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        (series(":19000101T000000Z", "FREQ=MINUTELY", ":19000101T000100Z"),
         "one repeating event has over 5,000 occurrences in the coming months"),
        (series(":19700101T000000Z", "FREQ=SECONDLY"),
         "one repeating event has over 5,000 occurrences in the coming months"),
        (series(":00010101T000000Z", "FREQ=HOURLY", ":00010101T003000Z"),
         "one repeating event has over 5,000 occurrences in the coming months"),
        (series(":19000101T000000Z", "FREQ=YEARLY;BYMONTHDAY={};BYHOUR={};BYMINUTE={};"
                "BYSECOND={}".format(*(",".join(map(str, range(first, last)))
                                       for first, last in ((1, 32), (0, 24), (0, 60), (0, 60))))),
         "a repeating event lists 2,678,400 combinations of days and times in its rule; "
         "at most 1,000 are read"),
        (series(":00010101T090000", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=5"),
         "a repeating event with COUNT starts over 100 years before the coming months"),
    ],
    ids=["minutely-1900", "secondly-1970", "hourly-year-1", "yearly-long-lists",
         "count-never-matching"],
)
def test_a_series_that_floods_the_coming_months_is_refused_at_once_saying_why(
    app, desk, probe, message
):
    refused, took = timed_upload(desk, probe)

    assert refused.status_code == 422
    assert took < QUICK
    assert f"Calendar file (.ics): {message}" in text(refused)
    assert calendars() == []


def test_two_thousand_daily_rules_since_1900_are_refused_by_their_total(app, desk):
    events = []
    for number in range(2000):
        events += [
            "BEGIN:VEVENT", f"UID:rule-{number}@probe.example", "DTSTAMP:20260101T000000Z",
            f"DTSTART:19000101T{number % 24:02d}0000Z", f"DTEND:19000101T{number % 24:02d}3000Z",
            f"RRULE:FREQ=DAILY;INTERVAL={number % 7 + 1}", "END:VEVENT",
        ]
    data = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Probe//EN", *events,
                        "END:VCALENDAR"]).encode() + b"\r\n"
    assert len(data) > 240_000

    refused, took = timed_upload(desk, data)

    assert refused.status_code == 422
    assert took < QUICK
    assert "it has over 20,000 events in the coming months" in text(refused)
    assert calendars() == []


@pytest.fixture
def no_time_to_read(app_settings):
    app_settings["EXTERNAL_CALENDAR_READ_SECONDS_IN_REQUEST"] = 0.0


@pytest.mark.usefixtures("no_time_to_read")
def test_a_calendar_that_takes_longer_than_a_request_may_spend_is_refused(app, desk):
    refused, _ = timed_upload(
        desk, series(";TZID=America/Detroit:19000101T090000", "FREQ=DAILY",
                     ";TZID=America/Detroit:19000101T100000"))

    assert refused.status_code == 422
    assert ("Calendar file (.ics): it takes over 0 seconds to read; a calendar of the coming "
            "months is read in far less") in text(refused)
    assert calendars() == []
