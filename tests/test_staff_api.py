"""The staff API: personal tokens from `flask users token`, the back office's roles, and the
day's appointments with the details each patient gave."""

from __future__ import annotations

import pytest

from booking.extensions import db
from tests.conftest import local, next_weekday
from tests.desk_staff import staff_logins


def _token_for(app, email: str) -> str:
    answer = app.test_cli_runner().invoke(args=["users", "token", "--email", email])
    assert answer.exit_code == 0, answer.output
    return answer.output.strip()


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def logins(clinic):
    return staff_logins()


@pytest.fixture
def monday():
    return next_weekday(0)


@pytest.fixture
def visits(book, monday):
    """Two visits on Monday: one with Alex Rivera, one with Jamie Lee."""
    alex = book(start=local(monday, 9), therapist="alex-rivera", phone="+1 586 555 0142")
    jamie = book(start=local(monday, 10), therapist="jamie-lee", service="pt-evaluation")
    return alex, jamie


def test_without_a_token_or_with_a_wrong_one_the_staff_api_answers_401(client, logins, monday):
    url = f"/api/v1/staff/appointments?date={monday}"
    for headers in ({}, _bearer("not-a-token"), {"Authorization": "Basic abc"}):
        answer = client.get(url, headers=headers)
        assert answer.status_code == 401
        assert answer.json["error"]["code"] == "unauthorized"


def test_front_desk_sees_the_days_visits_with_the_patients_details(app, client, logins, visits,
                                                                    monday):
    token = _token_for(app, "desk@clinic.example")
    answer = client.get(f"/api/v1/staff/appointments?date={monday}", headers=_bearer(token))
    assert answer.status_code == 200
    assert [(row["therapist"], row["service"]) for row in answer.json] == [
        ("alex-rivera", "schedule-a-call"), ("jamie-lee", "pt-evaluation"),
    ]
    first = answer.json[0]
    assert first["start"] == local(monday, 9).isoformat()
    assert set(first["patient"]) == {"name", "email", "phone", "date_of_birth", "guardian_name"}
    assert first["patient"]["email"] == visits[0].patient.email
    assert first["patient"]["phone"] == "+1 586 555 0142"  # as given with this booking
    assert first["series_id"] is None


def test_a_therapist_token_sees_only_their_own_schedule(app, client, logins, visits, monday):
    token = _token_for(app, "alex@clinic.example")
    own = client.get(f"/api/v1/staff/appointments?date={monday}", headers=_bearer(token))
    assert [row["therapist"] for row in own.json] == ["alex-rivera"]
    other = client.get(
        f"/api/v1/staff/appointments?date={monday}&therapist=jamie-lee", headers=_bearer(token)
    )
    assert other.status_code == 403
    assert other.json["error"]["code"] == "forbidden"


def test_revoked_tokens_and_switched_off_logins_are_refused(app, client, logins, monday):
    first = _token_for(app, "desk@clinic.example")
    second = _token_for(app, "desk@clinic.example")
    url = f"/api/v1/staff/appointments?date={monday}"
    assert client.get(url, headers=_bearer(first)).status_code == 200
    assert client.get(url, headers=_bearer(second)).status_code == 200  # earlier ones work
    revoked = app.test_cli_runner().invoke(
        args=["users", "revoke-tokens", "--email", "desk@clinic.example"]
    )
    assert "Ended 2 API tokens" in revoked.output
    assert client.get(url, headers=_bearer(first)).status_code == 401
    assert client.get(url, headers=_bearer(second)).status_code == 401

    third = _token_for(app, "desk@clinic.example")
    logins["front_desk"].active = False
    db.session.commit()
    assert client.get(url, headers=_bearer(third)).status_code == 401


def test_a_token_for_an_unknown_login_is_refused_naming_the_option(app, logins):
    answer = app.test_cli_runner().invoke(
        args=["users", "token", "--email", "nobody@clinic.example"]
    )
    assert answer.exit_code == 2
    assert "--email" in answer.output and "there is no login" in answer.output


def test_a_bad_date_names_the_field(app, client, logins):
    token = _token_for(app, "desk@clinic.example")
    answer = client.get("/api/v1/staff/appointments?date=tomorrow", headers=_bearer(token))
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == "date"


@pytest.mark.parametrize(("query", "field"), [
    ("service=dry%00needling", "service"),  # PostgreSQL cannot even compare such text
    ("serv%00ice=dry-needling", "serv\x00ice"),
])
def test_a_nul_character_in_a_staff_query_is_refused_as_the_api_refuses_it(
    app, client, logins, query, field
):
    token = _token_for(app, "desk@clinic.example")
    answer = client.get(f"/api/v1/staff/waitlist?{query}", headers=_bearer(token))
    assert answer.status_code == 422  # as documented, like any other value it refuses
    assert answer.json["error"]["code"] == "validation_error"
    assert answer.json["error"]["field"] == field


def test_the_staff_api_is_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").json
    operation = document["paths"]["/staff/appointments"]["get"]
    assert operation["security"] == [{"staffToken": []}]
