"""The waitlist in the back office: who waits for what, oldest first, with each entry's offers;
adding and removing entries for patients on the phone; offering a free time by hand; and
what the waitlist did for the clinic in the last 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload
from wtforms import DateField, EmailField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from booking import scheduling
from booking.clinic.reference import current_clinic, zone_named
from booking.desk.access import DESK, allowed
from booking.desk.pages import require_form_token
from booking.extensions import db
from booking.models import (
    Appointment,
    AuditEntry,
    OfferStatus,
    Service,
    Therapist,
    WaitlistEntry,
    WaitlistOffer,
    utc_now,
)
from booking.patients.details import PatientDetails, details_context
from booking.patients.form_errors import show_on_form
from booking.rules.waitlist import PARTS_OF_DAY, WEEKDAYS
from booking.scheduling import waitlist as waitlist_scheduling
from booking.scheduling.waitlist_offers import offer_time
from booking.web.requests import writing

waitlist = Blueprint("waitlist", __name__)

METRICS_DAYS = 30


class _Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class WaitlistEntryForm(FlaskForm):
    """A patient on the phone asking to be told of an earlier time."""

    service = SelectField("Service", validators=[DataRequired()])
    therapist = SelectField("Therapist", validators=[Optional()])
    available_from = DateField("From", validators=[DataRequired("enter a date")])
    until = DateField("Until", validators=[DataRequired("enter a date")])
    weekdays = _Checkboxes("Days (none: any)",
                           choices=[SelectChoice(day, day.capitalize()) for day in WEEKDAYS])
    parts_of_day = _Checkboxes("Parts of the day (none: any)",
                               choices=[SelectChoice(part, part) for part in PARTS_OF_DAY])
    name = StringField("Patient's full name")
    email = EmailField("Email (a child's guardian's)")
    phone = StringField("Phone")
    guardian_name = StringField("Guardian's name (for a child)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        services = db.session.scalars(
            select(Service).where(Service.active.is_(True)).order_by(Service.position)
        ).all()
        self.service.choices = [SelectChoice(service.slug, service.name) for service in services]
        therapists = db.session.scalars(
            select(Therapist).where(Therapist.active.is_(True)).order_by(Therapist.position)
        ).all()
        self.therapist.choices = [SelectChoice("", "Anyone")] + [
            SelectChoice(therapist.slug, therapist.name) for therapist in therapists
        ]
        self.patient: PatientDetails | None = None

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        try:
            self.patient = PatientDetails.model_validate(
                {"name": self.name.data or "", "email": self.email.data or "",
                 "phone": self.phone.data or "", "guardian_name": self.guardian_name.data or ""},
                context=details_context(),
            )
        except ValidationError as error:
            show_on_form(error, {"name": self.name, "email": self.email, "phone": self.phone,
                                 "guardian_name": self.guardian_name})
            return False
        return valid


class OfferTimeForm(FlaskForm):
    service = StringField("Service", validators=[DataRequired()])
    therapist = StringField("Therapist", validators=[DataRequired()])
    start = StringField("Start", validators=[DataRequired()])


@dataclass(frozen=True)
class WaitlistMetrics:
    """What the waitlist did in the last METRICS_DAYS days."""

    freed: int  # visits cancelled or moved away from their time
    offered: int  # distinct times offered to waiting patients
    filled: int  # times claimed from an offer
    hours_recovered: float  # the length of the visits booked through offers


@waitlist.get("/waitlist")
@allowed(*DESK)
def waitlist_page():
    return _page(WaitlistEntryForm())


def _page(form: WaitlistEntryForm, status: int = 200):
    service_slug = request.args.get("service") or None
    therapist_slug = request.args.get("therapist") or None
    entries = _entries(service_slug, therapist_slug)
    return render_template(
        "desk/waitlist.html", entries=entries, form=form, metrics=metrics(utc_now()),
        services=db.session.scalars(select(Service).order_by(Service.position)).all(),
        service_slug=service_slug, therapist_slug=therapist_slug,
        therapists=db.session.scalars(select(Therapist).order_by(Therapist.position)).all(),
        offer_form=OfferTimeForm(formdata=None),
        action_form=FlaskForm(), offer=_offer_to_make(),
    ), status


def _entries(service_slug: str | None, therapist_slug: str | None) -> list[WaitlistEntry]:
    """Per service, oldest first: the order offers go out in."""
    query = (
        select(WaitlistEntry)
        .where(WaitlistEntry.status == "waiting")
        .options(selectinload(WaitlistEntry.offers).selectinload(WaitlistOffer.therapist),
                 selectinload(WaitlistEntry.service), selectinload(WaitlistEntry.therapist))
        .join(Service, Service.id == WaitlistEntry.service_id)
        .order_by(Service.position, WaitlistEntry.created_at, WaitlistEntry.id)
    )
    if service_slug:
        query = query.where(Service.slug == service_slug)
    if therapist_slug:
        # Those waiting for this therapist, and those for anyone.
        query = query.outerjoin(Therapist, Therapist.id == WaitlistEntry.therapist_id).where(
            or_(WaitlistEntry.therapist_id.is_(None), Therapist.slug == therapist_slug)
        )
    return list(db.session.scalars(query))


def _offer_to_make() -> dict | None:
    """The free time the calendar sent staff here with (?offer_therapist&offer_day&
    offer_time), to offer by hand: its therapist, its start, and the services they offer."""
    slug, day, wall = (request.args.get(f"offer_{name}", "").strip()
                       for name in ("therapist", "day", "time"))
    if not (slug and day and wall):
        return None
    therapist = db.session.scalars(select(Therapist).where(Therapist.slug == slug)).first()
    try:
        start = datetime.fromisoformat(f"{day}T{wall}").replace(
            tzinfo=zone_named(current_clinic().timezone)
        )
    except ValueError:
        return None
    if therapist is None:
        return None
    return {"therapist": therapist, "start": start,
            "services": [service for service in therapist.services if service.active]}


@waitlist.post("/waitlist/add")
@allowed(*DESK)
@writing
def add_entry():
    form = WaitlistEntryForm()
    if not form.validate_on_submit():
        return _page(form, 422)
    try:
        waitlist_scheduling.join_waitlist(
            scheduling.bookable_service(form.service.data), form.patient,
            form.available_from.data, form.until.data,
            therapist_slug=form.therapist.data or None, weekdays=form.weekdays.data,
            parts_of_day=form.parts_of_day.data, added_by=current_user.actor,
        )
    except scheduling.SchedulingError as refusal:
        fields = {"from": form.available_from, "until": form.until,
                  "therapist": form.therapist}
        field = fields.get(refusal.field or "", form.service)
        field.errors = [*field.errors, refusal.message]
        return _page(form, 422)
    flash("Added to the waitlist.")
    return redirect(url_for(".waitlist_page"), 303)


@waitlist.post("/waitlist/<int:entry_id>/remove")
@allowed(*DESK)
@writing
def remove_entry(entry_id: int):
    entry = waitlist_scheduling.entry_by_id(entry_id)
    if entry is None:
        abort(404)
    require_form_token()
    waitlist_scheduling.leave_waitlist(entry, by=current_user.actor)
    flash("Removed from the waitlist.")
    return redirect(url_for(".waitlist_page"), 303)


@waitlist.post("/waitlist/offer")
@allowed(*DESK)
@writing
def offer_by_hand():
    form = OfferTimeForm()
    if not form.validate_on_submit():
        return _page(WaitlistEntryForm(formdata=None), 422)
    try:
        start = datetime.fromisoformat(form.start.data.strip())
        if start.utcoffset() is None:
            raise ValueError
    except ValueError:
        flash("Start: give a time with its offset, as the calendar links do.")
        return _page(WaitlistEntryForm(formdata=None), 422)
    try:
        service = scheduling.bookable_service(form.service.data)
        [therapist] = scheduling.therapists_offering(service, form.therapist.data)
    except scheduling.SchedulingError as refusal:
        flash(f"{refusal.field}: {refusal.message}")
        return _page(WaitlistEntryForm(formdata=None), 422)
    offers = offer_time(service, therapist, start, by=current_user.actor)
    flash(f"Offered to {len(offers)} waiting patient(s)." if offers else
          "No one waiting could be offered that time (none suits it, or it is not free).")
    return redirect(url_for(".waitlist_page"), 303)


def metrics(now: datetime) -> WaitlistMetrics:
    since = now - timedelta(days=METRICS_DAYS)
    freed = db.session.scalar(
        select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.in_(["cancelled", "rescheduled"]), AuditEntry.created_at >= since
        )
    )
    offered = db.session.scalar(
        select(func.count()).select_from(
            select(WaitlistOffer.therapist_id, WaitlistOffer.start_at)
            .where(WaitlistOffer.created_at >= since)
            .distinct()
            .subquery()
        )
    )
    filled = db.session.execute(
        select(Appointment.start_at, Appointment.end_at)
        .join(WaitlistOffer, WaitlistOffer.appointment_id == Appointment.id)
        .where(WaitlistOffer.status == OfferStatus.CLAIMED, WaitlistOffer.created_at >= since)
    ).all()
    hours = sum((visit.end_at - visit.start_at for visit in filled), timedelta())
    return WaitlistMetrics(freed=freed, offered=offered, filled=len(filled),
                           hours_recovered=round(hours.total_seconds() / 3600, 1))

