"""The waitlist: patients waiting for a time to open up, and the offers made to them.

An entry keeps the patient's details as they gave them (as a booking does): who waits may
not have a record yet. An offer is one free time put to one entry; its mail goes through
the outbox (a `waitlist_offer` notification), and its time to claim runs from when that
mail is sent.
"""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.models.appointments import Appointment
from booking.models.clinic import Service, Therapist
from booking.models.instants import UTCDateTime, utc_now
from booking.rules.waitlist import PARTS_OF_DAY, from_mask


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    BOOKED = "booked"  # claimed an offer, or booked that service by other means
    LEFT = "left"  # the patient left through their link
    REMOVED = "removed"  # staff took it off
    ENDED = "ended"  # its `until` date passed


class OfferStatus(enum.StrEnum):
    SENT = "sent"  # written (its mail may be held by the quiet hours: sent_at is then empty)
    EXPIRED = "expired"  # not claimed in time; the time passed to the next entries
    CLAIMED = "claimed"  # booked through this offer
    TAKEN = "taken"  # the time went to another patient first


def new_waitlist_token() -> str:
    return secrets.token_urlsafe(32)


class WaitlistEntry(db.Model):
    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('waiting', 'booked', 'left', 'removed', 'ended')",
            name="waitlist_entry_status",
        ),
        CheckConstraint("until >= available_from", name="waitlist_entry_dates"),
        Index("ix_waitlist_entries_waiting", "status", "service_id", "created_at"),
        Index("ix_waitlist_entries_patient", "patient_identity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    manage_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_waitlist_token)
    status: Mapped[str] = mapped_column(String(16), default=WaitlistStatus.WAITING)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    # None: any therapist who offers the service.
    therapist_id: Mapped[int | None] = mapped_column(ForeignKey("therapists.id"), nullable=True)
    available_from: Mapped[date] = mapped_column(Date)
    until: Mapped[date] = mapped_column(Date)
    # Weekdays and parts of the day as bits (rules.waitlist.as_mask), so that the entries a
    # freed time suits are found by the database among thousands; 0: any.
    weekday_mask: Mapped[int] = mapped_column(Integer, default=0)
    part_of_day_mask: Mapped[int] = mapped_column(Integer, default=0)
    # The patient's details as given (patients.details.PatientDetails), and who they are to
    # the clinic (models.patient_identity), to end the entry when they book.
    patient_identity: Mapped[str] = mapped_column(String(520))
    patient_name: Mapped[str] = mapped_column(String(200))
    patient_email: Mapped[str] = mapped_column(String(254))
    patient_phone: Mapped[str] = mapped_column(String(40), default="")
    patient_date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    patient_guardian_name: Mapped[str] = mapped_column(String(200), default="")
    patient_language: Mapped[str] = mapped_column(String(16), default="en")
    added_by: Mapped[str] = mapped_column(String(120))  # "patient", "api", "staff:<email>"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    service: Mapped[Service] = relationship()
    therapist: Mapped[Therapist | None] = relationship()
    offers: Mapped[list[WaitlistOffer]] = relationship(
        back_populates="entry", order_by="WaitlistOffer.id"
    )

    @property
    def weekdays(self) -> list[int]:
        """0 = Monday; empty: any day."""
        return from_mask(self.weekday_mask, range(7))

    @property
    def parts_of_day(self) -> list[str]:
        return from_mask(self.part_of_day_mask, PARTS_OF_DAY)


class WaitlistOffer(db.Model):
    __tablename__ = "waitlist_offers"
    __table_args__ = (
        CheckConstraint(
            "status IN ('sent', 'expired', 'claimed', 'taken')", name="waitlist_offer_status"
        ),
        Index("ix_waitlist_offers_entry", "entry_id"),
        Index("ix_waitlist_offers_time", "therapist_id", "start_at"),
        Index("ix_waitlist_offers_status_expiry", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entries.id", ondelete="CASCADE"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_waitlist_token)
    status: Mapped[str] = mapped_column(String(16), default=OfferStatus.SENT)
    # The last moment it may be claimed whatever the clock: the service's notice before start.
    claim_by: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id"), nullable=True
    )
    offered_by: Mapped[str] = mapped_column(String(120), default="waitlist")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    entry: Mapped[WaitlistEntry] = relationship(back_populates="offers")
    therapist: Mapped[Therapist] = relationship()
    appointment: Mapped[Appointment | None] = relationship()
