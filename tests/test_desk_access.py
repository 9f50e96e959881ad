"""Who gets into the back office, and how far: logins, roles, CSRF, and every URL by role."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from booking.calendars.busy_calendars import add_calendar_upload
from booking.extensions import db
from booking.models import Appointment, AuditEntry, Notification, StaffUser
from tests.conftest import local, next_weekday
from tests.desk_staff import PASSWORD, ROLES, desk_client, signed_in, staff_logins


@pytest.fixture
def staff(clinic):
    return staff_logins()

ANONYMOUS = "anonymous"

# --- the authorization matrix --------------------------------------------------------------

# (endpoint, method, URL arguments, form body, expected status for
#  anonymous, therapist (Alex Rivera), front desk, admin).
# URL arguments written as <name> are filled from the clinic built in `world`.
# An allowed POST with an incomplete form gets 422 and changes nothing; a button-only POST
# (log out, resend, rotate) does its work and redirects with 303.
MATRIX = [
    ("desk.sign_in.login", "GET", {}, None, (200, 302, 302, 302)),
    ("desk.sign_in.login", "POST", {}, {}, (422, 302, 302, 302)),
    ("desk.sign_in.logout", "POST", {}, {}, (302, 303, 303, 303)),
    ("desk.calendar.day", "GET", {}, None, (302, 200, 200, 200)),
    ("desk.calendar.week", "GET", {"slug": "alex-rivera"}, None, (302, 200, 200, 200)),
    ("desk.calendar.week", "GET", {"slug": "jamie-lee"}, None, (302, 403, 200, 200)),
    ("desk.appointments.appointment", "GET", {"appointment_id": "<alex_visit>"}, None,
     (302, 200, 200, 200)),
    ("desk.appointments.appointment", "GET", {"appointment_id": "<jamie_visit>"}, None,
     (302, 403, 200, 200)),
    ("desk.appointments.appointment", "GET", {"appointment_id": 999_999}, None,
     (302, 403, 404, 404)),
    ("desk.appointments.book", "GET", {}, None, (302, 403, 200, 200)),
    ("desk.appointments.book", "POST", {}, {}, (302, 403, 422, 422)),
    ("desk.appointments.move", "POST", {"appointment_id": "<alex_visit>"}, {},
     (302, 403, 422, 422)),
    ("desk.appointments.move", "POST", {"appointment_id": "<jamie_visit>"}, {},
     (302, 403, 422, 422)),
    ("desk.appointments.cancel", "POST", {"appointment_id": "<alex_visit>"}, {},
     (302, 403, 422, 422)),
    ("desk.appointments.cancel", "POST", {"appointment_id": "<jamie_visit>"}, {},
     (302, 403, 422, 422)),
    ("desk.appointments.attendance", "POST", {"appointment_id": "<alex_visit>"}, {},
     (302, 403, 422, 422)),
    ("desk.board.board_page", "GET", {}, None, (302, 200, 200, 200)),
    ("desk.board.board_events", "GET", {}, None, (302, 400, 400, 400)),
    ("desk.board.move", "POST", {"appointment_id": "<alex_visit>"}, {}, (302, 403, 422, 422)),
    ("desk.board.move", "POST", {"appointment_id": "<jamie_visit>"}, {}, (302, 403, 422, 422)),
    ("desk.dashboard.overview", "GET", {}, None, (302, 403, 403, 200)),
    ("desk.no_such_page", "GET", {"unknown": "nothing/here"}, None, (302, 404, 404, 404)),
    ("desk.no_such_page", "POST", {"unknown": "nothing/here"}, {}, (302, 404, 404, 404)),
    ("desk.appointments.undo_attendance", "POST", {"appointment_id": "<alex_visit>"}, {},
     (302, 403, 422, 422)),
    ("desk.patients.patient_list", "GET", {}, None, (302, 403, 200, 200)),
    ("desk.patients.patient", "GET", {"patient_id": "<alex_patient>"}, None, (302, 200, 200, 200)),
    ("desk.patients.patient", "GET", {"patient_id": "<jamie_patient>"}, None, (302, 403, 200, 200)),
    ("desk.patients.patient", "GET", {"patient_id": 999_999}, None, (302, 403, 404, 404)),
    # A message still pending is not sent twice: the resend is refused with a note, 303.
    ("desk.patients.resend", "POST", {"notification_id": "<alex_notification>"}, {},
     (302, 403, 303, 303)),
    # Clearance: a therapist (for the services they offer) or an admin decides; never the
    # front desk. An empty form is refused with 422 and records nothing.
    ("desk.clearances.record", "POST", {"patient_id": "<alex_patient>"}, {},
     (302, 422, 403, 422)),
    ("desk.clearances.record", "POST", {"patient_id": "<jamie_patient>"}, {},
     (302, 403, 403, 422)),
    # The front desk's call lists.
    ("desk.call_lists.follow_ups", "GET", {}, None, (302, 403, 200, 200)),
    ("desk.call_lists.call_backs", "GET", {}, None, (302, 403, 200, 200)),
    ("desk.call_lists.done", "POST", {"item_id": 999_999}, {}, (302, 403, 404, 404)),
    ("desk.hours.schedule", "GET", {"slug": "alex-rivera"}, None, (302, 200, 200, 200)),
    ("desk.hours.schedule", "GET", {"slug": "jamie-lee"}, None, (302, 403, 200, 200)),
    ("desk.hours.weekly_hours", "POST", {"slug": "alex-rivera"}, {"monday": "9-5"},
     (302, 403, 422, 422)),
    ("desk.hours.add_time_off", "POST", {"slug": "alex-rivera"}, {}, (302, 403, 422, 422)),
    ("desk.hours.remove_time_off", "POST", {"slug": "jamie-lee", "time_off_id": 999_999}, {},
     (302, 403, 404, 404)),
    ("desk.logins.users", "GET", {}, None, (302, 403, 403, 200)),
    ("desk.logins.create_login", "POST", {}, {}, (302, 403, 403, 422)),
    ("desk.logins.set_login_active", "POST", {"user_id": 999_999}, {"active": "off"},
     (302, 403, 403, 404)),
    ("desk.audit_log.audit", "GET", {}, None, (302, 403, 403, 200)),
    ("desk.sent_mail.message_list", "GET", {}, None, (302, 403, 403, 200)),
    ("desk.sent_mail.message", "GET", {"filename": "20261202T030000000000Z-notification-1.eml"},
     None, (302, 403, 403, 404)),
    ("desk.sent_mail.message_html", "GET",
     {"filename": "20261202T030000000000Z-notification-1.eml"}, None, (302, 403, 403, 404)),
    ("desk.feeds.feed", "GET", {"slug": "alex-rivera"}, None, (302, 200, 403, 200)),
    ("desk.feeds.feed", "GET", {"slug": "jamie-lee"}, None, (302, 403, 403, 200)),
    ("desk.feeds.rotate_feed", "POST", {"slug": "alex-rivera"}, {}, (302, 303, 403, 303)),
    ("desk.feeds.rotate_feed", "POST", {"slug": "jamie-lee"}, {}, (302, 403, 403, 303)),
    # Busy calendars: any therapist's for the desk, their own for a therapist. Refreshing an
    # uploaded file re-reads it and redirects.
    ("desk.busy_calendars.calendar_list", "GET", {"slug": "alex-rivera"}, None,
     (302, 200, 200, 200)),
    ("desk.busy_calendars.calendar_list", "GET", {"slug": "jamie-lee"}, None, (302, 403, 200, 200)),
    ("desk.busy_calendars.add_by_url", "POST", {"slug": "alex-rivera"}, {},
     (302, 422, 422, 422)),
    ("desk.busy_calendars.add_by_url", "POST", {"slug": "jamie-lee"}, {}, (302, 403, 422, 422)),
    ("desk.busy_calendars.add_upload", "POST", {"slug": "alex-rivera"}, {}, (302, 422, 422, 422)),
    ("desk.busy_calendars.add_upload", "POST", {"slug": "jamie-lee"}, {}, (302, 403, 422, 422)),
    ("desk.busy_calendars.refresh", "POST",
     {"slug": "jamie-lee", "calendar_id": "<jamie_calendar>"}, {}, (302, 403, 303, 303)),
    ("desk.busy_calendars.refresh", "POST",
     {"slug": "alex-rivera", "calendar_id": "<jamie_calendar>"}, {}, (302, 403, 404, 404)),
    ("desk.busy_calendars.replace_form", "GET",
     {"slug": "jamie-lee", "calendar_id": "<jamie_calendar>"}, None, (302, 403, 200, 200)),
    ("desk.busy_calendars.replace", "POST",
     {"slug": "jamie-lee", "calendar_id": "<jamie_calendar>"}, {}, (302, 403, 422, 422)),
    ("desk.busy_calendars.confirm_remove", "GET",
     {"slug": "jamie-lee", "calendar_id": "<jamie_calendar>"}, None, (302, 403, 200, 200)),
    ("desk.busy_calendars.remove", "POST", {"slug": "alex-rivera", "calendar_id": 999_999}, {},
     (302, 403, 404, 404)),
    # Health form answers: therapists (their own visits) and admins, never the front desk.
    # These visits are calls, which ask for no form: a 404 once the role may look.
    ("desk.health_forms.answers", "GET",
     {"appointment_id": "<alex_visit>", "slug": "dry-needling-screening"}, None,
     (302, 404, 403, 404)),
    ("desk.health_forms.answers", "GET",
     {"appointment_id": "<jamie_visit>", "slug": "dry-needling-screening"}, None,
     (302, 403, 403, 404)),
    ("desk.health_forms.reviewed", "POST",
     {"appointment_id": "<alex_visit>", "slug": "dry-needling-screening"}, {},
     (302, 404, 403, 404)),
    ("desk.health_forms.reviewed", "POST",
     {"appointment_id": "<jamie_visit>", "slug": "dry-needling-screening"}, {},
     (302, 403, 403, 404)),
    # The waitlist: the front desk's, with the patients' contact details.
    ("desk.waitlist.waitlist_page", "GET", {}, None, (302, 403, 200, 200)),
    ("desk.waitlist.add_entry", "POST", {}, {}, (302, 403, 422, 422)),
    ("desk.waitlist.remove_entry", "POST", {"entry_id": 999_999}, {}, (302, 403, 404, 404)),
    ("desk.waitlist.offer_by_hand", "POST", {}, {}, (302, 403, 422, 422)),
    # Courses of weekly visits: booked and changed by the desk; a therapist reads their own.
    ("desk.courses.new_course", "GET", {}, None, (302, 403, 200, 200)),
    ("desk.courses.new_course", "POST", {}, {}, (302, 403, 422, 422)),
    ("desk.courses.course", "GET", {"series_id": 999_999}, None, (302, 403, 404, 404)),
    ("desk.courses.move_following", "POST", {"series_id": 999_999}, {}, (302, 403, 404, 404)),
    ("desk.courses.cancel_following", "POST", {"series_id": 999_999}, {},
     (302, 403, 404, 404)),
    ("desk.courses.add_visits", "POST", {"series_id": 999_999}, {}, (302, 403, 404, 404)),
    ("desk.courses.authorisation", "POST", {"series_id": 999_999}, {}, (302, 403, 404, 404)),
]


@pytest.fixture
def world(staff, book):
    """A visit with each therapist, for two different patients."""
    day = next_weekday(1)
    alex_visit = book(start=local(day, 9), therapist="alex-rivera", name="Ana Alvarez",
                      email="ana@example.com")
    jamie_visit = book(start=local(day, 10), therapist="jamie-lee", name="Ben Brooks",
                       email="ben@example.com")
    notification = db.session.scalars(
        select(Notification).where(Notification.appointment_id == alex_visit.id)
    ).first()
    jamie_calendar = add_calendar_upload(
        jamie_visit.therapist,
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nEND:VCALENDAR\r\n",
        name="Jamie's rota",
    )
    db.session.commit()
    return {
        "alex_visit": alex_visit.id,
        "jamie_visit": jamie_visit.id,
        "alex_patient": alex_visit.patient_id,
        "jamie_patient": jamie_visit.patient_id,
        "alex_notification": notification.id,
        "jamie_calendar": jamie_calendar.id,
        "staff": staff,
    }


def test_the_matrix_covers_every_back_office_route(app):
    routes = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("desk.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {(endpoint, method) for endpoint, method, *_ in MATRIX}


def test_every_route_answers_each_role_as_the_matrix_says(app, world):
    answers = []
    for endpoint, method, arguments, body, expected in MATRIX:
        filled = {
            name: world[value[1:-1]] if isinstance(value, str) and value.startswith("<")
            else value
            for name, value in arguments.items()
        }
        with app.test_request_context():
            from flask import url_for

            url = url_for(endpoint, **filled)
        for who, status in zip((ANONYMOUS, *ROLES), expected, strict=True):
            client = signed_in(app, None if who == ANONYMOUS else world["staff"][who])
            response = client.open(url, method=method, data=body)
            answers.append((url, method, who, response.status_code, status))
            if who == ANONYMOUS and status == 302:
                assert response.headers["Location"].startswith("/desk/login?next=")
    wrong = [answer for answer in answers if answer[3] != answer[4]]
    assert wrong == []
    # The incomplete forms changed nothing.
    assert db.session.get(Appointment, world["alex_visit"]).status == "confirmed"


def test_a_therapist_guessing_ids_sees_nothing_of_another_therapists_patients(app, world):
    client = signed_in(app, world["staff"]["therapist"])
    own = client.get(f"/desk/patients/{world['alex_patient']}")
    assert own.status_code == 200
    assert "Ana Alvarez" in own.get_data(as_text=True)
    for patient_id in range(1, 40):
        if patient_id == world["alex_patient"]:
            continue
        page = client.get(f"/desk/patients/{patient_id}")
        assert page.status_code == 403
        assert "Ben Brooks" not in page.get_data(as_text=True)
    for appointment_id in range(1, 40):
        if appointment_id == world["alex_visit"]:
            continue
        assert client.get(f"/desk/appointments/{appointment_id}").status_code == 403
    # Alex's own day shows Alex's column only.
    day = client.get(f"/desk/?day={next_weekday(1).isoformat()}").get_data(as_text=True)
    assert "Ana Alvarez" in day
    assert "Ben Brooks" not in day
    assert "Jamie Lee" not in day


def test_a_therapist_reads_their_own_visit_and_hours_without_the_desks_buttons(app, world):
    client = signed_in(app, world["staff"]["therapist"])
    visit = client.get(f"/desk/appointments/{world['alex_visit']}").get_data(as_text=True)
    assert "Ana Alvarez" in visit
    assert "Move the visit" not in visit
    assert "Cancel the visit" not in visit
    hours = client.get("/desk/therapists/alex-rivera/schedule").get_data(as_text=True)
    assert "08:00-12:00, 13:00-17:00" in hours
    assert "Save the hours" not in hours
    desk = signed_in(app, world["staff"]["front_desk"])
    assert "Move the visit" in desk.get(f"/desk/appointments/{world['alex_visit']}").get_data(
        as_text=True
    )


# --- logging in ----------------------------------------------------------------------------


def test_staff_log_in_with_email_and_password_and_out_again(app, staff):
    client = desk_client(app)
    assert client.get("/desk/").headers["Location"] == "/desk/login?next=%2Fdesk%2F"
    answer = client.post(
        "/desk/login",
        data={"email": "Desk@Clinic.example ", "password": PASSWORD, "next": "/desk/patients"},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/desk/patients"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert client.get("/desk/patients").status_code == 200
    out = client.post("/desk/logout")
    assert out.status_code == 303
    assert client.get("/desk/patients").status_code == 302


@pytest.mark.parametrize(
    ("email", "password"),
    [("desk@clinic.example", "wrong password!"), ("nobody@clinic.example", PASSWORD)],
)
def test_a_wrong_email_or_password_gets_the_same_answer(app, staff, email, password):
    answer = desk_client(app).post("/desk/login", data={"email": email, "password": password})
    assert answer.status_code == 401
    assert "That email and password do not match." in answer.get_data(as_text=True)


def test_a_deactivated_login_cannot_log_in_or_stay_in(app, staff):
    client = signed_in(app, staff["front_desk"])
    assert client.get("/desk/").status_code == 200
    staff["front_desk"].active = False
    db.session.commit()
    assert client.get("/desk/").status_code == 302
    answer = desk_client(app).post(
        "/desk/login", data={"email": "desk@clinic.example", "password": PASSWORD}
    )
    assert answer.status_code == 401


def test_the_login_page_sends_nobody_to_another_site(app, staff):
    answer = desk_client(app).post(
        "/desk/login",
        data={"email": "desk@clinic.example", "password": PASSWORD,
              "next": "//evil.example/desk/"},
    )
    assert answer.headers["Location"] == "/desk/"


@pytest.fixture
def limited_login(app_settings):
    app_settings.update(RATELIMIT_ENABLED=True, RATE_LIMIT_LOGIN="3 per minute")


@pytest.mark.usefixtures("limited_login")
def test_guessing_passwords_is_slowed_to_the_login_limit(app, staff):
    client = desk_client(app)
    tries = [
        client.post("/desk/login", data={"email": "admin@clinic.example", "password": "guess"})
        for _ in range(4)
    ]
    assert [answer.status_code for answer in tries] == [401, 401, 401, 429]
    # Reading the page is not limited.
    assert client.get("/desk/login").status_code == 200


# --- CSRF ----------------------------------------------------------------------------------


@pytest.fixture
def csrf_on(app_settings):
    app_settings["WTF_CSRF_ENABLED"] = True


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


@pytest.mark.usefixtures("csrf_on")
def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(app, world):
    client = desk_client(app)
    assert client.post(
        "/desk/login", data={"email": "desk@clinic.example", "password": PASSWORD}
    ).status_code == 400
    token = _csrf_token(client.get("/desk/login").get_data(as_text=True))
    assert client.post(
        "/desk/login",
        data={"email": "desk@clinic.example", "password": PASSWORD, "csrf_token": token},
    ).status_code == 303

    url = f"/desk/appointments/{world['alex_visit']}/cancel"
    refused = client.post(url, data={"reason": "forged"})
    assert refused.status_code == 400
    db.session.rollback()
    assert db.session.get(Appointment, world["alex_visit"]).status == "confirmed"

    page = client.get(f"/desk/appointments/{world['alex_visit']}").get_data(as_text=True)
    done = client.post(url, data={"reason": "patient called", "csrf_token": _csrf_token(page)})
    assert done.status_code == 303
    db.session.rollback()
    assert db.session.get(Appointment, world["alex_visit"]).status == "cancelled"


def test_back_office_pages_are_not_kept_in_caches(app, staff):
    page = signed_in(app, staff["front_desk"]).get("/desk/patients")
    assert page.headers["Cache-Control"] == "no-store"


# --- logins, from the page and the command line ---------------------------------------------


def test_an_admin_makes_a_therapist_login_and_switches_it_off_again(app, staff):
    admin = signed_in(app, staff["admin"])
    refused = admin.post(
        "/desk/users",
        data={"email": "jamie@clinic.example", "role": "therapist", "therapist": "",
              "password": "a long enough secret"},
    )
    assert refused.status_code == 422
    assert "Therapist (for a therapist login): a therapist login needs a therapist" in (
        refused.get_data(as_text=True)
    )
    made = admin.post(
        "/desk/users",
        data={"email": "jamie@clinic.example", "role": "therapist", "therapist": "jamie-lee",
              "password": "a long enough secret"},
    )
    assert made.status_code == 303
    jamie = db.session.scalars(
        select(StaffUser).where(StaffUser.email == "jamie@clinic.example")
    ).one()
    client = desk_client(app)
    assert client.post(
        "/desk/login", data={"email": "jamie@clinic.example", "password": "a long enough secret"}
    ).status_code == 303
    assert client.get("/desk/therapists/jamie-lee/week").status_code == 200
    assert client.get("/desk/therapists/alex-rivera/week").status_code == 403

    assert admin.post(f"/desk/users/{jamie.id}/active", data={"active": "off"}).status_code == 303
    assert client.get("/desk/therapists/jamie-lee/week").status_code == 302
    own = admin.post(f"/desk/users/{staff['admin'].id}/active", data={"active": "off"})
    assert own.status_code == 409
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["login_created", "login_deactivated"]



def test_users_create_makes_a_login_that_works(app, clinic):
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=["users", "create", "--email", "Jamie@Clinic.example", "--role", "therapist",
              "--therapist", "jamie-lee", "--password-stdin"],
        input="a long enough secret\n",
    )
    assert made.exit_code == 0, made.output
    assert made.output == "Created the therapist login jamie@clinic.example for Jamie Lee, PT.\n"
    user = db.session.scalars(select(StaffUser)).one()
    assert user.password_hash.startswith("$argon2id$")
    assert "a long enough secret" not in user.password_hash
    answer = desk_client(app).post(
        "/desk/login", data={"email": "jamie@clinic.example", "password": "a long enough secret"}
    )
    assert answer.status_code == 303


@pytest.mark.parametrize(
    ("arguments", "password", "message"),
    [
        (["--role", "therapist"], "a long enough secret",
         "Invalid value for --therapist: a therapist login needs a therapist"),
        (["--role", "therapist", "--therapist", "sam-nobody"], "a long enough secret",
         "Invalid value for --therapist: there is no therapist 'sam-nobody'"),
        (["--role", "front_desk", "--therapist", "jamie-lee"], "a long enough secret",
         "Invalid value for --therapist: only a therapist login names a therapist"),
        (["--role", "front_desk"], "short",
         "Invalid value for password (stdin): must be at least 12 characters"),
        (["--role", "boss"], "a long enough secret", "Invalid value for '--role'"),
    ],
)
def test_users_create_refuses_bad_input_naming_the_option(app, clinic, arguments, password,
                                                          message):
    answer = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "x@clinic.example", *arguments, "--password-stdin"],
        input=password + "\n",
    )
    assert answer.exit_code == 2
    assert message in answer.output
    assert db.session.scalars(select(StaffUser)).first() is None


def test_users_create_refuses_a_second_login_with_the_same_email(app, staff):
    answer = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "ADMIN@clinic.example", "--role", "admin",
              "--password-stdin"],
        input="a long enough secret\n",
    )
    assert answer.exit_code == 2
    assert "admin@clinic.example already has a login" in answer.output


def test_a_visitor_without_cookies_is_given_none_and_signing_out_clears_the_session(app, staff):
    """The session cookie is written only when there is something in it, and taken back on
    signing out; every answer that looked at the session says it varies with the cookie."""
    api_answer = desk_client(app).get("/api/v1/services")
    page = desk_client(app).get("/desk/login")
    assert "Set-Cookie" not in api_answer.headers
    assert "Set-Cookie" not in page.headers
    assert api_answer.headers["Vary"] == "Cookie"
    client = signed_in(app, staff["front_desk"])
    assert client.get("/desk/patients").status_code == 200
    out = client.post("/desk/logout")
    assert out.headers["Set-Cookie"].startswith("session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert out.headers.get_all("Vary") == ["Cookie"]
    assert client.get("/desk/patients").status_code == 302
