"""Recording a therapist's clearance for dry needling (or any service that needs one), from the
patient's page or the day view, and what the back office shows of clearances and check-ins.

Only a therapist who offers the service, or an admin, decides; the front desk sees the
decision in force (it books by it) but never a clearance note or a check-in answer.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import select

from booking import scheduling
from booking.clinic.reference import clinic_zone
from booking.desk import access
from booking.desk.access import allowed
from booking.desk.forms import ClearanceForm, choices
from booking.desk.pages import message_page, require_form_token
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    Patient,
    Service,
    ServiceKind,
    StaffRole,
    utc_now,
)
from booking.rules.clinical import ClearanceDecision
from booking.scheduling import check_ins
from booking.scheduling.clearances import (
    NotAllowedToClear,
    clearance_history,
    decision_in_force,
    may_decide_clearance,
    record_clearance,
)
from booking.scheduling.therapist_time import local_day_bounds
from booking.web.requests import writing

clearances = Blueprint("clearances", __name__)

DECIDERS = (StaffRole.ADMIN, StaffRole.THERAPIST)


def services_needing_clearance() -> list[Service]:
    return list(db.session.scalars(
        select(Service)
        .where(Service.active.is_(True), Service.requires_clearance.is_(True))
        .order_by(Service.position)
    ))


def services_this_login_clears() -> list[Service]:
    """The services the signed-in login may decide clearance for (none for the front desk)."""
    return [service for service in services_needing_clearance()
            if may_decide_clearance(current_user, service)]


def clearance_form(patient: Patient, services: list[Service], back_day: date | None = None):
    form = ClearanceForm(formdata=None, prefix=f"clearance-{patient.id}")
    form.service.choices = choices((service.slug, service.name) for service in services)
    form.back_day.data = back_day.isoformat() if back_day else ""
    return form


def patient_clinical_record(patient: Patient, visits: list[Appointment]) -> dict:
    """What the patient's page shows of clearances and check-ins, by who is looking."""
    clinician = current_user.role in DECIDERS
    deciding = services_this_login_clears()
    return {
        "clearances": [
            {"service": service, "in_force": decision_in_force(patient, service),
             "history": clearance_history(patient, service) if clinician else []}
            for service in services_needing_clearance()
        ],
        "check_ins": check_ins.check_ins_of([visit.id for visit in visits]) if clinician else {},
        "clearance_form": clearance_form(patient, deciding) if deciding else None,
    }


def day_evaluations_to_clear(day: date) -> dict:
    """For the day view: the day's evaluations (the therapist's own), each with a clearance
    form, when the signed-in login may decide clearance for anything."""
    deciding = services_this_login_clears()
    if not deciding:
        return {"evaluations_to_clear": []}
    start, end = local_day_bounds(day, day, clinic_zone())
    query = (
        select(Appointment)
        .join(Service, Appointment.service_id == Service.id)
        .where(
            Service.kind == ServiceKind.EVALUATION,
            Appointment.status.in_([AppointmentStatus.CONFIRMED, AppointmentStatus.COMPLETED]),
            Appointment.start_at >= start,
            Appointment.start_at < end,
        )
        .order_by(Appointment.start_at, Appointment.id)
    )
    own = access.own_therapist_id()
    if own is not None:
        query = query.where(Appointment.therapist_id == own)
    return {"evaluations_to_clear": [
        {"visit": visit, "form": clearance_form(visit.patient, deciding, day),
         "in_force": {service.slug: decision_in_force(visit.patient, service)
                      for service in deciding}}
        for visit in db.session.scalars(query)
    ]}


@clearances.post("/patients/<int:patient_id>/clearance")
@allowed(*DECIDERS)
@writing
def record(patient_id: int):
    require_form_token()
    patient = access.patient_in_reach(patient_id)
    form = ClearanceForm(prefix=f"clearance-{patient.id}")
    form.service.choices = choices(
        (service.slug, service.name) for service in services_needing_clearance()
    )
    if not form.validate():
        problems = "; ".join(
            f"{getattr(form, name).label.text}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        )
        return message_page("Nothing was recorded", problems, 422)
    service = scheduling.bookable_service(form.service.data)
    try:
        record_clearance(patient, service, ClearanceDecision(form.decision.data),
                         note=(form.note.data or "").strip(), by=current_user, now=utc_now())
    except NotAllowedToClear:
        abort(403)
    words = "cleared" if form.decision.data == ClearanceDecision.CLEARED else "not cleared"
    flash(f"{patient.name}: {words} for {service.name}.")
    back_day = _day_or_none(form.back_day.data)
    if back_day is not None:
        return redirect(url_for("desk.calendar.day", day=back_day.isoformat()), 303)
    return redirect(url_for("desk.patients.patient", patient_id=patient.id), 303)


def _day_or_none(written: str | None) -> date | None:
    try:
        return date.fromisoformat(written or "")
    except ValueError:
        return None
