"""Bad input gets a clear 4xx in the contract's error shape, names the field, changes nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from booking.api.schemas import AppointmentRequest, AvailabilityQuery
from booking.extensions import db
from booking.models import Appointment, AuditEntry, IdempotencyKey, Patient
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.usefixtures("clinic")

MONDAY = next_weekday(0)


def valid_booking() -> dict:
    return {
        "service": "pt-evaluation",
        "start": local(MONDAY, 9).isoformat(),
        "patient": {"name": "Pat Example", "email": "pat@example.com"},
    }


def changed(path: str, value) -> dict:
    body = valid_booking()
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return body


def nothing_was_written() -> bool:
    return all(
        db.session.scalar(select(func.count()).select_from(table)) == 0
        for table in (Appointment, Patient, AuditEntry, IdempotencyKey)
    )


BAD_BOOKINGS = [
    ("service", KeyError, 422, "validation_error", "service"),
    ("start", KeyError, 422, "validation_error", "start"),
    ("patient", KeyError, 422, "validation_error", "patient"),
    ("patient.name", KeyError, 422, "validation_error", "patient.name"),
    ("patient.name", "   ", 422, "validation_error", "patient.name"),
    ("patient.name", "Pat\r\nBcc: victim@example.com", 422, "validation_error", "patient.name"),
    ("patient.name", "x" * 201, 422, "validation_error", "patient.name"),
    ("patient.email", "not-an-email", 422, "validation_error", "patient.email"),
    ("patient.email", "pat@example.com\nBcc: x@y.z", 422, "validation_error", "patient.email"),
    ("patient.phone", "call me maybe", 422, "validation_error", "patient.phone"),
    ("patient.date_of_birth", "2999-01-01", 422, "validation_error", "patient.date_of_birth"),
    ("patient.date_of_birth", "yesterday", 422, "validation_error", "patient.date_of_birth"),
    ("start", "2026-12-07T09:00:00", 422, "validation_error", "start"),
    ("start", "next monday", 422, "validation_error", "start"),
    ("start", 1765116000, 422, "validation_error", "start"),
    ("service", "massage", 422, "unknown_service", "service"),
    ("service", "../../etc/passwd", 422, "validation_error", "service"),
    ("therapist", "nobody-here", 422, "unknown_therapist", "therapist"),
    ("notes", "x" * 2001, 422, "validation_error", "notes"),
    ("surprise", "field", 422, "validation_error", "surprise"),
]


@pytest.mark.parametrize("path, value, status, code, field", BAD_BOOKINGS)
def test_a_bad_booking_is_refused_naming_the_field(client, path, value, status, code, field):
    answer = client.post("/api/v1/appointments", json=changed(path, value))
    assert answer.status_code == status
    error = answer.json["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert error["message"]
    assert nothing_was_written()


def test_a_start_without_offset_is_explained(client):
    answer = client.post("/api/v1/appointments", json=changed("start", "2026-12-07T09:00:00"))
    assert answer.json["error"]["message"] == (
        "start: must include a UTC offset, e.g. 2026-12-01T09:00:00-05:00"
    )


def test_a_therapist_who_does_not_offer_the_service_is_refused(client):
    answer = client.post(
        "/api/v1/appointments",
        json={**changed("therapist", "jamie-lee"), "service": "dry-needling"},
    )
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "unknown_therapist"
    assert "does not offer" in answer.json["error"]["message"]
    assert nothing_was_written()


@pytest.mark.parametrize(
    "data, content_type, status, code",
    [
        ('{"service": "pt-evaluation",', "application/json", 400, "malformed_json"),
        ("[1, 2, 3]", "application/json", 422, "validation_error"),
        ('"a string"', "application/json", 422, "validation_error"),
        ("service=pt-evaluation", "application/x-www-form-urlencoded", 415,
         "unsupported_media_type"),
        ("[" * 100_000 + "]" * 100_000, "application/json", 413, "payload_too_large"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "application/json", 400, "malformed_json"),
        (json.dumps({**valid_booking(), "notes": "x" * 70_000}), "application/json", 413,
         "payload_too_large"),
    ],
    ids=["truncated", "array", "string", "form", "huge", "deep", "oversized-notes"],
)
def test_a_body_that_is_not_a_booking_is_refused(client, data, content_type, status, code):
    answer = client.post("/api/v1/appointments", data=data, content_type=content_type)
    assert answer.status_code == status
    assert answer.json["error"]["code"] == code
    assert nothing_was_written()


@pytest.mark.parametrize(
    "query, code, field",
    [
        ("start={d}&end={d}", "validation_error", "service"),
        ("service=pt-evaluation&end={d}", "validation_error", "start"),
        ("service=pt-evaluation&start={d}&end=2020-01-01", "validation_error", "end"),
        ("service=pt-evaluation&start=2027-01-01&end=2027-03-04", "validation_error", "end"),
        ("service=pt-evaluation&start=12/07/2026&end={d}", "validation_error", "start"),
        ("service=pt-evaluation&start={d}&end={d}&tz=Mars/Olympus", "validation_error", "tz"),
        ("service=pt-evaluation&start={d}&end={d}&tz=../../etc/passwd", "validation_error", "tz"),
        ("service=massage&start={d}&end={d}", "unknown_service", "service"),
        ("service=dry-needling&start={d}&end={d}&therapist=jamie-lee", "unknown_therapist",
         "therapist"),
        ("service=pt-evaluation&service=dry-needling&start={d}&end={d}", "validation_error",
         "service"),
        ("service=pt-evaluation&start={d}&end={d}&colour=blue", "validation_error", "colour"),
    ],
)
def test_a_bad_availability_question_is_refused_naming_the_field(client, query, code, field):
    answer = client.get("/api/v1/availability?" + query.format(d=MONDAY))
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == code
    assert answer.json["error"]["field"] == field


def test_sixty_two_days_are_allowed_and_sixty_three_are_not(client):
    allowed = client.get("/api/v1/availability?service=pt-evaluation"
                         "&start=2027-01-01&end=2027-03-03")
    assert allowed.status_code == 200
    refused = client.get("/api/v1/availability?service=pt-evaluation"
                         "&start=2027-01-01&end=2027-03-04")
    assert refused.status_code == 422


def test_the_availability_limit_is_the_configured_one(app, client):
    app.config["AVAILABILITY_MAX_DAYS"] = 7
    week = "/api/v1/availability?service=pt-evaluation&start=2027-01-01&end=2027-01-07"
    assert client.get(week).status_code == 200
    refused = client.get("/api/v1/availability?service=pt-evaluation"
                         "&start=2027-01-01&end=2027-01-08")
    assert refused.status_code == 422
    assert refused.json["error"] == {
        "code": "validation_error", "field": "end",
        "message": "end: at most 7 days after start, inclusive",
    }


@pytest.mark.parametrize(
    "method, url, status, code",
    [
        ("GET", "/api/v1/nothing-here", 404, "not_found"),
        ("DELETE", "/api/v1/appointments", 405, "method_not_allowed"),
        ("GET", "/api/v1/appointments/not-a-number", 404, "not_found"),
        ("POST", "/api/v1/appointments/1/cancel", 404, "not_found"),
    ],
)
def test_unknown_routes_and_methods_answer_in_the_error_shape(client, method, url, status, code):
    answer = client.open(url, method=method)
    assert answer.status_code == status
    assert answer.json["error"]["code"] == code


def test_rescheduling_with_a_bad_body_changes_nothing(client):
    booked = client.post("/api/v1/appointments", json=valid_booking()).json
    headers = {"Authorization": f"Bearer {booked['manage_token']}"}
    for body, field in [
        ({}, "start"),
        ({"start": "2026-12-08T10:00:00"}, "start"),
        ({"start": local(MONDAY, 11).isoformat(), "therapist": "Nobody!"}, "therapist"),
    ]:
        answer = client.post(f"/api/v1/appointments/{booked['id']}/reschedule", json=body,
                             headers=headers)
        assert answer.status_code == 422
        assert answer.json["error"]["field"] == field
    stored = db.session.get(Appointment, booked["id"])
    assert (stored.start_at, stored.sequence) == (local(MONDAY, 9), 0)


def test_the_openapi_document_is_built_from_the_validating_models(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/services", "/therapists", "/availability", "/appointments",
        "/appointments/{appointment_id}", "/appointments/{appointment_id}/cancel",
        "/appointments/{appointment_id}/reschedule", "/openapi.json", "/staff/appointments",
        "/appointments/series", "/appointments/series/{series_id}",
        "/staff/clearances",
        "/appointments/{appointment_id}/forms", "/appointments/{appointment_id}/forms/{form}",
        "/waitlist", "/waitlist/{entry_id}", "/offers/{token}/claim", "/staff/waitlist",
    }
    booking = document["paths"]["/appointments"]["post"]
    ref = booking["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[-1]
    schema = document["components"]["schemas"][name]
    expected = AppointmentRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schema["required"] == expected["required"] == ["service", "start", "patient"]
    assert schema["properties"]["start"] == expected["properties"]["start"]
    assert schema["additionalProperties"] is False
    # Its own answers, then those of any JSON body, rate limit and database outage.
    assert set(booking["responses"]) == {"201", "409", "422", "400", "413", "415", "429", "503"}
    parameters = {
        p["name"]: p for p in document["paths"]["/availability"]["get"]["parameters"]
    }
    assert set(parameters) == set(AvailabilityQuery.model_fields)
    assert parameters["service"]["required"] is True
    assert parameters["tz"]["required"] is False
    assert document["paths"]["/appointments/{appointment_id}"]["get"]["security"] == [
        {"manageToken": []}
    ]
