"""Therapists' clearance decisions for a service that needs one (dry needling): who may decide,
recording a decision, and the decision in force for a patient (booking/rules/clinical.py).

A "not cleared" never cancels anything: the patient's visits already booked for the service
go on the front desk's follow-up list. The audit entry says who decided what and when; the
therapist's note is health data and stays on the clearance record only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    CallListKind,
    Clearance,
    Patient,
    Service,
    StaffRole,
    StaffUser,
    audit,
    utc_now,
)
from booking.rules.clinical import ClearanceDecision, RecordedDecision, latest_decision
from booking.scheduling.call_lists import put_on_call_list


class NotAllowedToClear(Exception):
    """Only a therapist who offers the service (trained for it), or an admin, decides."""


def may_decide_clearance(staff: StaffUser, service: Service) -> bool:
    if staff.role == StaffRole.ADMIN:
        return True
    therapist = staff.therapist if staff.role == StaffRole.THERAPIST else None
    return bool(
        therapist is not None
        and therapist.active
        and any(offered.id == service.id for offered in therapist.services)
    )


def clearance_history(patient: Patient | None, service: Service) -> list[Clearance]:
    """Every decision for this patient and service, the latest first."""
    if patient is None or patient.id is None:
        return []
    return list(
        db.session.scalars(
            select(Clearance)
            .where(Clearance.patient_id == patient.id, Clearance.service_id == service.id)
            .order_by(Clearance.decided_at.desc(), Clearance.id.desc())
        )
    )


def decision_in_force(patient: Patient | None, service: Service) -> ClearanceDecision | None:
    return latest_decision(
        RecordedDecision(ClearanceDecision(row.decision), row.decided_at, row.id)
        for row in clearance_history(patient, service)
    )


def decisions_in_force(
    patients, services: Iterable[int],
) -> dict[tuple[int, int], ClearanceDecision]:
    """decision_in_force for many patients (ids, or a query of them) and services at once, by
    (patient id, service id); a pair with no decision is left out. One query: for the board."""
    services = set(services)
    if not services:
        return {}
    recorded: dict[tuple[int, int], list[RecordedDecision]] = defaultdict(list)
    for patient_id, service_id, decision, decided_at, order in db.session.execute(
        select(Clearance.patient_id, Clearance.service_id, Clearance.decision,
               Clearance.decided_at, Clearance.id)
        .where(Clearance.patient_id.in_(patients), Clearance.service_id.in_(services))
    ).tuples():
        recorded[(patient_id, service_id)].append(
            RecordedDecision(ClearanceDecision(decision), decided_at, order)
        )
    return {pair: latest_decision(decisions) for pair, decisions in recorded.items()}


def record_clearance(
    patient: Patient,
    service: Service,
    decision: ClearanceDecision,
    *,
    note: str = "",
    by: StaffUser,
    now: datetime | None = None,
) -> Clearance:
    """Record `by`'s decision; with "not cleared", the patient's coming visits for the service
    go on the follow-up list. Raises NotAllowedToClear for anyone else than may decide."""
    if not may_decide_clearance(by, service):
        raise NotAllowedToClear(f"only a therapist who offers {service.name} decides clearance")
    now = now or utc_now()
    clearance = Clearance(
        patient_id=patient.id,
        service_id=service.id,
        decision=decision,
        note=note,
        decided_by=by.actor,
        decided_at=now,
    )
    db.session.add(clearance)
    audit.record(
        "clearance_recorded",
        actor=by.actor,
        therapist_id=by.therapist_id,
        details={"patient": patient.id, "service": service.slug, "decision": str(decision)},
        at=now,
    )
    if decision is ClearanceDecision.NOT_CLEARED:
        booked = db.session.scalars(
            select(Appointment).where(
                Appointment.patient_id == patient.id,
                Appointment.service_id == service.id,
                Appointment.status == AppointmentStatus.CONFIRMED,
                Appointment.start_at > now,
            )
        )
        for visit in booked:
            put_on_call_list(CallListKind.FOLLOW_UP, visit, now)
    db.session.flush()
    return clearance
