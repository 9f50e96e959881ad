"""What a security probe of the whole service found, each answered as the user would see it:
ids too long for the database are no such page, and a NUL character is refused in any form
however it is encoded."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from booking.extensions import db
from booking.models import TimeOff
from booking.patients.manage_links import manage_token_for
from tests.conftest import next_weekday
from tests.desk_staff import signed_in, staff_logins

BEYOND_64_BITS = "99999999999999999999"


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("method, path", [
    ("GET", f"/desk/appointments/{BEYOND_64_BITS}"),
    ("POST", f"/desk/appointments/{BEYOND_64_BITS}/move"),
    ("POST", f"/desk/appointments/{BEYOND_64_BITS}/cancel"),
    ("GET", f"/desk/patients/{BEYOND_64_BITS}"),
    ("POST", f"/desk/notifications/{BEYOND_64_BITS}/resend"),
    ("POST", f"/desk/users/{BEYOND_64_BITS}/active"),
    ("POST", f"/desk/therapists/alex-rivera/time-off/{BEYOND_64_BITS}/remove"),
    ("POST", f"/desk/therapists/alex-rivera/busy-calendars/{BEYOND_64_BITS}/remove"),
    ("GET", f"/desk/therapists/alex-rivera/busy-calendars/{BEYOND_64_BITS}/replace"),
    ("GET", f"/api/v1/appointments/{BEYOND_64_BITS}"),
])
def test_an_id_too_long_for_the_database_is_no_such_page(app, method, path):
    admin = signed_in(app, staff_logins()["admin"])
    answer = admin.open(path, method=method)
    assert answer.status_code == 404, answer.get_data(as_text=True)[:300]


@pytest.mark.usefixtures("clinic")
def test_a_nul_character_in_a_multipart_desk_form_is_refused_and_nothing_is_saved(app):
    desk = signed_in(app, staff_logins()["front_desk"])
    tuesday = next_weekday(1)
    answer = desk.post(
        "/desk/therapists/jamie-lee/time-off",
        data={"starts": f"{tuesday}T12:00", "ends": f"{tuesday}T17:00", "reason": "Co\x00urse"},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert "reason: must not contain a NUL character" in answer.get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TimeOff)) == 0


# --- staff sessions ------------------------------------------------------------------------

from tests.desk_staff import PASSWORD, desk_client  # noqa: E402


def _logged_in(app, email: str):
    client = desk_client(app)
    answer = client.post("/desk/login", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 303
    return client


def _with_cookie_of(app, client):
    copy = desk_client(app)
    copy.set_cookie("session", client.get_cookie("session").value)
    return copy


@pytest.mark.usefixtures("clinic")
def test_a_session_cookie_copied_before_signing_out_opens_nothing_after(app):
    staff_logins()
    client = _logged_in(app, "desk@clinic.example")
    copy = _with_cookie_of(app, client)
    assert copy.get("/desk/patients").status_code == 200
    assert client.post("/desk/logout").status_code == 303
    assert copy.get("/desk/patients").status_code == 302


@pytest.mark.usefixtures("clinic")
def test_a_login_switched_off_and_on_again_ends_the_sessions_it_had(app):
    logins = staff_logins()
    client = _logged_in(app, "desk@clinic.example")
    admin = signed_in(app, logins["admin"])
    desk_id = logins["front_desk"].id
    for state in ("off", "on"):
        answer = admin.post(f"/desk/users/{desk_id}/active", data={"active": state})
        assert answer.status_code == 303
    assert client.get("/desk/patients").status_code == 302
    assert _logged_in(app, "desk@clinic.example").get("/desk/patients").status_code == 200


@pytest.mark.usefixtures("clinic")
def test_a_next_address_with_a_line_break_leads_to_the_day_view(app):
    staff_logins()
    answer = desk_client(app).post(
        "/desk/login",
        data={"email": "desk@clinic.example", "password": PASSWORD,
              "next": "/desk/patients\r\nSet-Cookie: x=1"},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/desk/"
    assert "x=1" not in answer.headers.get("Set-Cookie", "")


@pytest.fixture
def csrf_on(app_settings):
    app_settings["WTF_CSRF_ENABLED"] = True


def _csrf_token_in(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


@pytest.mark.usefixtures("csrf_on", "clinic")
def test_the_form_token_of_the_login_page_does_not_work_after_signing_in(app):
    staff_logins()
    client = desk_client(app)
    before = _csrf_token_in(client.get("/desk/login").get_data(as_text=True))
    answer = client.post("/desk/login", data={
        "email": "desk@clinic.example", "password": PASSWORD, "csrf_token": before,
    })
    assert answer.status_code == 303
    refused = client.post("/desk/logout", data={"csrf_token": before})
    assert refused.status_code == 400
    page = client.get("/desk/patients")
    assert page.status_code == 200, page.headers
    after = _csrf_token_in(page.get_data(as_text=True))
    assert client.post("/desk/logout", data={"csrf_token": after}).status_code == 303


# --- far dates -----------------------------------------------------------------------------

FAR_AHEAD = "9999-12-31"
LONG_AGO = "0001-01-01"


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("query, field", [
    (f"start={FAR_AHEAD[:-1]}0&end={FAR_AHEAD}", "start"),
    (f"start={LONG_AGO}&end={LONG_AGO}", "start"),
])
def test_far_dates_in_an_availability_query_name_the_field(client, query, field):
    answer = client.get(f"/api/v1/availability?service=schedule-a-call&{query}")
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == field


@pytest.mark.usefixtures("clinic")
def test_a_booking_or_a_move_at_the_end_of_time_names_the_start(client, book):
    body = {"service": "schedule-a-call", "start": "9999-12-31T23:00:00-05:00",
            "patient": {"name": "Pat Example", "email": "pat@example.com",
                        "phone": "+1 586 555 0100"}}
    answer = client.post("/api/v1/appointments", json=body)
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == "start"
    visit = book()
    moved = client.post(
        f"/api/v1/appointments/{visit.id}/reschedule",
        json={"start": "9999-12-31T23:00:00-05:00"},
        headers={"Authorization": f"Bearer {manage_token_for(visit)}"},
    )
    assert moved.status_code == 422
    assert moved.json["error"]["field"] == "start"


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("path", [
    f"/book/schedule-a-call?week={FAR_AHEAD}",
    f"/book/schedule-a-call?week={LONG_AGO}",
    "/book/schedule-a-call/details?start=9999-12-31T23:00:00-05:00",
])
def test_far_dates_on_the_patient_pages_are_a_page_naming_the_field(client, path):
    answer = client.get(path)
    assert 400 <= answer.status_code < 500
    text = answer.get_data(as_text=True)
    assert ("Week:" in text) or ("Start:" in text)


@pytest.mark.usefixtures("clinic")
def test_far_dates_on_the_manage_page_are_a_page_naming_the_field(client, book):
    token = manage_token_for(book())
    answer = client.get(f"/manage/{token}/reschedule?week={FAR_AHEAD}")
    assert answer.status_code == 400
    assert "Week:" in answer.get_data(as_text=True)
    posted = client.post(f"/manage/{token}/reschedule",
                         data={"start": "9999-12-31T23:00:00-05:00"})
    assert posted.status_code == 400
    assert "Start:" in posted.get_data(as_text=True)


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("method, path, data, field", [
    ("GET", f"/desk/?day={FAR_AHEAD}", None, "day"),
    ("GET", f"/desk/therapists/alex-rivera/week?day={LONG_AGO}", None, "day"),
    ("GET", f"/desk/audit?since={FAR_AHEAD}", None, "From"),
    ("POST", "/desk/book", {"service": "schedule-a-call", "day": FAR_AHEAD, "time": "09:00",
                            "name": "Pat Example", "email": "pat@example.com"}, "Day"),
])
def test_far_dates_in_the_back_office_name_the_field(app, method, path, data, field):
    admin = signed_in(app, staff_logins()["admin"])
    answer = admin.open(path, method=method, data=data)
    assert 400 <= answer.status_code < 500, answer.status_code
    assert field in answer.get_data(as_text=True)


@pytest.mark.usefixtures("clinic")
def test_a_desk_move_to_the_end_of_time_names_the_day(app, book):
    visit = book()
    admin = signed_in(app, staff_logins()["admin"])
    answer = admin.post(f"/desk/appointments/{visit.id}/move",
                        data={"therapist": "alex-rivera", "day": FAR_AHEAD, "time": "09:00"})
    assert answer.status_code == 422
    assert "Day" in answer.get_data(as_text=True)


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("patient_id", ["999999", "99999999999999999999999"])
def test_booking_at_the_desk_for_a_patient_not_on_record_is_refused_naming_the_choice(
    app, patient_id
):
    admin = signed_in(app, staff_logins()["admin"])
    answer = admin.post("/desk/book", data={
        "service": "schedule-a-call", "day": next_weekday(0).isoformat(), "time": "09:00",
        "patient_id": patient_id,
    })
    assert answer.status_code == 422
    assert "Choose a patient from the list." in answer.get_data(as_text=True)
