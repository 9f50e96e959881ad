"""The clinic, its services and therapists, and their hours and time off (wall clock)."""

from __future__ import annotations

import enum
from datetime import datetime, time, timedelta

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    Time,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from booking.extensions import db
from booking.models.instants import UTCDateTime, utc_now


class ServiceKind(enum.StrEnum):
    CALL = "call"
    EVALUATION = "evaluation"
    TREATMENT = "treatment"


DISCIPLINES = ("PT", "OT", "SLP")
# What a calendar feed's event says about a visit: the service and the patient's initials,
# or the service alone.
FEED_DETAILS = ("service-and-initials", "service")
# Which care advice a service's mail gives: none, or the dry needling advice in its reminders
# (what to wear, a light meal beforehand). The clinic file's aftercare_advice key says which.
AFTERCARE_ADVICE = ("none", "dry-needling")


class Durations(TypeDecorator):
    """A list of timedeltas, kept as a JSON list of whole minutes.

    Reminder and aftercare offsets: the outbox subtracts and adds them as they are.
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        minute = timedelta(minutes=1)
        if any(duration % minute for duration in value):
            raise ValueError(f"offsets are whole minutes: {value!r}")
        return [duration // minute for duration in value]

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return [timedelta(minutes=minutes) for minutes in value]


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
    # What a calendar feed event says about the visit: "service-and-initials" or "service".
    feed_details: Mapped[str] = mapped_column(
        String(32), default="service-and-initials", server_default="service-and-initials"
    )
    # The languages patient pages and mail are offered in; the first is the default.
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["en"],
                                                 server_default='["en"]')
    # Raised to revoke the front desk's clinic-wide calendar feed URL.
    feed_rotation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)
    # Raised in the same transaction as any change to the clinic, its services, therapists,
    # hours or time off (booking/clinic/reference.py), so every process knows with one read
    # whether the reference data it keeps is still right.
    reference_revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


therapist_services = Table(
    "therapist_services",
    db.metadata,
    Column("therapist_id", ForeignKey("therapists.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
)


# The longest a service's visit, and the buffer after it, may be (the clinic file refuses
# more). Reads of a window of time lean on them: a visit that could reach into the window
# started at most this long before it, so the index on (therapist, start) skips the past.
LONGEST_VISIT_MINUTES = 24 * 60
LONGEST_BUFFER_MINUTES = 24 * 60


class Service(db.Model):
    """What a patient can book: a call, an evaluation or a treatment."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("kind IN ('call', 'evaluation', 'treatment')", name="service_kind"),
        CheckConstraint("duration_minutes > 0", name="service_duration_positive"),
        CheckConstraint("buffer_after_minutes >= 0", name="service_buffer_not_negative"),
        CheckConstraint("max_series_visits >= 0", name="service_series_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # name and description in the clinic's other languages: {"name": {"es": "..."}, ...}.
    # The two columns above hold the clinic's first language, shown where one is missing.
    translations: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    kind: Mapped[str] = mapped_column(String(16))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    min_notice_hours: Mapped[int] = mapped_column(Integer, default=0)
    max_advance_days: Mapped[int] = mapped_column(Integer, default=60)
    # How long before the visit each reminder goes, and after it each aftercare note.
    reminders: Mapped[list[timedelta]] = mapped_column(Durations, default=list)
    aftercare: Mapped[list[timedelta]] = mapped_column(Durations, default=list)
    aftercare_advice: Mapped[str] = mapped_column(  # one of AFTERCARE_ADVICE
        String(32), default="none", server_default="none"
    )
    requires_evaluation: Mapped[bool] = mapped_column(Boolean, default=False)
    # > 0: patients may book a weekly series of up to this many visits online.
    max_series_visits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Online booking only for a patient a therapist has cleared for it (dry needling).
    requires_clearance: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # The slugs of the forms (ClinicForm) a patient completes before the first visit.
    forms: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
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


