"""The clinic's health screening and consent forms (reference data from the clinic file), and
the answers patients sign. Answers are health data: staff read them behind the login; they go
into no mail, feed, log or audit entry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.models.appointments import Appointment, Patient
from booking.models.instants import UTCDateTime, utc_now


class ClinicForm(db.Model):
    """A screening and consent form as the clinic file states it.

    `questions` is a list of {"key", "text", "type": "yes_no" | "text", "review_if"}.
    A form dropped from the file is retired, never deleted: signed answers name it.
    """

    __tablename__ = "clinic_forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    consent: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[list[dict]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class SignedForm(db.Model):
    """One form a patient (or, for a child, their guardian) answered and signed.

    Kept with the form's version: a complete form of the same version counts for the
    patient's later visits; a new version asks again.
    """

    __tablename__ = "signed_forms"
    __table_args__ = (
        # booking.rules.health_forms: COMPLETE or NEEDS_REVIEW (MISSING is never stored).
        CheckConstraint("status IN ('complete', 'needs_review')", name="signed_form_status"),
        Index("ix_signed_forms_patient_form", "patient_id", "form_slug"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    # The visit it was signed for (the answers stay the patient's if the visit goes).
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL"), nullable=True
    )
    form_slug: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    answers: Mapped[dict] = mapped_column(JSON, default=dict)  # question key -> "yes"/"no"/text
    signed_by: Mapped[str] = mapped_column(String(200))
    signer_is_guardian: Mapped[bool] = mapped_column(Boolean, default=False)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    status: Mapped[str] = mapped_column(String(16))
    reviewed_by: Mapped[str] = mapped_column(String(120), default="")  # "staff:<email>"
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    patient: Mapped[Patient] = relationship()
    appointment: Mapped[Appointment | None] = relationship()
