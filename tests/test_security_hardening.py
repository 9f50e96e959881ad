"""What a security probe of the service found, each held shut (docs/security.md): secret
tokens never reach a log line, the visit's calendar download names no patient, and staff
passwords are refused when they are easy to guess. (Busy calendars' own limits are told in
test_desk_busy_calendars and test_external_calendars.)"""

from __future__ import annotations

import logging
import re

import pytest
import requests
from icalendar import Calendar
from sqlalchemy import Integer, column, func, select, text

from booking.database import converted_rows
from booking.extensions import db
from booking.models import Patient, StaffUser
from booking.patients.manage_links import manage_token_for
from tests.desk_staff import PASSWORD, signed_in, staff_logins
from tests.servers import running_gunicorn


@pytest.fixture
def staff(clinic):
    return staff_logins()

# --- tokens in logs --------------------------------------------------------------------------


@pytest.fixture
def a_fault_under_manage(app):
    """A bug in a manage page: the view fails, naming its path as exceptions often do."""

    def failing_view(token):
        raise RuntimeError(f"could not render /manage/{token}/receipt")

    app.add_url_rule("/manage/<token>/receipt", view_func=failing_view)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 and log it, as in production
    return app


def test_a_500_under_a_manage_link_logs_the_path_without_its_token(
    a_fault_under_manage, client, book, caplog
):
    token = manage_token_for(book())

    with caplog.at_level(logging.INFO):
        answer = client.get(f"/manage/{token}/receipt")

    assert answer.status_code == 500
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert error.getMessage() == "Exception on /manage/[token]/receipt [GET]"
    logged = caplog.text
    assert "RuntimeError: could not render /manage/[token]/receipt" in logged
    assert token not in logged


@pytest.fixture(params=["through SQLAlchemy", "through the driver"])
def a_fault_writing_a_patient(app, request):
    """A bug in a view: a patient's row written without its email, which the database refuses
    (PostgreSQL's error names the row's values in its DETAIL line)."""
    statement = text(
        "INSERT INTO patients (identity, name, created_at, updated_at) "
        "VALUES (:identity, :name, :now, :now) RETURNING id"
    ).columns(column("id", Integer))
    values = {"identity": "jane.doe@example.com|jane doe", "name": "Jane Doe",
              "now": "2026-01-05 10:00:00+00:00"}

    def failing_view():
        if request.param == "through SQLAlchemy":
            db.session.execute(statement, values)
        else:
            converted_rows(db.session.connection(), statement, values)
        return "written"

    app.add_url_rule("/faulty-write", view_func=failing_view)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 and log it, as in production
    return app


def test_a_database_error_is_logged_with_its_statement_and_without_the_patients_details(
    a_fault_writing_a_patient, client, caplog
):
    with caplog.at_level(logging.INFO):
        answer = client.get("/faulty-write")

    assert answer.status_code == 500
    logged = caplog.text
    assert "IntegrityError" in logged
    assert "INSERT INTO patients" in logged
    assert "Jane Doe" not in logged
    assert "jane.doe@example.com" not in logged
    db.session.remove()  # (a server's request ends its session; this test's context does not)
    assert db.session.scalar(select(func.count()).select_from(Patient)) == 0


def test_the_access_log_shows_manage_and_feed_paths_without_their_tokens(
    app, database_url, tmp_path
):
    access_log = tmp_path / "access.log"
    manage_secret = "WzEsImQxZjM4Il0.sEcReT-manage-token"
    feed_secret = "sEcReT-feed-token-0123456789abcdef"

    with running_gunicorn(database_url, workers=1,
                          gunicorn_args=("--access-logfile", str(access_log))) as base_url:
        manage = requests.get(f"{base_url}/manage/{manage_secret}/cancel?x=1", timeout=10)
        feed = requests.get(f"{base_url}/feeds/{feed_secret}.ics", timeout=10)

    assert (manage.status_code, feed.status_code) == (404, 404)
    lines = access_log.read_text()
    assert '"GET /manage/[token]/cancel?x=1 HTTP/1.1" 404' in lines
    assert '"GET /feeds/[token].ics HTTP/1.1" 404' in lines
    assert manage_secret not in lines
    assert feed_secret not in lines


# --- the visit's calendar download -----------------------------------------------------------


def test_the_calendar_download_carries_the_visit_but_no_patient_details(client, book):
    appointment = book(name="Pat Q. Example", email="pat@example.com")
    token = manage_token_for(appointment)

    download = client.get(f"/manage/{token}/appointment.ics")

    assert download.status_code == 200
    body = download.get_data(as_text=True)
    [event] = Calendar.from_ical(body).walk("VEVENT")
    assert str(event["UID"]) == appointment.calendar_uid
    assert str(event["ORGANIZER"]) == "mailto:frontdesk@clinic.example"
    assert "ATTENDEE" not in event
    for private in ("pat@example.com", "Pat Q. Example"):
        assert private not in body


# --- staff passwords -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password1234567", "is too easy to guess (this is similar to a commonly used password)"),
        ("qwertyuiop12", "is too easy to guess"),
        ("jamieleeclinic26", "is too easy to guess"),  # her name and the clinic's word
    ],
)
def test_users_create_refuses_a_common_or_guessable_password_naming_it(app, clinic, password,
                                                                       why):
    answer = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "jamie@clinic.example", "--role", "therapist",
              "--therapist", "jamie-lee", "--password-stdin"],
        input=password + "\n",
    )

    assert answer.exit_code == 2
    assert f"Invalid value for password (stdin): {why}" in answer.output
    assert db.session.scalars(select(StaffUser)).first() is None


def test_the_back_office_refuses_a_password_made_of_the_login_and_clinic_names(app, staff):
    admin = signed_in(app, staff["admin"])

    refused = admin.post(
        "/desk/users",
        data={"email": "jamie@clinic.example", "role": "therapist", "therapist": "jamie-lee",
              "password": "ClinicJamie2026"},
    )

    assert refused.status_code == 422
    assert "Password: is too easy to guess" in refused.get_data(as_text=True)
    assert db.session.scalars(
        select(StaffUser).where(StaffUser.email == "jamie@clinic.example")).first() is None
    made = admin.post(
        "/desk/users",
        data={"email": "jamie@clinic.example", "role": "therapist", "therapist": "jamie-lee",
              "password": "violet tractor under moss"},
    )
    assert made.status_code == 303


# --- the login limit, shared by every worker -------------------------------------------------


def test_the_login_limit_holds_across_two_web_hosts(app, staff, database_url):
    """Two gunicorn servers on one database, as two hosts behind a load balancer: a guesser
    whose tries alternate between them is still stopped after the tenth failure."""
    db.session.commit()
    on = {"RATE_LIMITS": "on"}
    with running_gunicorn(database_url, workers=1, extra_env=on) as host_a, \
            running_gunicorn(database_url, workers=1, extra_env=on) as host_b:
        guessers = []
        for host in (host_a, host_b):
            session = requests.Session()
            page = session.get(f"{host}/desk/login", timeout=10).text
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            guessers.append((host, session, token))

        def sign_in(number, password):
            host, session, token = guessers[number % 2]
            return session.post(
                f"{host}/desk/login", timeout=10,
                data={"email": "admin@clinic.example", "password": password,
                      "csrf_token": token},
            )

        tries = [sign_in(number, f"guess number {number}").status_code for number in range(11)]
        right_password_too_late = sign_in(0, PASSWORD)
        page_still_opens = guessers[1][1].get(f"{host_b}/desk/login", timeout=10).status_code

    assert tries == [401] * 10 + [429]  # RATE_LIMIT_LOGIN: 10 per minute, on any host
    assert right_password_too_late.status_code == 429
    assert "Too many failed sign-ins from here." in right_password_too_late.text
    assert 0 < int(right_password_too_late.headers["Retry-After"]) <= 60
    assert page_still_opens == 200
