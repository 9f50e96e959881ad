"""The clinic's tables: the clinic, its services and therapists, their hours and time off,
patients, appointments, and the records kept about them (idempotency keys, audit trail).

Instants are stored in UTC and always come back timezone-aware. Hours and time off are
wall-clock values in the clinic's zone, turned into instants only when used.
"""

from __future__ import annotations

import enum
import re
import uuid
from datetime import UTC, date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An instant: timestamptz on PostgreSQL, UTC text on SQLite; aware UTC in Python either way."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime as an instant")
        value = value.astimezone(UTC)
        # SQLite keeps text: store naive UTC so that text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ServiceKind(enum.StrEnum):
    CALL = "call"
    EVALUATION = "evaluation"
    TREATMENT = "treatment"


class AppointmentStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


DISCIPLINES = ("PT", "OT", "SLP")


class Clinic(db.Model):
    """The one clinic this installation serves."""

    __tablename__ = "clinic"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(300), default="")
    website: Mapped[str] = mapped_column(String(300), default="")
    slot_step_minutes: Mapped[int] = mapped_column(Integer, default=15)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


therapist_services = Table(
    "therapist_services",
    db.metadata,
    Column("therapist_id", ForeignKey("therapists.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
)


class Service(db.Model):
    """What a patient can book: a call, an evaluation or a treatment."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("kind IN ('call', 'evaluation', 'treatment')", name="service_kind"),
        CheckConstraint("duration_minutes > 0", name="service_duration_positive"),
        CheckConstraint("buffer_after_minutes >= 0", name="service_buffer_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    min_notice_hours: Mapped[int] = mapped_column(Integer, default=0)
    max_advance_days: Mapped[int] = mapped_column(Integer, default=60)
    # Durations as written in the clinic file ("24h", "90m"), so an export gives them back as-is.
    reminders: Mapped[list[str]] = mapped_column(JSON, default=list)
    aftercare: Mapped[list[str]] = mapped_column(JSON, default=list)
    requires_evaluation: Mapped[bool] = mapped_column(Boolean, default=False)
    # A service dropped from the clinic file is retired, never deleted: appointments refer to it.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    therapists: Mapped[list[Therapist]] = relationship(
        secondary=therapist_services, back_populates="services", order_by="Therapist.position"
    )

    def __repr__(self) -> str:
        return f"<Service {self.slug}>"


class Therapist(db.Model):
    __tablename__ = "therapists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="")
    disciplines: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Raised to revoke the therapist's calendar feed URL.
    feed_rotation: Mapped[int] = mapped_column(Integer, default=0)

    services: Mapped[list[Service]] = relationship(
        secondary=therapist_services, back_populates="therapists", order_by="Service.position"
    )
    hours: Mapped[list[WorkingHours]] = relationship(
        back_populates="therapist",
        cascade="all, delete-orphan",
        order_by="(WorkingHours.weekday, WorkingHours.start_time)",
    )
    time_off: Mapped[list[TimeOff]] = relationship(
        back_populates="therapist", cascade="all, delete-orphan", order_by="TimeOff.starts_local"
    )

    def __repr__(self) -> str:
        return f"<Therapist {self.slug}>"


class WorkingHours(db.Model):
    """One weekly window of a therapist's hours, wall clock in the clinic zone."""

    __tablename__ = "working_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="working_hours_weekday"),
        CheckConstraint("end_time > start_time", name="working_hours_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)

    therapist: Mapped[Therapist] = relationship(back_populates="hours")


class TimeOff(db.Model):
    """A period a therapist does not see patients, wall clock in the clinic zone."""

    __tablename__ = "time_off"
    __table_args__ = (CheckConstraint("ends_local > starts_local", name="time_off_order"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    starts_local: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    ends_local: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    reason: Mapped[str] = mapped_column(String(200), default="")

    therapist: Mapped[Therapist] = relationship(back_populates="time_off")


_SPACES = re.compile(r"\s+")


def patient_identity(email: str, name: str) -> str:
    """How the clinic tells patients apart: contact email and name, case and spacing ignored.

    A parent books for several children from one address; each child is their own patient.
    """
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
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_uid: Mapped[str] = mapped_column(String(120), unique=True, default=new_calendar_uid)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=AppointmentStatus.CONFIRMED)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    busy_until: Mapped[datetime] = mapped_column(UTCDateTime)
    notes: Mapped[str] = mapped_column(Text, default="")
    booked_by: Mapped[str] = mapped_column(String(120))  # "patient", "api", "staff:<email>"
    evaluation_override: Mapped[str] = mapped_column(Text, default="")
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    service: Mapped[Service] = relationship()
    therapist: Mapped[Therapist] = relationship()
    patient: Mapped[Patient] = relationship(back_populates="appointments")

    @property
    def is_live(self) -> bool:
        return self.status != AppointmentStatus.CANCELLED


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


class AuditEntry(db.Model):
    """Who changed what, when: every change to an appointment or a schedule."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_appointment", "appointment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL"), nullable=True
    )
    therapist_id: Mapped[int | None] = mapped_column(
        ForeignKey("therapists.id", ondelete="SET NULL"), nullable=True
    )
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class NotificationKind(enum.StrEnum):
    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    AFTERCARE = "aftercare"
    CANCELLATION = "cancellation"
    RESCHEDULE = "reschedule"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a dispatcher until lease_until
    SENT = "sent"
    FAILED = "failed"  # gave up after the last try; staff can see it
    DROPPED = "dropped"  # no longer wanted: the visit was moved or cancelled


def new_message_id() -> str:
    return f"<notification-{uuid.uuid4()}@clinic-booking>"


class Notification(db.Model):
    """One email owed to a patient about an appointment: a row in the outbox.

    Written in the same transaction as the booking change that calls for it; the dispatcher
    sends it when due. The Message-ID is fixed at creation, so a retry is the same message.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('confirmation', 'reminder', 'aftercare', 'cancellation', 'reschedule')",
            name="notification_kind",
        ),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'dropped')",
            name="notification_status",
        ),
        Index("ix_notifications_status_due", "status", "due_at"),
        Index("ix_notifications_appointment", "appointment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    # Which of the service's reminders or aftercare notes this is (0 = the first listed).
    step: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(120), unique=True, default=new_message_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    appointment: Mapped[Appointment] = relationship()
