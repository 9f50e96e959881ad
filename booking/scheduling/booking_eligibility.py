"""Who may book a service online: the clinic's rules about the patient rather than the time
(a comprehensive evaluation before dry needling, say).

One place for them: a patient's own booking and the waitlist's choice of whom to offer a
freed time both ask `online_booking_refusal`.
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

EVALUATION_REQUIRED = "evaluation_required"


def find_patient(email: str, name: str) -> Patient | None:
    return db.session.scalars(
        select(Patient).where(Patient.identity == patient_identity(email, name))
    ).first()


def has_evaluation_before(patient: Patient | None, start: datetime) -> bool:
    """The clinical rule: a comprehensive evaluation on record that ends before `start`."""
    if patient is None:
        return False
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Appointment.patient_id == patient.id,
                    Appointment.service_id == Service.id,
                    Service.kind == ServiceKind.EVALUATION,
                    Appointment.status.in_(
                        [AppointmentStatus.CONFIRMED, AppointmentStatus.COMPLETED]
                    ),
                    Appointment.end_at <= start,
                )
            )
        )
    )


def online_booking_refusal(
    service: Service, patient: Patient | None, start: datetime
) -> str | None:
    """The code of the rule that keeps this patient from booking `service` at `start` online
    (`evaluation_required`), or None when they may."""
    if service.requires_evaluation and not has_evaluation_before(patient, start):
        return EVALUATION_REQUIRED
    return None
