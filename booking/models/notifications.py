"""The outbox: one row per email an appointment (or a waitlist offer) owes, sent by the
dispatcher."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.models.appointments import Appointment
from booking.models.instants import UTCDateTime, utc_now
from booking.models.waitlist import WaitlistOffer


class NotificationKind(enum.StrEnum):
    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    AFTERCARE = "aftercare"
    CANCELLATION = "cancellation"
    RESCHEDULE = "reschedule"
    # A visit's health forms are still missing two days before it.
    FORMS_REMINDER = "forms_reminder"
    WAITLIST_OFFER = "waitlist_offer"  # about a waitlist offer, not an appointment


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a dispatcher until lease_until
    SENT = "sent"
    FAILED = "failed"  # gave up after the last try; staff can see it
    DROPPED = "dropped"  # no longer wanted: the visit was moved or cancelled
    # Not sent because it came due too late to mean anything: a reminder whose visit had
    # already begun (a dispatcher that was down overnight). Staff see it as such.
    SKIPPED = "skipped"


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
            "kind IN ('confirmation', 'reminder', 'aftercare', 'cancellation', 'reschedule',"
            " 'forms_reminder', 'waitlist_offer')",
            name="notification_kind",
        ),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'dropped', 'skipped')",
            name="notification_status",
        ),
        Index("ix_notifications_status_due", "status", "due_at"),
        Index("ix_notifications_appointment", "appointment_id"),
        Index("ix_notifications_waitlist_offer", "waitlist_offer_id"),
        CheckConstraint(
            "(appointment_id IS NULL) <> (waitlist_offer_id IS NULL)",
            name="notification_subject",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the mail is about: an appointment, or (waitlist_offer) an offer.
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), nullable=True
    )
    waitlist_offer_id: Mapped[int | None] = mapped_column(
        ForeignKey("waitlist_offers.id", ondelete="CASCADE"), nullable=True
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
    # Unique and made in Python, so it also tells which new row is which when a booking's
    # notifications go in one INSERT (SQLite cannot vouch for the order of returned ids).
    message_id: Mapped[str] = mapped_column(
        String(120), unique=True, default=new_message_id, insert_sentinel=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    appointment: Mapped[Appointment | None] = relationship()
    waitlist_offer: Mapped[WaitlistOffer | None] = relationship()
