"""The patient's booking pages: service, then a time, then who it is for; the manage pages
live in manage.py under /manage.

Each view parses the request, calls one scheduling function (or reads), and renders. Forms
post back to their own page and a booking redirects to its confirmation (post-redirect-get),
so everything works without JavaScript; static/booking.js only adds to it.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from booking import scheduling
from booking.clinic.reference import ClinicNotConfigured, current_clinic, zone_named
from booking.extensions import db, limiter
from booking.models import Service, ServiceKind, utc_now
from booking.patients.manage_links import manage_token_for
from booking.public.forms import VisitDetailsForm, day_from_query, parse_start, week_from_query
from booking.public.manage import manage
from booking.public.problems import PageProblem, register_problem_pages
from booking.public.waitlist import offers, waitlist
from booking.public.week_of_times import (
    day_label,
    nearest_free_times,
    time_label,
    week_of_free_times,
)
from booking.web.requests import writing

public = Blueprint("public", __name__)
public.register_blueprint(manage)
public.register_blueprint(waitlist)
public.register_blueprint(offers)
register_problem_pages(public)


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
        return _book_visit(service_slug)
    service = scheduling.bookable_service(service_slug)
    form = VisitDetailsForm(service=service)
    form.start.data = request.args.get("start", "")
    form.therapist.data = request.args.get("therapist", "")
    return render_template("public/visit_details.html", **_details_page(service, form))


@writing
def _book_visit(service_slug: str):
    service = scheduling.bookable_service(service_slug)
    form = VisitDetailsForm(service=service)
    page = _details_page(service, form)
    if form.is_from_a_bot:
        raise PageProblem(400, "We could not accept this form",
                          "Website: this field must be left empty. Nothing was booked.",
                          field="website")
    if not form.validate_on_submit():
        return render_template("public/visit_details.html", **page), 422
    therapist_slug = form.therapist.data or None
    try:
        appointment = scheduling.book_appointment(
            service, page["start"], form.patient_details, therapist_slug=therapist_slug,
            notes=form.notes, booked_by="patient",
        )
    except scheduling.EvaluationRequired:
        return render_template(
            "public/evaluation_required.html", clinic=page["clinic"], service=service,
            evaluations=_evaluations(),
        ), 422
    except scheduling.SlotUnavailable as refusal:
        nearest = nearest_free_times(
            service, page["start"], page["zone"], utc_now(), therapist_slug=therapist_slug
        )
        return render_template("public/visit_details.html", **page, refusal=refusal.reason,
                               nearest=nearest), 409
    return redirect(
        url_for("public.manage.confirmation", token=manage_token_for(appointment)), 303
    )


def _details_page(service: Service, form: VisitDetailsForm) -> dict:
    """What the details page shows around its form: the service, the time, the therapist."""
    clinic = current_clinic()
    # After a lost race the patient may pick one of the nearest times instead.
    start = parse_start(request.form.get("other_start")) or parse_start(form.start.data)
    if start is None:
        raise PageProblem(
            400, "Choose a time", "Start: please choose a time from the list.", field="start",
            back_url=url_for(".choose_time", service_slug=service.slug),
        )
    form.start.data = start.isoformat()
    therapist_slug = form.therapist.data or None
    therapist = (
        scheduling.therapists_offering(service, therapist_slug)[0] if therapist_slug else None
    )
    return {"clinic": clinic, "service": service, "therapist": therapist, "start": start,
            "form": form, "zone": zone_named(clinic.timezone)}


def _evaluations() -> list[Service]:
    return list(db.session.scalars(
        select(Service)
        .where(Service.active.is_(True), Service.kind == ServiceKind.EVALUATION)
        .order_by(Service.position)
    ))


@public.app_template_filter("visit_day")
def _visit_day(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        moment = moment.astimezone(zone_named(current_clinic().timezone)).date()
    return day_label(moment)


@public.app_template_filter("visit_time")
def _visit_time(moment: datetime) -> str:
    return time_label(moment.astimezone(zone_named(current_clinic().timezone)))


@public.app_template_filter("visit_week")
def _visit_week(moment: datetime) -> str:
    """The `week` query value that shows the week from this moment's day."""
    return moment.astimezone(zone_named(current_clinic().timezone)).date().isoformat()
