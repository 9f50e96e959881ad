"""Patients and their appointments, and what is kept about them: idempotency keys.

The audit log is booking/models/audit.py."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.models.clinic import (
    LONGEST_BUFFER_MINUTES,
    LONGEST_VISIT_MINUTES,
    Service,
    Therapist,
)
from booking.models.instants import UTCDateTime, utc_now


class AppointmentStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


_SPACES = re.compile(r"\s+")


def patient_identity(email: str, name: str, phone: str = "") -> str:
    """How the clinic tells patients apart: contact email and name, case and spacing ignored.

    A parent books for several children from one address; each child is their own patient.
    A walk-in without email is told apart by the digits of their phone instead.
    """
    if not email.strip() and phone:
        return f"tel:{''.join(c for c in phone if c.isdigit())}|{_folded(name)}"
    return f"{_folded(email)}|{_folded(name)}"


def _folded(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


class Patient(db.Model):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity: Mapped[str] = mapped_column(String(520), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # For a child, the email and phone are the guardian's.
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(40), default="")
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    guardian_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)

    appointments: Mapped[list[Appointment]] = relationship(back_populates="patient")

    @property
    def initials(self) -> str:
        return "".join(part[0].upper() for part in self.name.split() if part[:1].isalpha())


def new_calendar_uid() -> str:
    return f"{uuid.uuid4()}@clinic-booking"


# A visit's span, and its busy span (the visit and its buffer), are never longer than these.
LONGEST_VISIT = timedelta(minutes=LONGEST_VISIT_MINUTES)
LONGEST_BUSY_SPAN = timedelta(minutes=LONGEST_VISIT_MINUTES + LONGEST_BUFFER_MINUTES)


class Appointment(db.Model):
    """A visit. Only booking.scheduling writes these.

    busy_until is the end of the visit plus the service's buffer: the span no other live
    appointment of the same therapist may overlap (enforced by PostgreSQL itself).
    """

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('confirmed', 'cancelled', 'completed', 'no_show')",
            name="appointment_status",
        ),
        CheckConstraint("end_at > start_at", name="appointment_order"),
        CheckConstraint("busy_until >= end_at", name="appointment_buffer"),
        Index("ix_appointments_therapist_start", "therapist_id", "start_at"),
        Index("ix_appointments_patient", "patient_id"),
        Index("ix_appointments_series", "series_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_uid: Mapped[str] = mapped_column(String(120), unique=True, default=new_calendar_uid)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=AppointmentStatus.CONFIRMED)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    # The weekly series this visit was booked in, if any.
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointment_series.id"), nullable=True
    )
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    busy_until: Mapped[datetime] = mapped_column(UTCDateTime)
    notes: Mapped[str] = mapped_column(Text, default="")
    # The patient's details as given with this booking (the record keeps its own): who booked
    # may not be who the record belongs to, and staff call the number given for this visit.
    patient_phone: Mapped[str] = mapped_column(String(40), default="", server_default="")
    patient_date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    patient_guardian_name: Mapped[str] = mapped_column(
        String(200), default="", server_default=""
    )
    patient_language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    booked_by: Mapped[str] = mapped_column(String(120))  # "patient", "api", "staff:<email>"
    evaluation_override: Mapped[str] = mapped_column(Text, default="")
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    # When front desk saw the patient arrive (status stays confirmed until completed).
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    service: Mapped[Service] = relationship()
    therapist: Mapped[Therapist] = relationship()
    patient: Mapped[Patient] = relationship(back_populates="appointments")
    series: Mapped[AppointmentSeries | None] = relationship(back_populates="appointments")

    @property
    def is_live(self) -> bool:
        return self.status != AppointmentStatus.CANCELLED


def new_series_key() -> str:
    return uuid.uuid4().hex


class AppointmentSeries(db.Model):
    """Visits booked together in one step: a weekly pattern of one service with one therapist.

    The visits are ordinary appointments (each its own UID, reminders, moves and cancelling);
    the series remembers how they were asked for, and its key signs the series' manage link.
    """

    __tablename__ = "appointment_series"
    __table_args__ = (CheckConstraint("visit_count >= 2", name="series_at_least_two_visits"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Part of the series' manage token: a token names the series and this key.
    key: Mapped[str] = mapped_column(String(64), unique=True, default=new_series_key)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    weekdays: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["mon", "thu"]
    visit_count: Mapped[int] = mapped_column(Integer)
    booked_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # The patient's insurance authorisation for the course, when there is one: so many
    # visits, until that day (clinic date). Staff are warned as either runs out.
    authorised_visits: Mapped[int | None] = mapped_column(Integer, nullable=True)
    authorised_until: Mapped[date | None] = mapped_column(Date, nullable=True)

    service: Mapped[Service] = relationship()
    therapist: Mapped[Therapist] = relationship()
    patient: Mapped[Patient] = relationship()
    appointments: Mapped[list[Appointment]] = relationship(
        back_populates="series", order_by="(Appointment.start_at, Appointment.id)"
    )


class IdempotencyKey(db.Model):
    """The first answer to a request sent with an Idempotency-Key, replayed to its repeats."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(120))  # the endpoint it was sent to
    key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
