"""The patient's answers to the check-in two days after a dry needling session.

The check-in mail links to a page that asks; only its POST records. "Worse", or soreness of
7 or more (booking/rules/clinical.py), puts the visit on the front desk's call-back list at
once. The answers are health data: the audit entry says only that the check-in came in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    CallListKind,
    CheckInAnswer,
    audit,
    utc_now,
)
from booking.patients.check_in import CheckInAnswers
from booking.rules.clinical import needs_call_back
from booking.scheduling.appointments import SchedulingError
from booking.scheduling.call_lists import put_on_call_list


class CheckInNotOpen(SchedulingError):
    code = "check_in_not_open"
    status = 409


class CheckInAlreadyAnswered(SchedulingError):
    code = "check_in_answered"
    status = 409


def has_check_in(appointment: Appointment) -> bool:
    """A visit whose service sends a check-in (a second aftercare message)."""
    return len(appointment.service.aftercare or ()) > 1


def check_in_open(appointment: Appointment, now: datetime) -> bool:
    """The visit took place (or was not called off) and asks for a check-in."""
    return (
        has_check_in(appointment)
        and appointment.status in (AppointmentStatus.CONFIRMED, AppointmentStatus.COMPLETED)
        and appointment.end_at <= now
    )


def check_in_of(appointment: Appointment) -> CheckInAnswer | None:
    return db.session.scalars(
        select(CheckInAnswer).where(CheckInAnswer.appointment_id == appointment.id)
    ).first()


def check_ins_of(appointment_ids: list[int]) -> dict[int, CheckInAnswer]:
    """The answers for these visits, by visit id: for the therapist's pages."""
    if not appointment_ids:
        return {}
    rows = db.session.scalars(
        select(CheckInAnswer).where(CheckInAnswer.appointment_id.in_(appointment_ids))
    )
    return {row.appointment_id: row for row in rows}


def latest_check_in_before(appointment: Appointment) -> CheckInAnswer | None:
    """The patient's last check-in from an earlier visit: what the therapist reads before the
    next one."""
    return db.session.scalars(
        select(CheckInAnswer)
        .join(Appointment, CheckInAnswer.appointment_id == Appointment.id)
        .where(
            Appointment.patient_id == appointment.patient_id,
            Appointment.start_at < appointment.start_at,
        )
        .order_by(Appointment.start_at.desc())
    ).first()


def record_check_in(
    appointment: Appointment, answers: CheckInAnswers, *, now: datetime | None = None
) -> CheckInAnswer:
    now = now or utc_now()
    if not check_in_open(appointment, now):
        raise CheckInNotOpen("this visit has no check-in to answer (yet)")
    if check_in_of(appointment) is not None:
        raise CheckInAlreadyAnswered("thank you: your answers for this visit are already with us")
    answer = CheckInAnswer(
        appointment_id=appointment.id,
        soreness=answers.soreness,
        trend=answers.trend,
        note=answers.note,
        answered_at=now,
    )
    db.session.add(answer)
    call_back = needs_call_back(answers.soreness, answers.trend)
    if call_back:
        put_on_call_list(CallListKind.CALL_BACK, appointment, now)
    # Whether a call back is due says nothing of the answers themselves beyond what the
    # front desk's list shows anyway.
    audit.record("check_in_answered", actor="patient", appointment_id=appointment.id,
                 therapist_id=appointment.therapist_id, details={}, at=now)
    db.session.flush()
    return answer
