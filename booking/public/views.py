"""The patient's booking pages: service, then a time, then who it is for; the manage pages
live in manage.py under /manage.

Each view parses the request, calls one scheduling function (or reads), and renders. Forms
post back to their own page and a booking redirects to its confirmation (post-redirect-get),
so everything works without JavaScript; static/booking.js only adds to it.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from markupsafe import Markup, escape
from sqlalchemy import select

from booking import scheduling
from booking.clinic.reference import ClinicNotConfigured, current_clinic, zone_named
from booking.extensions import db, limiter
from booking.models import AppointmentSeries, Service, utc_now
from booking.patients.languages import (
    LANGUAGE_NAMES,
    clinic_languages,
    current_language,
    in_language,
    language_in_english,
    language_of,
    month_name,
    text_direction,
    weekday_short,
)
from booking.patients.manage_links import manage_token_for, series_token_for
from booking.public.forms import (
    VisitDetailsForm,
    WeeklyVisitsForm,
    day_from_query,
    parse_start,
    week_from_query,
)
from booking.public.health_forms import health_form_pages
from booking.public.manage import manage
from booking.public.problems import (
    PageProblem,
    clinical_refusal_page,
    register_problem_pages,
)
from booking.public.waitlist import offers, waitlist
from booking.public.week_of_times import (
    day_label,
    nearest_free_times,
    time_label,
    week_of_free_times,
)
from booking.rules.series import WEEKDAYS
from booking.scheduling import idempotency
from booking.web.requests import writing

public = Blueprint("public", __name__)
public.register_blueprint(manage)
public.register_blueprint(health_form_pages)
public.register_blueprint(waitlist)
public.register_blueprint(offers)
register_problem_pages(public)


@public.before_request
def _language_chosen_afresh():
    # Flask-Babel keeps its choice on the app context, which outlives a request where one
    # context serves several (a test, a CLI command): each page chooses again.
    refresh()


@public.after_request
def _not_kept_in_caches(response):
    # Free times change by the minute, and the manage pages show a patient's visit.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# Only the action counts: reading the pages again costs the clinic nothing.
_BOOKING_ACTION = limiter.shared_limit(
    lambda: current_app.config["RATE_LIMIT_BOOKING"], scope="booking", methods=["POST"]
)


@public.get("/")
def choose_service():
    try:
        clinic = current_clinic()
    except ClinicNotConfigured:
        return render_template("public/not_configured.html"), 503
    services = db.session.scalars(
        select(Service).where(Service.active.is_(True)).order_by(Service.position)
    ).all()
    return render_template("public/choose_service.html", clinic=clinic, services=services)


@public.get("/book/<service_slug>")
def choose_time(service_slug: str):
    clinic = current_clinic()
    service = scheduling.bookable_service(service_slug)
    therapists = scheduling.therapists_offering(service)
    therapist_slug = request.args.get("therapist", "").strip() or None
    if therapist_slug is not None:
        scheduling.therapists_offering(service, therapist_slug)  # refuses an unknown one
    zone = zone_named(clinic.timezone)
    week = week_of_free_times(
        service, zone, utc_now(), first_day=week_from_query(), therapist_slug=therapist_slug,
        open_day=day_from_query(),
    )
    return render_template(
        "public/choose_time.html", clinic=clinic, service=service, therapists=therapists,
        therapist_slug=therapist_slug or "", week=week, zone=zone,
        week_url=lambda first_day, open_day=None: url_for(
            ".choose_time", service_slug=service.slug, therapist=therapist_slug,
            week=first_day.isoformat(), day=open_day.isoformat() if open_day else None),
    )


@public.route("/book/<service_slug>/details", methods=["GET", "POST"])
@_BOOKING_ACTION
def visit_details(service_slug: str):
    if request.method == "POST":
        if request.form.get("action") == SEE_WEEKLY_VISITS:
            return _preview_weekly_visits(service_slug)
        if request.form.get("action") == BOOK_WEEKLY_VISITS:
            return _book_weekly_visits(service_slug)
        return _book_visit(service_slug)
    service = scheduling.bookable_service(service_slug)
    form = _details_form(service)
    form.start.data = request.args.get("start", "")
    form.therapist.data = request.args.get("therapist", "")
    page = _details_page(service, form)
    if isinstance(form, WeeklyVisitsForm):
        form.weekdays.data = [WEEKDAYS[page["start"].astimezone(page["zone"]).weekday()]]
    return render_template("public/visit_details.html", **page)


@writing
def _book_visit(service_slug: str):
    service = scheduling.bookable_service(service_slug)
    form = _details_form(service)
    page = _details_page(service, form)
    if form.is_from_a_bot:
        raise PageProblem(400, _("We could not accept this form"),
                          _("Website: this field must be left empty. Nothing was booked."),
                          field="website")
    if not form.validate_on_submit():
        return render_template("public/visit_details.html", **page), 422
    therapist_slug = form.therapist.data or None
    try:
        appointment = scheduling.book_appointment(
            service, page["start"], form.patient_details, therapist_slug=therapist_slug,
            notes=form.notes, booked_by="patient",
        )
    except (scheduling.EvaluationRequired, scheduling.ClearanceRequired) as refusal:
        return clinical_refusal_page(refusal, service), 422
    except scheduling.SlotUnavailable as refusal:
        nearest = nearest_free_times(
            service, page["start"], page["zone"], utc_now(), therapist_slug=therapist_slug
        )
        return render_template("public/visit_details.html", **page, refusal=refusal.reason,
                               nearest=nearest), 409
    return redirect(
        url_for("public.manage.confirmation", token=manage_token_for(appointment)), 303
    )


def _details_form(service: Service) -> VisitDetailsForm:
    """The details form, with "repeat weekly" where the service is booked as a series."""
    if service.max_series_visits > 0:
        return WeeklyVisitsForm(service=service)
    return VisitDetailsForm(service=service)


# --- a weekly series of visits -------------------------------------------------------------

SEE_WEEKLY_VISITS = "see-weekly-visits"
BOOK_WEEKLY_VISITS = "book-weekly-visits"
_SERIES_PAGE_SCOPE = "booking page: weekly visits"


def _weekly_form(service_slug: str) -> tuple[WeeklyVisitsForm, dict]:
    """The form and its page for a series, or PageProblem when the service has none."""
    service = scheduling.bookable_service(service_slug)
    if service.max_series_visits <= 0:
        raise PageProblem(
            422, _("This service is booked one visit at a time"),
            _("Repeat weekly: %(service)s is not booked as weekly visits online. Nothing was "
              "booked.", service=in_language(service, "name")),
            field="count", back_url=url_for(".choose_time", service_slug=service.slug),
        )
    form = WeeklyVisitsForm(service=service, series=True)
    page = _details_page(service, form)
    if form.is_from_a_bot:
        raise PageProblem(400, _("We could not accept this form"),
                          _("Website: this field must be left empty. Nothing was booked."),
                          field="website")
    return form, page


def _pattern_of(form: WeeklyVisitsForm, page: dict) -> str:
    """The series asked for (first visit, weekdays, count, therapist) as one text: what the
    patient saw previewed, so that alternatives chosen for it apply to it only."""
    weekdays = form.weekday_numbers(page["start"], page["zone"])
    return idempotency.fingerprint([page["start"].isoformat(), weekdays, form.visit_count,
                                    form.therapist.data or ""])


def _preview_weekly_visits(service_slug: str, *, refused: bool = False):
    """Each visit of the series free or not, why not, and the nearest times to choose instead;
    books nothing."""
    form, page = _weekly_form(service_slug)
    if not form.validate_on_submit():
        return render_template("public/visit_details.html", **page), 422
    service, start, zone = page["service"], page["start"], page["zone"]
    moved = form.moved_visits() if form.previewed.data == _pattern_of(form, page) else {}
    weekdays = form.weekday_numbers(start, zone)
    try:
        plan = scheduling.preview_series(
            service, start, weekdays, form.visit_count, form.patient_details,
            therapist_slug=form.therapist.data or None, chosen=moved,
        )
        if plan.conflicts and not form.therapist.data:
            # A course is with one therapist: the times offered instead are theirs.
            plan = scheduling.preview_series(
                service, start, weekdays, form.visit_count, form.patient_details,
                therapist_slug=plan.therapist.slug, chosen=moved,
            )
    except (scheduling.EvaluationRequired, scheduling.ClearanceRequired) as refusal:
        return clinical_refusal_page(refusal, service), 422
    except scheduling.SlotUnavailable as refusal:  # no therapist offers it now
        return render_template("public/visit_details.html", **page, refusal=refusal.reason,
                               nearest=[]), 409
    form.therapist.data = plan.therapist.slug
    form.previewed.data = _pattern_of(form, page)
    form.booking_key.data = form.booking_key.data or secrets.token_urlsafe(16)
    page["therapist"] = plan.therapist
    return render_template(
        "public/visit_details.html", **page, plan=plan, moved=moved,
        series_refused=refused,
    ), 409 if refused else 200


@writing
def _book_weekly_visits(service_slug: str):
    """Every visit of the series, or none: what was previewed, with the times chosen."""
    form, page = _weekly_form(service_slug)
    if not form.validate_on_submit():
        return render_template("public/visit_details.html", **page), 422
    if form.previewed.data != _pattern_of(form, page) or not form.booking_key.data:
        # The days or the number changed since the preview: show the visits they make.
        return _preview_weekly_visits(service_slug)
    moved = form.moved_visits()
    asked = {key: value for key, value in request.form.items(multi=True) if key != "csrf_token"}
    try:
        claimed = idempotency.claim(_SERIES_PAGE_SCOPE, form.booking_key.data,
                                    idempotency.fingerprint(sorted(asked.items())))
    except idempotency.IdempotencyKeyReused:
        raise PageProblem(
            409, _("These visits are already booked"),
            _("This form has already booked weekly visits; nothing more was booked. Your "
              "confirmation email has the link to see or change them."),
        ) from None
    if isinstance(claimed, idempotency.StoredAnswer):  # the same form sent twice
        return _to_series_confirmation(claimed.body["series_id"])
    try:
        booked = scheduling.book_series(
            page["service"], page["start"], form.weekday_numbers(page["start"], page["zone"]),
            form.visit_count, form.patient_details, therapist_slug=form.therapist.data or None,
            notes=form.notes, booked_by="patient", chosen=moved,
        )
    except (scheduling.EvaluationRequired, scheduling.ClearanceRequired) as refusal:
        return clinical_refusal_page(refusal, page["service"]), 422
    except scheduling.SlotUnavailable:
        # Some visits were taken since the preview: nothing is booked (the answer's status
        # rolls the claim back); the new preview says which, with their alternatives.
        return _preview_weekly_visits(service_slug, refused=True)
    idempotency.record(claimed, 201, {"series_id": booked.series.id})
    return _to_series_confirmation(booked.series.id)


def _to_series_confirmation(series_id: int):
    series = db.session.get(AppointmentSeries, series_id)
    return redirect(
        url_for("public.manage.confirmation", token=series_token_for(series)), 303
    )


def _details_page(service: Service, form: VisitDetailsForm) -> dict:
    """What the details page shows around its form: the service, the time, the therapist."""
    clinic = current_clinic()
    # After a lost race the patient may pick one of the nearest times instead.
    start = parse_start(request.form.get("other_start")) or parse_start(form.start.data)
    if start is None:
        raise PageProblem(
            400, _("Choose a time"), _("Start: please choose a time from the list."), field="start",
            back_url=url_for(".choose_time", service_slug=service.slug),
        )
    form.start.data = start.isoformat()
    therapist_slug = form.therapist.data or None
    therapist = (
        scheduling.therapists_offering(service, therapist_slug)[0] if therapist_slug else None
    )
    return {"clinic": clinic, "service": service, "therapist": therapist, "start": start,
            "form": form, "zone": zone_named(clinic.timezone)}


@public.app_template_filter("visit_day")
def _visit_day(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        moment = moment.astimezone(zone_named(current_clinic().timezone)).date()
    return day_label(moment)


@public.app_template_filter("visit_time")
def _visit_time(moment: datetime) -> str:
    return time_label(moment.astimezone(zone_named(current_clinic().timezone)))


@public.app_template_filter("weekday_short")
def _weekday_short(day: date) -> str:
    return weekday_short(day)


@public.app_template_filter("month_name")
def _month_name(day: date) -> str:
    return month_name(day)


@public.app_template_filter("in_language")
def _in_language(service: Service, key: str = "name") -> str:
    """A service's name or description in the page's language: `service|in_language`."""
    return in_language(service, key)


@public.app_template_filter("in_its_language")
def _in_its_language(service: Service, key: str = "name") -> Markup:
    """The text as in_language, in an element of its own language when it is not the page's
    (a name only given in English, on an Arabic page): read aloud and laid out as itself."""
    text, language = in_language(service, key), language_of(service, key)
    if language == current_language():
        return escape(text)
    return Markup('<span lang="{}" dir="auto">{}</span>').format(language, text)


# For the back office too (it stays English): the language a patient's mail is written in.
public.add_app_template_filter(language_in_english, "language_name")


@public.context_processor
def _language_of_the_page() -> dict:
    """base.html's `lang`, `dir` and language switcher: this page again with `?lang=`."""
    language = current_language()
    offered = clinic_languages()
    query = {key: value for key, value in request.args.items() if key != "lang"}
    choices = [
        (code, LANGUAGE_NAMES.get(code, code),
         f"{request.path}?{urlencode(query | {'lang': code})}")
        for code in offered
    ]
    return {
        "page_language": language,
        "text_direction": text_direction(language),
        "language_choices": choices if len(offered) > 1 else [],
    }


@public.app_template_filter("visit_week")
def _visit_week(moment: datetime) -> str:
    """The `week` query value that shows the week from this moment's day."""
    return moment.astimezone(zone_named(current_clinic().timezone)).date().isoformat()
