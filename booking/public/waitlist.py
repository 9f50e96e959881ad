"""The waitlist's patient pages: joining (from the booking page when no time suits, or from a
visit's page to hear of something earlier), an entry's own page to leave it, and an offer's
page, /offers/<token>, whose one button claims the time.

Following a mail's link (GET) never changes anything: claiming and leaving are POSTs.
"""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import DateField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget

from booking import scheduling
from booking.clinic.reference import current_clinic, zone_named
from booking.extensions import db, limiter
from booking.models import WaitlistEntry, WaitlistStatus, utc_now
from booking.patients.manage_links import manage_token_for
from booking.public.forms import VisitDetailsForm
from booking.public.week_of_times import nearest_free_times
from booking.rules.waitlist import PARTS_OF_DAY, WEEKDAYS
from booking.scheduling import waitlist as waitlist_scheduling
from booking.scheduling.waitlist_offers import is_open
from booking.web.requests import writing

waitlist = Blueprint("waitlist", __name__, url_prefix="/waitlist")
offers = Blueprint("offers", __name__, url_prefix="/offers")

_ACTION = limiter.shared_limit(
    lambda: current_app.config["RATE_LIMIT_BOOKING"], scope="waitlist", methods=["POST"]
)


class _Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class WaitlistForm(VisitDetailsForm):
    """Who waits (the booking's own fields and checks), and the days and times that suit."""

    available_from = DateField("From")
    until = DateField("Until")
    weekdays = _Checkboxes("Which days suit? (none ticked: any)")
    parts_of_day = _Checkboxes("Which times of day suit? (none ticked: any)")

    def __init__(self, *args, service, **kwargs):
        super().__init__(*args, service=service, **kwargs)
        names = (_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"),
                 _("Saturday"), _("Sunday"))
        self.weekdays.choices = [
            SelectChoice(day, name) for day, name in zip(WEEKDAYS, names, strict=True)
        ]
        parts = (_("Morning (before noon)"), _("Afternoon (noon to 5 PM)"),
                 _("Evening (from 5 PM)"))
        self.parts_of_day.choices = [
            SelectChoice(part, name) for part, name in zip(PARTS_OF_DAY, parts, strict=True)
        ]
        self.available_from.label.text = _("From")
        self.until.label.text = _("Until")
        self.weekdays.label.text = _("Which days suit? (none ticked: any)")
        self.parts_of_day.label.text = _("Which times of day suit? (none ticked: any)")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in (self.available_from, self.until):
            if field.data is None:
                field.errors = [_("Enter a date like 2026-12-01.")]
                valid = False
        if valid and self.until.data < self.available_from.data:
            self.until.errors = [_("The last day cannot be before the first.")]
            valid = False
        return valid


@waitlist.route("/<service_slug>/join", methods=["GET", "POST"])
@_ACTION
def join(service_slug: str):
    service = scheduling.bookable_service(service_slug)
    form = WaitlistForm(service=service)
    if request.method == "GET":
        today = utc_now().astimezone(zone_named(current_clinic().timezone)).date()
        form.available_from.data = form.available_from.data or today
        form.until.data = form.until.data or today + timedelta(days=28)
        form.therapist.data = request.args.get("therapist", "")
        return _join_page(service, form)
    return _join(service, form)


@writing
def _join(service, form: WaitlistForm):
    if form.is_from_a_bot or not form.validate_on_submit():
        return _join_page(service, form), 422
    try:
        entry = waitlist_scheduling.join_waitlist(
            service, form.patient_details, form.available_from.data, form.until.data,
            therapist_slug=form.therapist.data or None, weekdays=form.weekdays.data,
            parts_of_day=form.parts_of_day.data, added_by="patient",
        )
    except waitlist_scheduling.WaitlistRefused as refusal:
        field = form.until if refusal.field == "until" else form.available_from
        field.errors = [refusal.message.split(": ", 1)[-1]]
        return _join_page(service, form), 422
    return redirect(url_for(".entry", token=entry.manage_token), 303)


def _join_page(service, form: WaitlistForm):
    therapist_slug = form.therapist.data or None
    therapist = (
        scheduling.therapists_offering(service, therapist_slug)[0] if therapist_slug else None
    )
    return render_template("public/waitlist_join.html", clinic=current_clinic(),
                           service=service, therapist=therapist, form=form)


@waitlist.get("/entry/<token>")
def entry(token: str):
    return render_template("public/waitlist_entry.html", clinic=current_clinic(),
                           entry=_entry_for(token), form=FlaskForm(), token=token)


@waitlist.post("/entry/<token>/leave")
@_ACTION
@writing
def leave(token: str):
    found = _entry_for(token)
    if not FlaskForm().validate_on_submit():
        abort(400)
    waitlist_scheduling.leave_waitlist(found, by="patient")
    return redirect(url_for(".entry", token=token), 303)


def _entry_for(token: str) -> WaitlistEntry:
    found = db.session.query(WaitlistEntry).filter_by(manage_token=token).first() if (
        len(token) <= 64
    ) else None
    if found is None:
        abort(404)
    return found


# --- offers --------------------------------------------------------------------------------


@offers.get("/<token>")
def show(token: str):
    offer = _offer_for(token)
    return _offer_page(offer, token)


@offers.post("/<token>")
@_ACTION
@writing
def claim(token: str):
    offer = _offer_for(token)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        appointment = waitlist_scheduling.claim_offer(offer)
    except waitlist_scheduling.OfferTaken:
        return _offer_page(offer, token, outcome="taken"), 409
    except waitlist_scheduling.OfferExpired:
        return _offer_page(offer, token, outcome="expired"), 410
    except scheduling.EvaluationRequired:
        return _offer_page(offer, token, outcome="evaluation"), 422
    return redirect(
        url_for("public.manage.confirmation", token=manage_token_for(appointment)), 303
    )


def _offer_page(offer, token: str, *, outcome: str | None = None):
    now = utc_now()
    clinic = current_clinic()
    zone = zone_named(clinic.timezone)
    entry = offer.entry
    if outcome is None and not is_open(offer, now):
        outcome = {"claimed": "claimed", "taken": "taken"}.get(offer.status, "expired")
    nearest = []
    if outcome == "taken":
        nearest = nearest_free_times(
            entry.service, offer.start_at, zone, now,
            therapist_slug=entry.therapist.slug if entry.therapist else None,
        )
    return render_template(
        "public/offer.html", clinic=clinic, offer=offer, entry=entry, token=token,
        outcome=outcome, nearest=nearest, form=FlaskForm(),
        still_waiting=entry.status == WaitlistStatus.WAITING,
    )


def _offer_for(token: str):
    offer = waitlist_scheduling.offer_for_token(token)
    if offer is None:
        abort(404)
    return offer

