"""The waitlist as patients and staff use it: joining, leaving, and claiming an offered time.

A claim books through `book_appointment`, under its guarantees (the write lock on SQLite,
the exclusion constraint on PostgreSQL): of many patients claiming one time at once, one gets
it and the others are told it was taken, and stay on the waitlist. Offers themselves are
written by waitlist_offers, when a time becomes free.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from sqlalchemy import select, update

from booking.clinic.reference import current_clinic, service_row, therapist_row, zone_named
from booking.database import hold_write_lock
from booking.extensions import db
from booking.models import (
    Appointment,
    OfferStatus,
    Service,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
    audit,
    patient_identity,
    utc_now,
)
from booking.patients.details import PatientDetails
from booking.rules.waitlist import PARTS_OF_DAY, WEEKDAYS, as_mask
from booking.scheduling import waitlist_offers
from booking.scheduling.appointments import (
    SchedulingError,
    SlotUnavailable,
    book_appointment,
    therapists_offering,
)


class OfferTaken(SchedulingError):
    code = "offer_taken"
    status = 409
    field = None


class OfferExpired(SchedulingError):
    code = "offer_expired"
    status = 410
    field = None


class WaitlistRefused(SchedulingError):
    """An entry the clinic cannot keep: its dates are past, or further ahead than booking."""

    code = "validation_error"
    status = 422


def join_waitlist(
    service: Service,
    patient: PatientDetails,
    available_from: date,
    until: date,
    *,
    therapist_slug: str | None = None,
    weekdays: list[str] | None = None,
    parts_of_day: list[str] | None = None,
    added_by: str = "patient",
    now: datetime | None = None,
) -> WaitlistEntry:
    """Put the patient on the waitlist for `service` (with one therapist, or anyone), for
    times between the two dates (clinic days, inclusive) on these weekdays and parts of the
    day (none given: any)."""
    now = now or utc_now()
    hold_write_lock()
    therapist = therapists_offering(service, therapist_slug)[0] if therapist_slug else None
    today = now.astimezone(zone_named(current_clinic().timezone)).date()
    if until < available_from:
        raise WaitlistRefused("until: is before from", field="until")
    if until < today:
        raise WaitlistRefused("until: is in the past", field="until")
    latest = today + timedelta(days=service.max_advance_days)
    if available_from > latest:
        raise WaitlistRefused(
            f"from: {service.name} is booked at most {service.max_advance_days} days ahead",
            field="from",
        )
    entry = WaitlistEntry(
        service_id=service.id,
        therapist_id=therapist.id if therapist else None,
        available_from=max(available_from, today),
        until=min(until, latest),
        weekday_mask=as_mask(weekdays or (), WEEKDAYS),
        part_of_day_mask=as_mask(parts_of_day or (), PARTS_OF_DAY),
        patient_identity=patient_identity(patient.email, patient.name),
        patient_name=" ".join(patient.name.split()),
        patient_email=patient.email.strip(),
        patient_phone=patient.phone,
        patient_date_of_birth=patient.date_of_birth,
        patient_guardian_name=patient.guardian_name,
        patient_language=patient.language or "en",
        status=WaitlistStatus.WAITING,
        added_by=added_by,
        created_at=now,
    )
    entry.service = service_row(service)
    entry.therapist = therapist_row(therapist) if therapist else None
    db.session.add(entry)
    db.session.flush()
    audit.record("waitlist_joined", actor=added_by,
                 therapist_id=entry.therapist_id,
                 details={"entry": entry.id, "service": service.slug}, at=now)
    return entry


def leave_waitlist(entry: WaitlistEntry, *, by: str = "patient",
                   now: datetime | None = None) -> WaitlistEntry:
    """The patient leaves through their link, or staff take the entry off."""
    now = now or utc_now()
    hold_write_lock()
    db.session.refresh(entry)
    if entry.status != WaitlistStatus.WAITING:
        return entry
    entry.status = WaitlistStatus.LEFT if by in ("patient", "api") else WaitlistStatus.REMOVED
    entry.ended_at = now
    audit.record("waitlist_left", actor=by, therapist_id=entry.therapist_id,
                 details={"entry": entry.id}, at=now)
    return entry


def claim_offer(offer: WaitlistOffer, *, now: datetime | None = None) -> Appointment:
    """Book the offered time for the entry's patient: the first claim wins.

    Raises OfferTaken when the time went to someone else first, OfferExpired when the offer
    lapsed or the patient no longer waits.
    """
    now = now or utc_now()
    hold_write_lock()
    # No row lock on the offer: claims of one time (one offer clicked twice, or several
    # offers) are settled by the booking itself, and a lock held while PostgreSQL makes the
    # others wait on the winner's visit would deadlock with the winner marking them taken.
    db.session.refresh(offer)
    entry = offer.entry
    db.session.refresh(entry)
    if offer.status in (OfferStatus.CLAIMED, OfferStatus.TAKEN):
        raise OfferTaken("that time has been taken by another patient")
    if entry.status != WaitlistStatus.WAITING or not waitlist_offers.is_open(offer, now):
        raise OfferExpired("this offer has expired")
    details = PatientDetails.model_construct(
        name=entry.patient_name, email=entry.patient_email, phone=entry.patient_phone,
        date_of_birth=entry.patient_date_of_birth, guardian_name=entry.patient_guardian_name,
        language=entry.patient_language,
    )
    try:
        appointment = book_appointment(
            entry.service, offer.start_at, details, therapist_slug=offer.therapist.slug,
            booked_by="waitlist", now=now,
        )
    except SlotUnavailable:
        raise OfferTaken("that time has been taken by another patient") from None
    offer.status = OfferStatus.CLAIMED
    offer.appointment_id = appointment.id
    entry.status = WaitlistStatus.BOOKED
    entry.ended_at = now
    # The others offered this time see at once that it is gone.
    db.session.execute(
        update(WaitlistOffer)
        .where(
            WaitlistOffer.therapist_id == offer.therapist_id,
            WaitlistOffer.start_at == offer.start_at,
            WaitlistOffer.status == OfferStatus.SENT,
            WaitlistOffer.id != offer.id,
        )
        .values(status=OfferStatus.TAKEN)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return appointment


# --- lookups -------------------------------------------------------------------------------


# Entries' ids are the database's (32-bit) integers: a larger one is no entry, not a query.
_LARGEST_ENTRY_ID = 2**31 - 1


def entry_by_id(entry_id: int) -> WaitlistEntry | None:
    return db.session.get(WaitlistEntry, entry_id) if entry_id <= _LARGEST_ENTRY_ID else None


def entry_for_token(entry_id: int, token: str) -> WaitlistEntry | None:
    entry = entry_by_id(entry_id)
    if entry is None or not secrets.compare_digest(entry.manage_token, token):
        return None
    return entry


def offer_for_token(token: str) -> WaitlistOffer | None:
    if not token or len(token) > 64:
        return None
    return db.session.scalars(select(WaitlistOffer).where(WaitlistOffer.token == token)).first()


def waiting_entries(service: Service | None = None) -> list[WaitlistEntry]:
    """The entries still waiting, oldest first (the order offers go out in)."""
    query = select(WaitlistEntry).where(WaitlistEntry.status == WaitlistStatus.WAITING)
    if service is not None:
        query = query.where(WaitlistEntry.service_id == service.id)
    return list(db.session.scalars(query.order_by(WaitlistEntry.created_at, WaitlistEntry.id)))
