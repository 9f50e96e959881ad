"""The patient model: one rule per field, and the same verdict on the API, the patient's page
and the back office; details given with a booking stay with that booking."""

from __future__ import annotations

from datetime import timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from booking.extensions import db
from booking.models import Appointment, AuditEntry, Patient, utc_now
from booking.patients.details import PatientDetails
from tests.conftest import local, next_weekday
from tests.desk_staff import signed_in, staff_logins

pytestmark = pytest.mark.usefixtures("clinic")

MONDAY = next_weekday(0)
DETROIT = ZoneInfo("America/Detroit")
# Where the day starts first: its today is often UTC's tomorrow.
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")


def checked(service_kind: str | None = None, zone: ZoneInfo = DETROIT,
            languages: tuple[str, ...] = ("en",), **fields) -> PatientDetails:
    data = {"name": "Pat Example", "email": "pat@example.com", **fields}
    return PatientDetails.model_validate(
        data, context={"zone": zone, "languages": languages, "service_kind": service_kind}
    )


def refusal(**arguments) -> tuple[str, str]:
    """(field, kind) of the one problem the model finds."""
    with pytest.raises(ValidationError) as refused:
        checked(**arguments)
    problems = refused.value.errors(include_url=False)
    assert len(problems) == 1, problems
    return ".".join(map(str, problems[0]["loc"])), problems[0]["type"]


# --- one rule per field --------------------------------------------------------------------


@pytest.mark.parametrize("name, kind", [
    ("   ", "required"),
    ("Pat\r\nBcc: intruder@example.net", "one_line"),
    ("Pat\x1b[31mExample", "one_line"),
    ("Pat\ud800Example", "one_line"),
    ("x" * 201, "too_long"),
])
def test_a_name_is_one_line_of_at_most_200_characters(name, kind):
    assert refusal(name=name) == ("name", kind)


def test_a_name_is_kept_as_typed_without_the_spaces_around_it():
    assert checked(name="  Zoë Ðorđević-Łukasz ").name == "Zoë Ðorđević-Łukasz"


@pytest.mark.parametrize("email", ["pat-at-example", "pat@example.com\nBcc: x@y.z",
                                   "pat\x00@example.com", "x" * 250 + "@example.com"])
def test_an_email_is_an_address_email_validator_accepts(email):
    assert refusal(email=email) == ("email", "email")


@pytest.mark.parametrize("phone", ["call me", "555 010", "+1 586 555 0100 x12",
                                   "+1 586\n555 0100"])
def test_a_phone_given_is_at_least_seven_digits_and_phone_punctuation(phone):
    assert refusal(phone=phone) == ("phone", "phone")


@pytest.mark.parametrize("phone", ["+1 (586) 555-0100", "586.555.0100", "5865550100"])
def test_a_plausible_phone_is_kept(phone):
    assert checked(phone=phone).phone == phone


def test_a_phone_is_required_for_a_call_and_only_for_a_call():
    assert refusal(service_kind="call") == ("phone", "required")
    assert checked(service_kind="evaluation").phone == ""
    assert checked(service_kind="treatment").phone == ""


def test_a_birth_date_is_not_after_the_clinics_today_nor_absurdly_old():
    today = utc_now().astimezone(KIRITIMATI).date()
    assert checked(zone=KIRITIMATI, date_of_birth=today.isoformat(),
                   guardian_name="Lin Chen").date_of_birth == today
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert refusal(zone=KIRITIMATI, date_of_birth=tomorrow) == ("date_of_birth", "future")
    assert refusal(date_of_birth="1850-01-01") == ("date_of_birth", "too_old")
    assert refusal(date_of_birth="23/04/2019") == ("date_of_birth", "date")
    assert refusal(date_of_birth=1555977600) == ("date_of_birth", "date")


def test_a_child_has_a_named_guardian_an_adult_need_not():
    assert refusal(date_of_birth="2019-04-23") == ("guardian_name", "required")
    child = checked(date_of_birth="2019-04-23", guardian_name="Lin Chen")
    assert (child.name, child.guardian_name) == ("Pat Example", "Lin Chen")
    assert checked(date_of_birth="1980-04-23").guardian_name == ""


def test_the_language_is_one_of_the_clinics_and_the_first_by_default():
    assert checked(languages=("es", "en")).language == "es"
    assert checked(languages=("es", "en"), language="en").language == "en"
    assert refusal(languages=("es", "en"), language="fr") == ("language", "language")


def test_a_clinic_file_without_languages_speaks_english():
    assert PatientDetails(name="Pat Example", email="pat@example.com").language == "en"


# --- the same verdict everywhere -----------------------------------------------------------

# (what is wrong, the API body's change, the patient page's change, the desk form's change,
#  the API field, the page's field and message, the desk field and message)
SAME_VERDICT = {
    "letters as a phone": (
        {"patient": {"phone": "call me"}}, {"phone": "call me"}, {"phone": "call me"},
        "patient.phone",
        ("phone", "Enter a phone number, like +1 586 555 0100."),
        ("phone", "must be a phone number of at least 7 digits"),
    ),
    "a birth date in 2031": (
        {"patient": {"date_of_birth": "2031-01-01", "guardian_name": "Lin Chen"}},
        {"visit_for": "child", "child_name": "Kit Example", "child_date_of_birth": "2031-01-01"},
        {"date_of_birth": "2031-01-01", "guardian_name": "Lin Chen"},
        "patient.date_of_birth",
        ("child_date_of_birth", "The date of birth cannot be in the future."),
        ("date_of_birth", "cannot be in the future"),
    ),
    "a control character in notes": (
        {"notes": "Knee\x1b[31mpain"}, {"note": "Knee\x1b[31mpain"}, {"notes": "Knee\x1b[31mpain"},
        "notes",
        ("note", "Remove the control characters from your note."),
        ("notes", "must not contain control characters"),
    ),
    "no phone for a call": (
        {"patient": {"phone": ""}}, {"phone": ""}, {"phone": ""},
        "patient.phone",
        ("phone", "Enter a phone number: we call you on it for this visit."),
        ("phone", "is required for a call"),
    ),
}


def nothing_was_stored() -> bool:
    db.session.rollback()
    return all(db.session.scalar(select(func.count()).select_from(table)) == 0
               for table in (Appointment, Patient, AuditEntry))


def api_body(change: dict) -> dict:
    body = {
        "service": "schedule-a-call", "start": local(MONDAY, 9).isoformat(),
        "therapist": "alex-rivera",
        "patient": {"name": "Pat Example", "email": "pat@example.com",
                    "phone": "+1 586 555 0199"},
    }
    body["patient"].update(change.get("patient", {}))
    body.update({key: value for key, value in change.items() if key != "patient"})
    return body


def page_form(change: dict) -> dict:
    return {"start": local(MONDAY, 9).isoformat(), "therapist": "alex-rivera",
            "visit_for": "me", "name": "Pat Example", "email": "pat@example.com",
            "phone": "+1 586 555 0199", "note": "", "website": "", **change}


def desk_form(change: dict) -> dict:
    return {"name": "Pat Example", "email": "pat@example.com", "phone": "+1 586 555 0199",
            "service": "schedule-a-call", "therapist": "alex-rivera",
            "day": MONDAY.isoformat(), "time": "09:00", **change}


@pytest.mark.parametrize("case", SAME_VERDICT.values(), ids=SAME_VERDICT.keys())
def test_the_api_the_patient_page_and_the_desk_refuse_alike(app, client, case):
    api_change, page_change, desk_change, api_field, (page_field, page_message), (
        desk_field, desk_message) = case

    answer = client.post("/api/v1/appointments", json=api_body(api_change))
    assert answer.status_code == 422, answer.json
    assert (answer.json["error"]["code"], answer.json["error"]["field"]) == (
        "validation_error", api_field)
    assert nothing_was_stored()

    page = client.post("/book/schedule-a-call/details", data=page_form(page_change))
    assert page.status_code == 422
    html = unescape(page.get_data(as_text=True))
    assert f'<p class="error" id="{page_field}-error">{page_message}</p>' in html
    assert nothing_was_stored()

    desk = signed_in(app, staff_logins()["front_desk"])
    shown = desk.post("/desk/book", data=desk_form(desk_change))
    assert shown.status_code == 422
    label_and_message = unescape(shown.get_data(as_text=True))
    label = {"phone": "Phone", "date_of_birth": "Date of birth", "notes": "Notes"}[desk_field]
    assert f'<p class="error">{label}: {desk_message}' in label_and_message
    assert nothing_was_stored()


def test_a_phone_is_optional_for_a_visit_at_the_clinic_everywhere(app, client):
    body = api_body({"service": "pt-evaluation", "patient": {"phone": ""}})
    assert client.post("/api/v1/appointments", json=body).status_code == 201
    page = client.post("/book/pt-evaluation/details", data=page_form(
        {"phone": "", "email": "sam@example.com", "start": local(MONDAY, 11).isoformat()}))
    assert page.status_code == 303, page.get_data(as_text=True)
    desk = signed_in(app, staff_logins()["front_desk"])
    booked = desk.post("/desk/book", data=desk_form(
        {"phone": "", "service": "pt-evaluation", "email": "kim@example.com", "time": "14:00"}))
    assert booked.status_code == 303
    db.session.rollback()
    assert db.session.scalars(select(Appointment.patient_phone)).all() == ["", "", ""]


# --- details given with a booking belong to it ---------------------------------------------


def test_an_anonymous_booking_leaves_the_patients_record_as_it_was(app, client):
    first = client.post("/api/v1/appointments", json=api_body({}))
    assert first.status_code == 201
    second = client.post("/api/v1/appointments", json=api_body({
        "start": local(MONDAY, 10).isoformat(),
        "patient": {"name": "  PAT example ", "email": "Pat@Example.com",
                    "phone": "+44 20 7946 0000", "date_of_birth": "1990-02-03",
                    "guardian_name": "Someone Else"},
    }))
    assert second.status_code == 201

    db.session.rollback()
    patient = db.session.scalars(select(Patient)).one()
    assert (patient.phone, patient.date_of_birth, patient.guardian_name) == (
        "+1 586 555 0199", None, "")
    visit = db.session.get(Appointment, second.json["id"])
    assert (visit.patient_id, visit.patient_phone, visit.patient_date_of_birth.isoformat(),
            visit.patient_guardian_name) == (
        patient.id, "+44 20 7946 0000", "1990-02-03", "Someone Else")

    desk = signed_in(app, staff_logins()["front_desk"])
    page = desk.get(f"/desk/appointments/{second.json['id']}").get_data(as_text=True)
    assert "+44 20 7946 0000" in page
    assert "+1 586 555 0199" not in page
    earlier = desk.get(f"/desk/appointments/{first.json['id']}").get_data(as_text=True)
    assert "+1 586 555 0199" in earlier
    record = desk.get(f"/desk/patients/{patient.id}").get_data(as_text=True)
    assert "+1 586 555 0199" in record
    assert "+44 20 7946 0000" not in record


def test_the_page_asks_for_the_guardians_name_and_the_childs_birth_date(client):
    page = client.post("/book/schedule-a-call/details", data=page_form(
        {"visit_for": "child", "name": "", "child_name": "Kit Example",
         "child_date_of_birth": ""}))
    assert page.status_code == 422
    html = unescape(page.get_data(as_text=True))
    assert '<p class="error" id="name-error">Enter your full name.</p>' in html
    assert ('<p class="error" id="child_date_of_birth-error">'
            "Enter your child's date of birth.</p>") in html
    assert nothing_was_stored()
