"""The manage link's pages, /manage/<token>: see a visit, add it to a calendar, cancel it
(a POST after a confirmation step: mail scanners follow links) or move it.

The signed token is the only key; a wrong or expired one gets the same 404 as no visit.
"""

from __future__ import annotations

from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from booking import scheduling
from booking.calendars.ical import calendar_file
from booking.clinic.reference import current_clinic, zone_named
from booking.extensions import limiter
from booking.models import Appointment, AppointmentStatus, utc_now
from booking.patients.health_forms import visit_forms
from booking.patients.manage_links import appointment_for_token
from booking.public.forms import (
    CancelVisitForm,
    RescheduleVisitForm,
    day_from_query,
    parse_start,
    week_from_query,
)
from booking.public.problems import PageProblem, problem_page
from booking.public.week_of_times import (
    day_label,
    google_calendar_link,
    nearest_free_times,
    time_label,
    week_of_free_times,
)
from booking.web.requests import writing

manage = Blueprint("manage", __name__, url_prefix="/manage")

# Cancelling and moving share one count per client.
_MANAGE_ACTION = limiter.shared_limit(
    lambda: current_app.config["RATE_LIMIT_MANAGE"], scope="manage", methods=["POST"]
)


def _appointment_for(token: str) -> Appointment:
    appointment = appointment_for_token(token)
    if appointment is None:
        abort(404)
    return appointment


def changeable_online(appointment: Appointment, now: datetime) -> bool:
    """Whether to offer cancel and reschedule; scheduling still has the last word."""
    return appointment.status == AppointmentStatus.CONFIRMED and appointment.start_at > now


def _visit_page(template: str, token: str, appointment: Appointment, **extra):
    clinic = current_clinic()
    return render_template(
        template, clinic=clinic, appointment=appointment, token=token,
        changeable=changeable_online(appointment, utc_now()),
        google_link=google_calendar_link(appointment, clinic),
        zone=zone_named(clinic.timezone), **extra,
    )


@manage.get("/<token>")
def show(token: str):
    appointment = _appointment_for(token)
    return _visit_page("public/manage.html", token, appointment,
                       health_forms=visit_forms(appointment))


@manage.get("/<token>/confirmation")
def confirmation(token: str):
    return _visit_page("public/confirmation.html", token, _appointment_for(token))


@manage.get("/<token>/appointment.ics")
def calendar(token: str):
    appointment = _appointment_for(token)
    method = "CANCEL" if appointment.status == AppointmentStatus.CANCELLED else "REQUEST"
    body = calendar_file(appointment, current_clinic(), method=method, now=utc_now())
    return Response(
        body, mimetype="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="visit.ics"',
                 "Cache-Control": "no-store"},
    )


@manage.route("/<token>/cancel", methods=["GET", "POST"])
@_MANAGE_ACTION
def cancel(token: str):
    if request.method == "POST":
        return _cancel_visit(token)
    return _visit_page("public/cancel.html", token, _appointment_for(token),
                       form=CancelVisitForm())


@writing
def _cancel_visit(token: str):
    appointment = _appointment_for(token)
    form = CancelVisitForm()
    if not form.validate_on_submit():
        return _visit_page("public/cancel.html", token, appointment, form=form), 400
    try:
        scheduling.cancel_appointment(appointment, cancelled_by="patient")
    except scheduling.AppointmentNotChangeable:
        return _cannot_change(token)
    flash("Your visit is cancelled. An email to confirm it is on its way.")
    return redirect(url_for(".show", token=token), 303)


@manage.route("/<token>/reschedule", methods=["GET", "POST"])
@_MANAGE_ACTION
def reschedule(token: str):
    if request.method == "POST":
        return _reschedule_visit(token)
    return _reschedule_page(token, _appointment_for(token), RescheduleVisitForm())


@writing
def _reschedule_visit(token: str):
    appointment = _appointment_for(token)
    form = RescheduleVisitForm()
    if not form.validate_on_submit():
        return _reschedule_page(token, appointment, form), 400
    start = parse_start(form.start.data)
    if start is None:
        raise PageProblem(400, "Choose a time", "Start: please choose a time from the list.",
                          field="start", back_url=url_for(".reschedule", token=token))
    zone = zone_named(current_clinic().timezone)
    try:
        scheduling.reschedule_appointment(appointment, start, changed_by="patient")
    except scheduling.SlotUnavailable as refusal:
        nearest = nearest_free_times(
            appointment.service, start, zone, utc_now(),
            therapist_slug=appointment.therapist.slug,
        )
        return _visit_page("public/reschedule.html", token, appointment, form=form,
                           wanted=start, refusal=refusal.reason, nearest=nearest), 409
    except scheduling.AppointmentNotChangeable:
        return _cannot_change(token)
    moved_to = f"{day_label(start.astimezone(zone).date())} at {time_label(start.astimezone(zone))}"
    flash(f"Your visit is moved to {moved_to}. An email to confirm it is on its way.")
    return redirect(url_for(".show", token=token), 303)


def _reschedule_page(token: str, appointment: Appointment, form: RescheduleVisitForm):
    week = week_of_free_times(
        appointment.service, zone_named(current_clinic().timezone), utc_now(),
        first_day=week_from_query(), therapist_slug=appointment.therapist.slug,
        open_day=day_from_query(),
    )
    return _visit_page(
        "public/reschedule.html", token, appointment, form=form, week=week,
        week_url=lambda first_day, open_day=None: url_for(
            ".reschedule", token=token, week=first_day.isoformat(),
            day=open_day.isoformat() if open_day else None),
    )


def _cannot_change(token: str):
    clinic = current_clinic()
    return problem_page(
        409, "This visit can no longer be changed online",
        f"It has been cancelled or has already started. Please call the clinic on {clinic.phone}.",
        back_url=url_for(".show", token=token),
    )
