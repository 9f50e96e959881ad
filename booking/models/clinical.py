"""Dry needling's clinical records: each therapist's clearance decision for a patient, the
patient's answers to the check-in after a session, and the front desk's lists of patients to
call (visits booked before a "not cleared", worrying check-ins), each item marked done.

Clearance notes and check-in answers are health data: staff see them behind the login; they
go into no mail, feed, log or audit entry.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.models.appointments import Appointment, Patient
from booking.models.clinic import Service
from booking.models.instants import UTCDateTime, utc_now


class Clearance(db.Model):
    """A therapist's decision whether a patient may have a service; the latest one wins."""

    __tablename__ = "clearances"
    __table_args__ = (
        CheckConstraint("decision IN ('cleared', 'not_cleared')", name="clearance_decision"),
        Index("ix_clearances_patient_service", "patient_id", "service_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    decision: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(120))  # "staff:<email>"
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    patient: Mapped[Patient] = relationship()
    service: Mapped[Service] = relationship()


class CheckInAnswer(db.Model):
    """How the patient is doing two days after a session: one answer per visit."""

    __tablename__ = "check_in_answers"
    __table_args__ = (
        CheckConstraint("soreness BETWEEN 0 AND 10", name="check_in_soreness"),
        CheckConstraint("trend IN ('better', 'same', 'worse')", name="check_in_trend"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), unique=True
    )
    soreness: Mapped[int] = mapped_column(Integer)
    trend: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    appointment: Mapped[Appointment] = relationship()


class CallListKind(enum.StrEnum):
    # A visit booked for a service the patient was since found not cleared for.
    FOLLOW_UP = "follow_up"
    # A check-in after dry needling that asks for a call the same day.
    CALL_BACK = "call_back"


class CallListItem(db.Model):
    """A visit the front desk is to follow up by phone, until someone marks it done."""

    __tablename__ = "call_list_items"
    __table_args__ = (
        CheckConstraint("kind IN ('follow_up', 'call_back')", name="call_list_kind"),
        Index("ix_call_list_items_open", "kind", "done_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    done_by: Mapped[str] = mapped_column(String(120), default="")

    appointment: Mapped[Appointment] = relationship()
