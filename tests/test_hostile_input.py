"""Hostile input, from the API, the patient's form, the back office and the clinic file:
too big, too deep, odd characters, header and HTML injection, path traversal.

Whatever arrives, the answer is a 4xx naming the field (nothing written), or the value is
stored as sent and shown escaped. Never a 500, never a mail header of the sender's choosing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2 import TemplateNotFound
from sqlalchemy import func, select

from booking.calendars.feed_tokens import feed_token_for
from booking.clinic.clinic_file import ClinicFileError, parse_clinic_file
from booking.extensions import db
from booking.models import Appointment, Notification, Patient, utc_now
from booking.notifications.dispatcher import DispatchReport, send_due
from booking.notifications.messages import mail_templates
from booking.patients.manage_links import manage_token_for
from tests.conftest import local, next_weekday
from tests.desk_staff import signed_in, staff_logins

MONDAY = next_weekday(0)
CLINIC_FILE = Path(__file__).parent / "clinic.toml"
HEADER_INJECTION = "Pat Example\r\nBcc: intruder@example.net"


def api_booking(hour: int = 9, notes: str = "", **patient) -> dict:
    return {
        "service": "schedule-a-call",
        "start": local(MONDAY, hour).isoformat(),
        "therapist": "alex-rivera",
        # A call: the clinic needs a number to call.
        "patient": {"name": "Pat Example", "email": "pat@example.com",
                    "phone": "+1 586 555 0199", **patient},
        "notes": notes,
    }


def visit_form(hour: int = 9, **overrides) -> dict:
    return {
        "start": local(MONDAY, hour).isoformat(), "therapist": "alex-rivera", "visit_for": "me",
        "name": "Pat Example", "email": "pat@example.com", "phone": "+1 586 555 0199",
        "note": "", "website": "", **overrides,
    }


def desk_booking(hour: int = 9, **overrides) -> dict:
    return {
        "name": "Pat Example", "email": "pat@example.com", "phone": "+1 586 555 0199",
        "service": "schedule-a-call", "therapist": "alex-rivera",
        "day": MONDAY.isoformat(), "time": f"{hour:02d}:00", **overrides,
    }


def stored_rows() -> tuple[int, int, int]:
    db.session.rollback()  # see what the request wrote
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Appointment, Patient, Notification)
    )


def post_json(client, url: str, raw: str | bytes, **headers):
    return client.post(url, data=raw, content_type="application/json", headers=headers)


# --- too big, too deep ---------------------------------------------------------------------


@pytest.mark.usefixtures("clinic")
def test_an_oversized_api_body_is_refused_with_413_and_books_nothing(app, client):
    body = json.dumps(api_booking(notes="x" * app.config["MAX_CONTENT_LENGTH"]))
    answer = post_json(client, "/api/v1/appointments", body)
    assert answer.status_code == 413
    assert answer.json["error"]["code"] == "payload_too_large"
    assert stored_rows() == (0, 0, 0)


@pytest.mark.usefixtures("clinic")
def test_an_oversized_patient_form_is_refused_with_413_and_books_nothing(app, client):
    form = visit_form(note="x" * app.config["MAX_CONTENT_LENGTH"])
    answer = client.post("/book/schedule-a-call/details", data=form)
    assert answer.status_code == 413
    assert stored_rows() == (0, 0, 0)


@pytest.mark.usefixtures("clinic")
def test_an_oversized_back_office_form_is_refused_with_413_and_books_nothing(app):
    desk = signed_in(app, staff_logins()["front_desk"])
    form = desk_booking(notes="x" * app.config["MAX_CONTENT_LENGTH"])
    answer = desk.post("/desk/book", data=form)
    assert answer.status_code == 413
    assert stored_rows() == (0, 0, 0)


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize(
    "raw",
    [
        "[" * 20_000 + "]" * 20_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        '{"service": "schedule-a-call", "patient": ' + '{"name":' * 5_000 + '"x"' + "}" * 5_000,
    ],
    ids=["arrays", "objects", "inside-a-booking"],
)
def test_deeply_nested_json_is_refused_with_400_and_books_nothing(client, raw):
    answer = post_json(client, "/api/v1/appointments", raw)
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "malformed_json"
    assert stored_rows() == (0, 0, 0)


@pytest.mark.usefixtures("clinic")
def test_nesting_that_parses_is_refused_naming_the_field(client):
    body = api_booking()
    body["patient"]["name"] = {"first": {"and": ["deeper"] * 3}}
    answer = client.post("/api/v1/appointments", json=body)
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == "patient.name"
    assert stored_rows() == (0, 0, 0)


# --- odd characters ------------------------------------------------------------------------

# Right-to-left override, combining accents, emoji with joiners, a script mixed in: all real
# names or real notes somewhere; each is stored as sent.
ODD_BUT_VALID = [
    "\u202eelbuort\u202c Pat",
    "Zoe\u0308 Ma\u0301rquez",
    "Pat \U0001f468\u200d\U0001f469\u200d\U0001f467 Example",
    "\u0628\u0627\u062a \u0625\u0643\u0632\u0627\u0645\u0628\u0644",
]


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("name", ODD_BUT_VALID)
def test_odd_but_valid_unicode_through_the_api_is_stored_as_sent(client, name):
    answer = client.post(
        "/api/v1/appointments", json=api_booking(name=name, notes=f"About {name}\nsecond line")
    )
    assert answer.status_code == 201, answer.json
    assert answer.json["patient"] == name
    db.session.rollback()
    visit = db.session.scalars(select(Appointment)).one()
    assert (visit.patient.name, visit.notes) == (name, f"About {name}\nsecond line")


# Sent as JSON escapes, so they arrive as the characters themselves.
REFUSED_IN_NAMES = {
    "NUL": "Pat\\u0000Example",
    "lone surrogate": "Pat\\ud800Example",
    "line break": "Pat\\r\\nBcc: intruder@example.net",
    "escape character": "Pat\\u001b[31mExample",
}


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize(("field", "escaped"), [
    *(("patient.name", value) for value in REFUSED_IN_NAMES.values()),
    ("patient.guardian_name", REFUSED_IN_NAMES["lone surrogate"]),
    ("patient.email", "pat\\u0000@example.com"),
    ("patient.email", "pat\\ud800@example.com"),
    ("patient.email", "pat@example.com\\r\\nBcc: intruder@example.net"),
    ("notes", "Knee\\u0000pain"),
    ("notes", "Knee\\udc00pain"),
], ids=lambda value: value if "." in value or value == "notes" else None)
def test_control_characters_and_lone_surrogates_are_refused_naming_the_field(
    client, field, escaped
):
    body = api_booking()
    raw = json.dumps(body)
    if field == "notes":
        raw = raw.replace('"notes": ""', f'"notes": "{escaped}"')
    elif field == "patient.guardian_name":
        raw = raw.replace('"email"', f'"guardian_name": "{escaped}", "email"')
    else:
        key = field.split(".")[1]
        original = json.dumps(body["patient"][key])
        raw = raw.replace(f'"{key}": {original}', f'"{key}": "{escaped}"')
    assert escaped in raw
    answer = post_json(client, "/api/v1/appointments", raw)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.json["error"]["field"] == field
    assert stored_rows() == (0, 0, 0)


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", HEADER_INJECTION, "Write your name on one line, without control characters."),
    ("child_name", "Kim\rBcc: x@example.net",
     "Write your child&#39;s name on one line, without control characters."),
    ("email", "pat@example.com\r\nBcc: intruder@example.net",
     "Enter an email address like name@example.com."),
    ("note", "Knee\x1b[31mpain", "Remove the control characters from your note."),
])
def test_the_patient_form_refuses_control_characters_naming_the_field(
    client, field, value, message
):
    form = visit_form(**{field: value})
    if field == "child_name":
        form.update(visit_for="child", child_date_of_birth="2019-04-23")
    answer = client.post("/book/schedule-a-call/details", data=form)
    assert answer.status_code == 422
    assert message in answer.get_data(as_text=True)
    assert stored_rows() == (0, 0, 0)


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("field", ["name", "email", "phone", "note", "therapist", "start"])
def test_a_nul_character_in_any_form_field_is_refused_naming_it(client, field):
    # PostgreSQL cannot even compare text holding NUL: refused before any view runs.
    form = visit_form()
    form[field] = form[field][:3] + "\x00" + form[field][3:]
    answer = client.post("/book/schedule-a-call/details", data=form)
    assert answer.status_code == 400
    assert f"{field}: must not contain a NUL character" in answer.get_data(as_text=True)
    assert stored_rows() == (0, 0, 0)


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("url", [
    "/book/schedule-a-call%00", "/manage/abc%00def", "/feeds/abc%00.ics", "/api/v1/services%00",
])
def test_a_nul_character_in_a_path_finds_no_page(client, url):
    assert client.get(url).status_code == 404


@pytest.mark.usefixtures("clinic")
def test_a_nul_character_in_a_back_office_search_is_refused(app):
    desk = signed_in(app, staff_logins()["front_desk"])
    answer = desk.get("/desk/patients?q=Pat%00")
    assert answer.status_code == 400
    assert "q: must not contain a NUL character" in answer.get_data(as_text=True)


@pytest.mark.usefixtures("clinic")
def test_the_patient_form_stores_odd_but_valid_unicode_as_sent(client):
    name = ODD_BUT_VALID[2]
    answer = client.post("/book/schedule-a-call/details", data=visit_form(name=name))
    assert answer.status_code == 303
    db.session.rollback()
    assert db.session.scalars(select(Patient.name)).one() == name


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("field", ["name", "guardian_name", "email"])
def test_the_back_office_refuses_a_line_break_in_a_name_or_email(app, field):
    desk = signed_in(app, staff_logins()["front_desk"])
    answer = desk.post("/desk/book", data=desk_booking(**{field: "Pat\r\nBcc: x@example.net"}))
    assert answer.status_code == 422
    assert stored_rows() == (0, 0, 0)


# --- mail headers --------------------------------------------------------------------------


@pytest.mark.usefixtures("smtp_settings", "clinic")
def test_a_name_that_looks_like_headers_stays_inside_the_to_header(client, smtp_inbox):
    # Commas, quotes, angle brackets and a colon: valid in a name, and all the stuff of
    # address lists. It must stay one display name of one recipient.
    name = 'Pat "Bcc: intruder@example.net" <intruder@example.net>, Zoë'
    assert client.post("/api/v1/appointments", json=api_booking(name=name)).status_code == 201
    # Raw line breaks inside a JSON string are not JSON at all.
    raw = json.dumps(api_booking(hour=10, name="NAME")).replace("NAME", HEADER_INJECTION)
    assert post_json(client, "/api/v1/appointments", raw).status_code == 400

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert len(mail.get_all("To")) == 1
    assert [address.addr_spec for address in mail["To"].addresses] == ["pat@example.com"]
    assert mail["To"].addresses[0].display_name == name
    assert mail.get_all("Bcc") is None and mail.get_all("Cc") is None
    assert "intruder" not in str(mail["Subject"])


@pytest.mark.usefixtures("smtp_settings", "clinic")
def test_header_injection_is_refused_on_every_path_that_takes_a_name(app, client, smtp_inbox):
    api = post_json(client, "/api/v1/appointments", json.dumps(api_booking(name=HEADER_INJECTION)))
    page = client.post("/book/schedule-a-call/details", data=visit_form(name=HEADER_INJECTION))
    desk = signed_in(app, staff_logins()["front_desk"]).post(
        "/desk/book", data=desk_booking(name=HEADER_INJECTION)
    )
    assert (api.status_code, page.status_code, desk.status_code) == (422, 422, 422)
    assert api.json["error"]["field"] == "patient.name"
    assert stored_rows() == (0, 0, 0)
    assert send_due(utc_now()) == DispatchReport()
    assert smtp_inbox.take() == []


# --- mail templates ------------------------------------------------------------------------


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize(
    "name", ["../secret.txt", "../../etc/passwd", "mail/../../secret.txt", "..\\secret.txt"]
)
def test_the_mail_template_loader_refuses_names_that_climb_out(app, tmp_path, name):
    folder = tmp_path / "mail"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("not a template for patients")
    app.config["MAIL_TEMPLATES_FOLDER"] = str(folder)
    with pytest.raises(TemplateNotFound):
        mail_templates().get_template(name)


# --- the clinic file -----------------------------------------------------------------------


def _clinic_file(old: str, new: str, *, appended: str = "") -> str:
    text = CLINIC_FILE.read_text()
    assert old in text
    return text.replace(old, new, 1) + appended


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_clinic_file('name = "Test Therapy Clinic"', 'name = "' + "A" * 1_000_000 + '"'),
         "hostile.toml: clinic.name: is 1000000 characters long; at most 200 are allowed"),
        (_clinic_file('name = "Test Therapy Clinic"', 'name = "Test\\r\\nBcc: x@example.net"'),
         "hostile.toml: clinic.name: must be one line of text without control characters"),
        (_clinic_file("duration_minutes = 15", "duration_minutes = " + "9" * 40),
         "hostile.toml: services[0].duration_minutes: must be at most 1440"),
        (_clinic_file("duration_minutes = 15", "duration_minutes = inf"),
         "hostile.toml: services[0].duration_minutes: must be a whole number (got inf)"),
        (_clinic_file("slot_step_minutes = 15", "slot_step_minutes = -99999999999"),
         "hostile.toml: clinic.slot_step_minutes: must be a number of minutes that divides"),
        (_clinic_file('timezone = "America/Detroit"', 'timezone = "../../etc/localtime"'),
         'hostile.toml: clinic.timezone: unknown time zone "../../etc/localtime"'),
        (_clinic_file("", "", appended="x = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n"),
         "hostile.toml: nests arrays or tables too deeply to be a clinic file"),
        (_clinic_file("slot_step_minutes = 15",
                      "slot_step_minutes = " + "[" * 5_000 + "]" * 5_000),
         "hostile.toml: nests arrays or tables too deeply to be a clinic file"),
        (_clinic_file("", "", appended="[" + ".".join(["a"] * 20_000) + "]\n"),
         "hostile.toml: a: unknown key; known keys: clinic, services, therapists"),
    ],
    ids=["huge-string", "control-characters", "absurd-number", "infinity", "negative-step",
         "zone-path", "bomb-of-inline-tables", "bomb-of-arrays", "bomb-of-tables"],
)
def test_a_clinic_file_with_hostile_values_is_refused_with_a_clear_message(text, message):
    with pytest.raises(ClinicFileError) as refused:
        parse_clinic_file(text, "hostile.toml")
    assert str(refused.value).startswith(message)


# --- HTML in names -------------------------------------------------------------------------

SCRIPT_NAME = '<script>alert("pwned")</script> <img src=x onerror=alert(1)> Pat'


@pytest.mark.usefixtures("clinic")
def test_html_in_a_patient_name_is_shown_escaped_on_every_page(app, client, book):
    visit = book(start=local(MONDAY, 9), name=SCRIPT_NAME, email="pat@example.com")
    visit.notes = '<b onmouseover="x()">notes</b>'
    db.session.commit()
    staff = staff_logins()
    desk = signed_in(app, staff["front_desk"])
    pages = {
        "desk day": desk.get(f"/desk/?day={MONDAY.isoformat()}"),
        "desk week": desk.get(f"/desk/therapists/alex-rivera/week?day={MONDAY.isoformat()}"),
        "desk visit": desk.get(f"/desk/appointments/{visit.id}"),
        "desk patient": desk.get(f"/desk/patients/{visit.patient_id}"),
        "desk patients": desk.get("/desk/patients?q=Pat"),
        "manage": client.get(f"/manage/{manage_token_for(visit)}"),
        "confirmation": client.get(f"/manage/{manage_token_for(visit)}/confirmation"),
    }
    for where, page in pages.items():
        assert page.status_code == 200, where
        html = page.get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, where
        assert "<b onmouseover" not in html, where
    for where in ("desk day", "desk visit", "desk patient", "manage"):
        assert "&lt;script&gt;alert(" in pages[where].get_data(as_text=True), where

    feed = client.get(f"/feeds/{feed_token_for(visit.therapist)}.ics").get_data(as_text=True)
    # (Not "script" alone: the feed's DESCRIPTION property has it in its name.)
    assert "<script" not in feed.lower() and "alert" not in feed and "pwned" not in feed
    # Initials only: of the words that start with a letter (src=x, onerror=..., Pat).
    assert "SUMMARY:Schedule a call (SOP)" in feed


# --- stale and incomplete forms ------------------------------------------------------------


@pytest.mark.usefixtures("clinic")
def test_an_incomplete_move_of_a_cancelled_visit_is_refused_not_a_500(app, book):
    # A second tab still showing the visit after it was cancelled: the form is sent half
    # filled. The page once failed to list the errors of forms it had not read (a 500).
    visit = book(start=local(MONDAY, 9))
    desk = signed_in(app, staff_logins()["front_desk"])
    cancel = desk.post(f"/desk/appointments/{visit.id}/cancel", data={"reason": "called"})
    assert cancel.status_code == 303
    answer = desk.post(f"/desk/appointments/{visit.id}/move", data={"therapist": "alex-rivera"})
    assert answer.status_code == 422
    assert "This field is required." in answer.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Appointment, visit.id).status == "cancelled"
