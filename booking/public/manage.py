"""The manage link's pages, /manage/<token>: see a visit, add it to a calendar, cancel it
(a POST after a confirmation step: mail scanners follow links) or move it, and after dry
needling answer the check-in (the page asks; only its POST records).

A series' link (its own token) shows every visit of the series, each with its status, and
leads to each visit's own pages to move or cancel it, or to cancel it and the later ones.

The signed token is the only key; a wrong or expired one gets the same 404 as no visit.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from flask_babel import gettext as _
from flask_babel import ngettext
from pydantic import ValidationError

from booking import scheduling
from booking.calendars.ical import calendar_file, calendar_file_of_visits
from booking.clinic.reference import current_clinic, zone_named
from booking.extensions import limiter
from booking.models import Appointment, AppointmentSeries, AppointmentStatus, utc_now
from booking.patients.check_in import CheckInAnswers
from booking.patients.details import NOTES_MAX
from booking.patients.health_forms import visit_forms
from booking.patients.manage_links import (
    appointment_for_token,
    manage_token_for,
    series_for_token,
    series_token_for,
)
from booking.public.forms import (
    CancelVisitForm,
    CheckInForm,
    RescheduleVisitForm,
    day_from_query,
    parse_start,
    week_from_query,
)
from booking.public.problems import PageProblem, clearance_required_page, problem_page
from booking.public.week_of_times import (
    day_label,
    google_calendar_link,
    nearest_free_times,
    time_label,
    week_of_free_times,
)
from booking.scheduling import check_ins
from booking.web.requests import writing

manage = Blueprint("manage", __name__, url_prefix="/manage")

# Cancelling, moving, the check-in and signing a health form share one count per client.
MANAGE_ACTION_LIMIT = limiter.shared_limit(
    lambda: current_app.config["RATE_LIMIT_MANAGE"], scope="manage", methods=["POST"]
)


def appointment_for_link(token: str) -> Appointment:
    """The visit this manage link opens, or a 404."""
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
        zone=zone_named(clinic.timezone), in_series=_place_in_series(appointment), **extra,
    )


@dataclass(frozen=True)
class SeriesVisit:
    """One visit of a series as its page lists it: its number, and its own manage token."""

    appointment: Appointment
    number: int
    token: str
    changeable: bool


@dataclass(frozen=True)
class PlaceInSeries:
    """Where a visit stands in its series: "visit 3 of 6", and the visits from it on that a
    cancellation of "this and the following" would cancel."""

    series_token: str
    number: int
    total: int
    following: list[SeriesVisit]


def _series_visits(series: AppointmentSeries) -> list[SeriesVisit]:
    now = utc_now()
    return [
        SeriesVisit(visit, number, manage_token_for(visit), changeable_online(visit, now))
        for number, visit in enumerate(scheduling.series_visits(series), start=1)
    ]


def _place_in_series(appointment: Appointment) -> PlaceInSeries | None:
    if appointment.series is None:
        return None
    visits = _series_visits(appointment.series)
    [number] = [visit.number for visit in visits if visit.appointment.id == appointment.id]
    following = [
        visit for visit in visits[number - 1:]
        if visit.appointment.status == AppointmentStatus.CONFIRMED
    ]
    return PlaceInSeries(series_token_for(appointment.series), number, len(visits), following)


def _series_page(template: str, token: str, series: AppointmentSeries, **extra):
    clinic = current_clinic()
    visits = _series_visits(series)
    return render_template(
        template, clinic=clinic, series=series, token=token, visits=visits,
        first=visits[0].appointment, zone=zone_named(clinic.timezone),
        live=[visit for visit in visits if visit.appointment.is_live],
        changeable=[visit for visit in visits if visit.changeable], **extra,
    )


def _after_change(token: str, appointment: Appointment):
    """Back to the series' page for a visit of a series, else to the visit's own page."""
    if appointment.series is not None:
        return redirect(url_for(".show", token=series_token_for(appointment.series)), 303)
    return redirect(url_for(".show", token=token), 303)


@manage.get("/<token>")
def show(token: str):
    series = series_for_token(token)
    if series is not None:
        return _series_page("public/manage_series.html", token, series)
    appointment = appointment_for_link(token)
    return _visit_page("public/manage.html", token, appointment,
                       health_forms=visit_forms(appointment))


@manage.get("/<token>/confirmation")
def confirmation(token: str):
    series = series_for_token(token)
    if series is not None:
        return _series_page("public/series_confirmation.html", token, series)
    return _visit_page("public/confirmation.html", token, appointment_for_link(token))


@manage.get("/<token>/appointment.ics")
def calendar(token: str):
    series = series_for_token(token)
    if series is not None:
        return _series_calendar(series)
    appointment = appointment_for_link(token)
    method = "CANCEL" if appointment.status == AppointmentStatus.CANCELLED else "REQUEST"
    body = calendar_file(appointment, current_clinic(), method=method, now=utc_now(),
                         patient_as_attendee=False)
    return Response(
        body, mimetype="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="visit.ics"',
                 "Cache-Control": "no-store"},
    )


def _series_calendar(series: AppointmentSeries):
    """Every visit still to take place, one event each (each its own UID, as in the mail)."""
    visits = scheduling.series_visits(series)
    live = [visit for visit in visits if visit.is_live]
    body = calendar_file_of_visits(
        live or visits, current_clinic(), method="REQUEST" if live else "CANCEL",
        now=utc_now(), patient_as_attendee=False,
    )
    return Response(
        body, mimetype="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="visits.ics"',
                 "Cache-Control": "no-store"},
    )


# "this": the visit alone; "following": it and every later visit of its series.
CANCEL_SCOPES = ("this", "following")


def _cancel_scope(token: str, appointment: Appointment, scope: str) -> str:
    if scope not in CANCEL_SCOPES or (scope == "following" and appointment.series is None):
        raise PageProblem(
            400, _("Choose what to cancel"),
            _("Scope: choose this visit, or this visit and the following ones. Nothing was "
              "cancelled."),
            field="scope", back_url=url_for(".show", token=token),
        )
    return scope


@manage.route("/<token>/cancel", methods=["GET", "POST"])
@MANAGE_ACTION_LIMIT
def cancel(token: str):
    if request.method == "POST":
        return _cancel_visit(token)
    appointment = appointment_for_link(token)
    scope = _cancel_scope(token, appointment, request.args.get("scope", "this"))
    return _visit_page("public/cancel.html", token, appointment, form=CancelVisitForm(),
                       scope=scope)


@writing
def _cancel_visit(token: str):
    appointment = appointment_for_link(token)
    form = CancelVisitForm()
    scope = _cancel_scope(token, appointment, request.form.get("scope", "this"))
    if not form.validate_on_submit():
        return _visit_page("public/cancel.html", token, appointment, form=form,
                           scope=scope), 400
    try:
        if scope == "following":
            cancelled = scheduling.cancel_following(appointment, cancelled_by="patient")
        else:
            cancelled = [scheduling.cancel_appointment(appointment, cancelled_by="patient")]
    except scheduling.AppointmentNotChangeable:
        return _cannot_change(token)
    if len(cancelled) == 1:
        flash(_("Your visit is cancelled. An email to confirm it is on its way."))
    else:
        flash(ngettext("%(num)d visit is cancelled. One email to confirm them is on its way.",
                       "%(num)d visits are cancelled. One email to confirm them is on its way.",
                       len(cancelled)))
    return _after_change(token, appointment)


@manage.route("/<token>/reschedule", methods=["GET", "POST"])
@MANAGE_ACTION_LIMIT
def reschedule(token: str):
    if request.method == "POST":
        return _reschedule_visit(token)
    return _reschedule_page(token, appointment_for_link(token), RescheduleVisitForm())


@writing
def _reschedule_visit(token: str):
    appointment = appointment_for_link(token)
    form = RescheduleVisitForm()
    if not form.validate_on_submit():
        return _reschedule_page(token, appointment, form), 400
    start = parse_start(form.start.data)
    if start is None:
        raise PageProblem(400, _("Choose a time"), _("Start: please choose a time from the list."),
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
    except scheduling.ClearanceRequired:
        return clearance_required_page(appointment.service), 422
    except scheduling.AppointmentNotChangeable:
        return _cannot_change(token)
    moved_to = _("%(day)s at %(time)s", day=day_label(start.astimezone(zone).date()),
                 time=time_label(start.astimezone(zone)))
    flash(_("Your visit is moved to %(when)s. An email to confirm it is on its way.",
            when=moved_to))
    return _after_change(token, appointment)


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
        409, _("This visit can no longer be changed online"),
        _("It has been cancelled or has already started. Please call the clinic on %(phone)s.",
          phone=clinic.phone),
        back_url=url_for(".show", token=token),
    )


# --- the check-in after dry needling -------------------------------------------------------


@manage.route("/<token>/check-in", methods=["GET", "POST"])
@MANAGE_ACTION_LIMIT
def check_in(token: str):
    if request.method == "POST":
        return _record_check_in(token)
    return _check_in_page(token, appointment_for_link(token), CheckInForm())


@writing
def _record_check_in(token: str):
    appointment = appointment_for_link(token)
    form = CheckInForm()
    if not form.validate_on_submit():
        return _check_in_page(token, appointment, form), 400
    try:
        answers = CheckInAnswers.model_validate(request.form.to_dict())
    except ValidationError as error:
        return _check_in_page(token, appointment, form, errors=_check_in_errors(error)), 422
    try:
        check_ins.record_check_in(appointment, answers)
    except check_ins.CheckInAlreadyAnswered:
        return _check_in_page(token, appointment, form), 409
    except check_ins.CheckInNotOpen:
        return _check_in_page(token, appointment, form), 409
    flash(_("Thank you. Your therapist will see your answers."))
    return redirect(url_for(".check_in", token=token), 303)


def _check_in_page(token: str, appointment: Appointment, form: CheckInForm, *,
                   errors: dict[str, str] | None = None):
    return _visit_page(
        "public/check_in.html", token, appointment, form=form, errors=errors or {},
        answered=check_ins.check_in_of(appointment) is not None,
        can_answer=check_ins.check_in_open(appointment, utc_now()),
        values=request.form if request.method == "POST" else {},
    )


def _check_in_errors(error: ValidationError) -> dict[str, str]:
    """One plain sentence per field, in the patient's words."""
    wording = {
        "soreness": _("Soreness: choose a number from 0 (none) to 10 (the worst)."),
        "trend": _("Since the session: choose better, the same or worse."),
        "note": _("Note: at most %(max)s characters, without control characters.",
                  max=NOTES_MAX),
    }
    return {
        str(problem["loc"][0]): wording.get(str(problem["loc"][0]), problem["msg"])
        for problem in error.errors(include_url=False)
        if problem["loc"]
    }
