"""Visits, as the front desk handles them: an appointment's page with its history, booking on a
patient's behalf (with an override reason where the rules allow one), moving, cancelling and
recording attendance. Every change goes through `scheduling`; a refusal shows the form again
under the field at fault, with nothing changed."""

from __future__ import annotations

from contextlib import suppress
from datetime import date, datetime, time, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from booking import scheduling
from booking.clinic.reference import clinic_zone
from booking.desk import access, queries
from booking.desk.access import DESK, EVERYONE, allowed
from booking.desk.forms import (
    AttendanceForm,
    BookingForm,
    CancelForm,
    MoveForm,
    UndoAttendanceForm,
    choices,
    patient_on_record,
)
from booking.desk.pages import today
from booking.extensions import db
from booking.models import AppointmentStatus, AuditEntry, Patient, Service, StaffRole, utc_now
from booking.patients.health_forms import visit_forms
from booking.scheduling import check_ins
from booking.scheduling.clearances import decision_in_force
from booking.web.requests import writing

appointments = Blueprint("appointments", __name__)


@appointments.get("/appointments/<int:appointment_id>")
@allowed(*EVERYONE)
def appointment(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    return _appointment_page(visit)


def _appointment_page(visit, *, move_form=None, cancel_form=None, attendance_form=None,
                      undo_form=None, error=None, status=200):
    zone = clinic_zone()
    if move_form is None:
        move_form = MoveForm(formdata=None)
        start = visit.start_at.astimezone(zone)
        move_form.day.data, move_form.time.data = start.date(), start.time()
        move_form.therapist.data = visit.therapist.slug
    move_form.therapist.choices = _therapist_choices(visit.service)
    history = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.appointment_id == visit.id)
        .order_by(AuditEntry.created_at, AuditEntry.id)
    ).all()
    return render_template(
        "desk/appointment.html",
        visit=visit,
        history=history,
        move_form=move_form,
        cancel_form=cancel_form or CancelForm(formdata=None),
        attendance_form=attendance_form or AttendanceForm(formdata=None),
        can_change=not access.is_therapist(),
        changeable=visit.status == AppointmentStatus.CONFIRMED and visit.start_at > utc_now(),
        undo_form=undo_form or UndoAttendanceForm(formdata=None),
        attendance=_attendance_choices(visit),
        error=error,
        # Health data: for the patient's clinicians, not the front desk.
        last_check_in=None if access.current_role() is StaffRole.FRONT_DESK
        else check_ins.latest_check_in_before(visit),
        health_forms=visit_forms(visit),
        course=scheduling.places_in_series([visit.id]).get(visit.id),
        clearance=decision_in_force(visit.patient, visit.service)
        if visit.service.requires_clearance else None,
    ), status


def _attendance_choices(visit) -> dict:
    """Which attendance buttons the visit offers now (the rules are scheduling's)."""
    now = utc_now()
    confirmed = visit.status == AppointmentStatus.CONFIRMED
    started = visit.start_at <= now
    return {
        "arrived": confirmed and not visit.arrived_at
        and now >= visit.start_at - scheduling.ARRIVAL_OPENS_BEFORE_START,
        "completed": confirmed and started,
        "no_show": confirmed and started,
        "undo": visit.status in (AppointmentStatus.NO_SHOW, AppointmentStatus.COMPLETED)
        or (confirmed and visit.arrived_at is not None),
    }


def _therapist_choices(service: Service) -> list:
    return choices((t.slug, t.name) for t in service.therapists if t.active)


@appointments.route("/book", methods=["GET", "POST"])
@allowed(*DESK)
def book():
    # One address for the form and its answer; only the answer writes.
    if request.method == "GET":
        booking = _BookingPage()
        prefill_booking(booking.form)
        booking.free_times = _free_times(booking.form)
        return booking.shown()
    return _book_posted()


@writing
def _book_posted():
    booking = _BookingPage()
    form = booking.form
    if not form.validate_on_submit():
        return booking.shown(422)
    details = form.patient_details
    reason = (form.override_reason.data or "").strip()
    try:
        visit = scheduling.book_appointment(
            scheduling.bookable_service(form.service.data),
            datetime.combine(form.day.data, form.time.data, tzinfo=clinic_zone()),
            details,
            therapist_slug=form.therapist.data or None,
            notes=(form.notes.data or "").strip(),
            booked_by=current_user.actor,
            override=scheduling.StaffOverride(current_user.actor, reason) if reason else None,
        )
    except scheduling.SchedulingError as error:
        explain_refusal(form, error, can_override=not reason)
        return booking.shown(error.status)
    flash(f"Booked {visit.service.name} for {visit.patient.name}.")
    return redirect(url_for(".appointment", appointment_id=visit.id), 303)


class _BookingPage:
    """The booking form with its choices, the patient search and the patient chosen."""

    def __init__(self):
        self.form = BookingForm()
        services = db.session.scalars(
            select(Service).where(Service.active.is_(True)).order_by(Service.position)
        ).all()
        self.form.service.choices = choices((service.slug, service.name) for service in services)
        self.form.therapist.choices = choices(
            [("", "Whoever is free")]
            + [(therapist.slug, therapist.name) for therapist in queries.active_therapists()]
        )
        self.search = request.args.get("q", "").strip()
        self.found = queries.find_patients(self.search, limit=20) if self.search else []
        self.chosen = _chosen_patient(self.form)

    free_times: list | None = None  # asked for: the service's free times, by day

    def shown(self, status: int = 200):
        return render_template("desk/book.html", form=self.form, search=self.search,
                               found=self.found, chosen=self.chosen,
                               free_times=self.free_times), status


FREE_TIMES_DAYS = 3  # the day asked for and the next two


def _free_times(form: BookingForm) -> list | None:
    """The free times of the service (and therapist) chosen, for the day and the next days, as
    a patient would be offered them; None until a service is chosen."""
    if "service" not in request.args or not form.service.data:
        return None
    try:
        service = scheduling.bookable_service(form.service.data)
        slots = scheduling.free_slots(
            service, form.day.data, form.day.data + timedelta(days=FREE_TIMES_DAYS - 1),
            therapist_slug=form.therapist.data or None,
        )
    except scheduling.SchedulingError:
        return []
    zone = clinic_zone()
    by_day: dict = {}
    for slot in slots:
        start = slot.start.astimezone(zone)
        by_day.setdefault(start.date(), []).append((start.strftime("%H:%M"), slot.therapist))
    return sorted(by_day.items())


def _chosen_patient(form: BookingForm) -> Patient | None:
    patient = patient_on_record(form.patient_id.data or request.args.get("patient", ""))
    if patient is not None:
        form.patient_id.data = str(patient.id)
    return patient


def prefill_booking(form: BookingForm) -> None:
    arguments = request.args
    if arguments.get("service") in {choice.value for choice in form.service.choices}:
        form.service.data = arguments["service"]
    if arguments.get("therapist") in {choice.value for choice in form.therapist.choices}:
        form.therapist.data = arguments["therapist"]
    try:
        form.day.data = date.fromisoformat(arguments.get("day", ""))
    except ValueError:
        form.day.data = today()
    with suppress(ValueError):
        form.time.data = time.fromisoformat(arguments.get("time", ""))


def explain_refusal(form, error: scheduling.SchedulingError, *, can_override: bool) -> None:
    message = error.message
    if can_override and isinstance(
        error,
        scheduling.SlotUnavailable | scheduling.EvaluationRequired | scheduling.ClearanceRequired,
    ):
        message += (
            ". To book inside the minimum notice, beyond the booking window or without an "
            "evaluation or a clearance, give an override reason. A taken time or one outside "
            "the hours cannot be overridden."
        )
    fields = {"start": form.time, "therapist": form.therapist,
              "service": getattr(form, "service", form.time)}
    target = fields.get(error.field or "", form.time)
    target.errors = [*target.errors, message]


@appointments.post("/appointments/<int:appointment_id>/move")
@allowed(*DESK)
@writing
def move(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    form = MoveForm()
    form.therapist.choices = _therapist_choices(visit.service)
    if not form.validate_on_submit():
        return _appointment_page(visit, move_form=form, status=422)
    reason = (form.override_reason.data or "").strip()
    try:
        scheduling.reschedule_appointment(
            visit,
            datetime.combine(form.day.data, form.time.data, tzinfo=clinic_zone()),
            therapist_slug=form.therapist.data,
            changed_by=current_user.actor,
            override=scheduling.StaffOverride(current_user.actor, reason) if reason else None,
        )
    except scheduling.SchedulingError as error:
        explain_refusal(form, error, can_override=not reason)
        return _appointment_page(visit, move_form=form, status=error.status)
    flash("Moved; the patient is told.")
    return redirect(url_for(".appointment", appointment_id=appointment_id), 303)


@appointments.post("/appointments/<int:appointment_id>/cancel")
@allowed(*DESK)
@writing
def cancel(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    form = CancelForm()
    if not form.validate_on_submit():
        return _appointment_page(visit, cancel_form=form, status=422)
    try:
        scheduling.cancel_appointment(
            visit, cancelled_by=current_user.actor, reason=form.reason.data.strip()
        )
    except scheduling.SchedulingError as error:
        form.reason.errors = [*form.reason.errors, error.message]
        return _appointment_page(visit, cancel_form=form, status=error.status)
    flash("Cancelled; the patient is told.")
    return redirect(url_for(".appointment", appointment_id=appointment_id), 303)


@appointments.post("/appointments/<int:appointment_id>/attendance")
@allowed(*DESK)
@writing
def attendance(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    form = AttendanceForm()
    if not form.validate_on_submit():
        return _appointment_page(visit, attendance_form=form, status=422)
    try:
        scheduling.record_attendance(visit, form.outcome.data, by=current_user.actor)
    except scheduling.SchedulingError as error:
        form.outcome.errors = [*form.outcome.errors, error.message]
        return _appointment_page(visit, attendance_form=form, status=error.status)
    flash(f"Recorded: {form.outcome.data.replace('_', '-')}.")
    return redirect(url_for(".appointment", appointment_id=appointment_id), 303)


@appointments.post("/appointments/<int:appointment_id>/attendance/undo")
@allowed(*DESK)
@writing
def undo_attendance(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    form = UndoAttendanceForm()
    if not form.validate_on_submit():
        return _appointment_page(visit, undo_form=form, status=422)
    try:
        scheduling.undo_attendance(visit, by=current_user.actor, reason=form.reason.data)
    except scheduling.SchedulingError as error:
        form.reason.errors = [*form.reason.errors, error.message]
        return _appointment_page(visit, undo_form=form, status=error.status)
    flash("Attendance undone; the visit is confirmed again.")
    return redirect(url_for(".appointment", appointment_id=appointment_id), 303)
