"""Every route, read from the app's URL map: forged forms are refused, the back office needs a
login, and every answer carries the security headers.

The lists below classify each route by hand. A route missing from them fails
test_every_route_is_classified, so a new route cannot slip past these checks unnoticed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import url_for
from sqlalchemy import select

from booking.calendars.busy_calendars import add_calendar_upload
from booking.calendars.feed_tokens import feed_token_for
from booking.extensions import db
from booking.models import Notification, TimeOff, utc_now
from booking.patients.manage_links import manage_token_for
from tests.conftest import local, next_weekday
from tests.desk_staff import signed_in, staff_logins

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# Routes that change something and check the form's CSRF token (400 without it).
CSRF_CHECKED = {
    "public.visit_details",
    "public.manage.cancel",
    "public.manage.reschedule",
    "public.manage.check_in",
    "desk.sign_in.login",
    "desk.sign_in.logout",
    "desk.no_such_page",  # changes nothing, but a POST is checked like any other
    "desk.appointments.book",
    "desk.appointments.move",
    "desk.appointments.cancel",
    "desk.appointments.attendance",
    "desk.appointments.undo_attendance",
    "desk.board.move",
    "desk.patients.resend",
    "desk.hours.weekly_hours",
    "desk.hours.add_time_off",
    "desk.hours.remove_time_off",
    "desk.logins.create_login",
    "desk.logins.set_login_active",
    "desk.feeds.rotate_feed",
    "desk.busy_calendars.add_by_url",
    "desk.busy_calendars.add_upload",
    "desk.busy_calendars.refresh",
    "desk.busy_calendars.replace",
    "desk.busy_calendars.remove",
    "desk.clearances.record",
    "desk.call_lists.done",
    "desk.health_forms.reviewed",
    "public.health_forms.health_form",
    "desk.waitlist.add_entry",
    "desk.waitlist.remove_entry",
    "desk.waitlist.offer_by_hand",
    "desk.courses.new_course",
    "desk.courses.move_following",
    "desk.courses.cancel_following",
    "desk.courses.add_visits",
    "desk.courses.authorisation",
    "public.waitlist.join",
    "public.waitlist.leave",
    "public.offers.claim",
}
# Routes that change something without a CSRF token, and why that is safe.
CSRF_EXEMPT = {
    "api.book": "JSON API: takes no cookies, so a forged cross-site request gains nothing; "
    "booking is open to anyone by design (and rate limited)",
    "api.cancel": "JSON API: no cookies; needs the visit's manage token in Authorization",
    "api.reschedule": "JSON API: no cookies; needs the visit's manage token in Authorization",
    "api.book_series": "JSON API: no cookies, and open to anyone by design, as api.book",
    "api.staff.record_clearance_decision": "staff API: no cookies; needs a staff login's token "
    "in Authorization",
    "api.sign_form": "JSON API: no cookies; needs the visit's manage token in Authorization",
    "api.join_waitlist": "JSON API: no cookies; joining is open to anyone (and rate limited)",
    "api.leave_waitlist": "JSON API: no cookies; needs the entry's token in Authorization",
    "api.claim_offer": "JSON API: no cookies; needs the offer's secret token in the path",
}
# Routes outside /desk: open to anyone, each for a reason. Every /desk route needs a login
# except these.
OPEN_TO_ANYONE = {
    "public.choose_service": "the booking pages",
    "public.choose_time": "the booking pages",
    "public.visit_details": "the booking pages",
    "public.manage.show": "the holder of a signed manage token",
    "public.manage.confirmation": "the holder of a signed manage token",
    "public.manage.calendar": "the holder of a signed manage token",
    "public.manage.cancel": "the holder of a signed manage token",
    "public.manage.reschedule": "the holder of a signed manage token",
    "public.manage.check_in": "the holder of a signed manage token",
    "public.health_forms.health_form": "the holder of a signed manage token",
    "api.list_services": "public JSON API",
    "api.list_therapists": "public JSON API",
    "api.availability": "public JSON API",
    "api.openapi": "public JSON API",
    "api.book": "public JSON API",
    "api.show_appointment": "JSON API, with the manage token",
    "api.staff.day_appointments": "staff API, with a staff login's token (401 without)",
    "api.staff.record_clearance_decision": "staff API, with a staff login's token (401 without)",
    "api.cancel": "JSON API, with the manage token",
    "api.reschedule": "JSON API, with the manage token",
    "api.book_series": "public JSON API",
    "api.show_series": "JSON API, with the series' manage token",
    "api.visit_forms": "JSON API, with the manage token",
    "api.sign_form": "JSON API, with the manage token",
    "public.waitlist.join": "the booking pages: joining the waitlist",
    "public.waitlist.entry": "the holder of a waitlist entry's secret token",
    "public.waitlist.leave": "the holder of a waitlist entry's secret token",
    "public.offers.show": "the holder of an offer's secret token (from its mail)",
    "public.offers.claim": "the holder of an offer's secret token (from its mail)",
    "api.join_waitlist": "public JSON API",
    "api.show_waitlist_entry": "JSON API, with the entry's token",
    "api.leave_waitlist": "JSON API, with the entry's token",
    "api.claim_offer": "JSON API, with the offer's secret token",
    "api.staff.staff_waitlist": "staff API, with a staff login's token (401 without)",
    "feeds.calendar_feed": "the holder of a secret feed token",
    "healthz": "load balancers and monitoring",
    "static": "style sheets and scripts",
}
DESK_WITHOUT_LOGIN = {"desk.sign_in.login"}

# A plausible form for any of the routes: were the token not missing, most would act on it.
FORGED_FORM = {
    "reason": "forged", "email": "new@clinic.example", "password": "a long enough secret",
    "role": "admin", "active": "off", "outcome": "arrived", "monday": "09:00-17:00",
    "name": "Forged Patient", "phone": "+1 586 555 0100", "visit_for": "me",
    "service": "schedule-a-call", "therapist": "alex-rivera", "url": "https://example.com/a.ics",
}


def _routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


@pytest.fixture
def world(clinic, book):
    """A visit, its patient and message, a busy calendar and time off: real ids for URLs."""
    staff = staff_logins()
    day = next_weekday(1)
    visit = book(start=local(day, 9), therapist="alex-rivera")
    calendar = add_calendar_upload(
        visit.therapist,
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nEND:VCALENDAR\r\n",
        name="Alex's rota",
    )
    later = utc_now().replace(tzinfo=None, microsecond=0) + timedelta(days=20)
    time_off = TimeOff(
        therapist_id=visit.therapist_id, reason="Course",
        starts_local=later, ends_local=later + timedelta(days=1),
    )
    db.session.add(time_off)
    db.session.commit()
    notification = db.session.scalars(
        select(Notification).where(Notification.appointment_id == visit.id)
    ).first()
    return {
        "values": {
            "appointment_id": visit.id,
            "series_id": 1,  # no series is booked: its routes answer 404, with the headers
            "patient_id": visit.patient_id,
            "notification_id": notification.id,
            "calendar_id": calendar.id,
            "time_off_id": time_off.id,
            "user_id": staff["front_desk"].id,
            "slug": "alex-rivera",
            "service_slug": "schedule-a-call",
            "form": "dry-needling-screening",
            "token": manage_token_for(visit),
            "entry_id": 999_999,
            "filename": "site.css",
            "item_id": 999_999,
            "unknown": "no-such-page",
        },
        "feed_token": feed_token_for(visit.therapist),
        "admin": staff["admin"],
        "start": local(next_weekday(0), 10).isoformat(),
    }


def _url(app, rule, values: dict, **query) -> str:
    arguments = {name: values[name] for name in rule.arguments}
    with app.test_request_context():
        return url_for(rule.endpoint, **arguments, **query)


def _everything_stored() -> dict:
    """Every row of every table, to show that a refused request changed nothing."""
    db.session.rollback()  # SQLite: see what the requests wrote, not this session's snapshot
    return {
        table.name: sorted(repr(tuple(row)) for row in db.session.execute(table.select()))
        for table in db.metadata.sorted_tables
    }


def test_every_route_is_classified(app):
    unsafe = {rule.endpoint for rule, method in _routes(app) if method in UNSAFE_METHODS}
    assert unsafe - CSRF_CHECKED - CSRF_EXEMPT.keys() == set(), "classify these"
    assert CSRF_CHECKED.isdisjoint(CSRF_EXEMPT)
    everything = {rule.endpoint for rule, _ in _routes(app)}
    outside_desk = {endpoint for endpoint in everything if not endpoint.startswith("desk.")}
    assert outside_desk - OPEN_TO_ANYONE.keys() == set(), "classify these"
    # The lists name no route that is gone (a renamed route must be classified again).
    listed = CSRF_CHECKED | CSRF_EXEMPT.keys() | OPEN_TO_ANYONE.keys() | DESK_WITHOUT_LOGIN
    assert listed - everything == set()


@pytest.fixture
def csrf_on(app_settings):
    app_settings["WTF_CSRF_ENABLED"] = True


@pytest.mark.usefixtures("csrf_on")
def test_a_state_changing_request_without_a_csrf_token_is_refused_and_changes_nothing(
    app, world
):
    before = _everything_stored()
    answers = {}
    for rule, method in _routes(app):
        if method not in UNSAFE_METHODS or rule.endpoint in CSRF_EXEMPT:
            continue
        # Signed in as an admin, who may do everything: the missing token is all that is wrong.
        client = signed_in(app, world["admin"])
        url = _url(app, rule, world["values"])
        form = {**FORGED_FORM, "start": world["start"]}
        answers[rule.endpoint] = client.open(url, method=method, data=form).status_code
    assert answers == dict.fromkeys(CSRF_CHECKED, 400)
    assert _everything_stored() == before


@pytest.mark.usefixtures("csrf_on")
def test_the_json_api_changes_things_without_a_csrf_token_only_by_its_own_rules(app, world):
    client = app.test_client()
    appointment = world["values"]["appointment_id"]
    # No cookie helps: without the manage token the visit cannot be touched.
    signed_in(app, world["admin"])  # a staff session elsewhere gives the API nothing
    refused = client.post(f"/api/v1/appointments/{appointment}/cancel")
    assert refused.status_code == 404
    assert refused.json["error"]["code"] == "not_found"
    cancelled = client.post(
        f"/api/v1/appointments/{appointment}/cancel",
        headers={"Authorization": f"Bearer {world['values']['token']}"},
    )
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"


def test_every_back_office_route_needs_a_login(app, world):
    answers = {}
    for rule, method in _routes(app):
        if not rule.endpoint.startswith("desk.") or rule.endpoint in DESK_WITHOUT_LOGIN:
            continue
        url = _url(app, rule, world["values"])
        answer = app.test_client().open(url, method=method, data=FORGED_FORM)
        answers[(rule.endpoint, method)] = (
            answer.status_code, answer.headers.get("Location", "").split("?")[0]
        )
    assert answers, "the back office has routes"
    assert set(answers.values()) == {(302, "/desk/login")}, answers


SECURITY_HEADERS = {
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
}


def test_every_answer_carries_the_security_headers(app, world):
    client = app.test_client()
    urls = [_url(app, rule, world["values"]) for rule, method in _routes(app) if method == "GET"]
    urls += [
        f"/feeds/{world['feed_token']}.ics",  # a real feed, not only its 404
        "/no/such/page",
        "/api/v1/no-such-thing",
        "/static/no-such-file.css",
    ]
    answers = [(url, client.get(url)) for url in urls]
    answers.append(("DELETE /api/v1/services", client.delete("/api/v1/services")))
    answers.append(("POST /api/v1/appointments, too big", client.post(
        "/api/v1/appointments", data="x" * (app.config["MAX_CONTENT_LENGTH"] + 1),
        content_type="application/json",
    )))
    for _, answer in answers:
        answer.close()  # static files are sent from an open file
    statuses = {answer.status_code for _, answer in answers}
    assert {200, 302, 404, 405, 413} <= statuses
    missing = {
        url: sorted(SECURITY_HEADERS - set(answer.headers.keys()))
        for url, answer in answers
        if not set(answer.headers.keys()) >= SECURITY_HEADERS
    }
    assert missing == {}
    assert {answer.headers["X-Content-Type-Options"] for _, answer in answers} == {"nosniff"}
    assert {answer.headers["X-Frame-Options"] for _, answer in answers} == {"DENY"}
