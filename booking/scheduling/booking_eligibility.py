"""Who may book a service online: the clinic's rules about the patient rather than the time
(a comprehensive evaluation before dry needling; a therapist's clearance for it).

One place for them: a patient's own booking (scheduling.appointments `require_evaluation`,
`require_clearance`) and the waitlist's choice of whom to offer a freed time
(`online_booking_refusal`) ask the same predicates.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select

from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    Patient,
    Service,
    ServiceKind,
    patient_identity,
)
from booking.rules.clinical import is_cleared
from booking.scheduling.clearances import decision_in_force

EVALUATION_REQUIRED = "evaluation_required"
CLEARANCE_REQUIRED = "clearance_required"


def find_patient(email: str, name: str) -> Patient | None:
    return patient_on_record(patient_identity(email, name))


def patient_on_record(identity: str) -> Patient | None:
    return db.session.scalars(select(Patient).where(Patient.identity == identity)).first()


def _evaluation_on_record(start: datetime, whose):
    """The evaluation rule's one statement, for the patient(s) `whose` picks out: a
    comprehensive evaluation, confirmed or completed, that ends before `start`."""
    return exists().where(
        whose,
        Appointment.service_id == Service.id,
        Service.kind == ServiceKind.EVALUATION,
        Appointment.status.in_([AppointmentStatus.CONFIRMED, AppointmentStatus.COMPLETED]),
        Appointment.end_at <= start,
    )


def has_evaluation_before(patient: Patient | None, start: datetime) -> bool:
    if patient is None:
        return False
    return bool(db.session.scalar(select(
        _evaluation_on_record(start, Appointment.patient_id == patient.id)
    )))


def has_evaluation_for_identity(identity: str, start: datetime) -> bool:
    """has_evaluation_before for the patient of this identity, in one statement."""
    patient_ids = select(Patient.id).where(Patient.identity == identity).scalar_subquery()
    return bool(db.session.scalar(select(
        _evaluation_on_record(start, Appointment.patient_id.in_(patient_ids))
    )))


def is_cleared_for(patient: Patient | None, service) -> bool:
    """A therapist's "cleared" is the decision in force for this patient and service."""
    return is_cleared(decision_in_force(patient, service))


def asks_for_patient_record(service) -> bool:
    """Whether online_booking_refusal looks at the patient's record for this service (when it
    does not, there is no need to read the record)."""
    return bool(service.requires_evaluation or service.requires_clearance)


def online_booking_refusal(service, patient: Patient | None, start: datetime) -> str | None:
    """The code of the rule that keeps this patient from booking `service` at `start` online
    (`evaluation_required`, `clearance_required`), or None when they may."""
    if service.requires_evaluation and not has_evaluation_before(patient, start):
        return EVALUATION_REQUIRED
    if service.requires_clearance and not is_cleared_for(patient, service):
        return CLEARANCE_REQUIRED
    return None
