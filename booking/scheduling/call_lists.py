"""The front desk's call lists: visits to follow up after a "not cleared", and patients to call
back the same day after a worrying check-in. An item stays until someone marks it done."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import joinedload

from booking.extensions import db
from booking.models import Appointment, CallListItem, CallListKind, audit, utc_now


def put_on_call_list(kind: CallListKind, appointment: Appointment, now: datetime) -> None:
    """Add the visit to the list, unless it is already there and not yet done."""
    already = db.session.scalar(
        select(
            exists().where(
                CallListItem.kind == kind,
                CallListItem.appointment_id == appointment.id,
                CallListItem.done_at.is_(None),
            )
        )
    )
    if not already:
        db.session.add(CallListItem(kind=kind, appointment_id=appointment.id, created_at=now))


def open_items(kind: CallListKind) -> list[CallListItem]:
    """What is still to do on that list, oldest first."""
    return list(
        db.session.scalars(
            select(CallListItem)
            .options(
                joinedload(CallListItem.appointment).joinedload(Appointment.patient),
                joinedload(CallListItem.appointment).joinedload(Appointment.service),
                joinedload(CallListItem.appointment).joinedload(Appointment.therapist),
            )
            .where(CallListItem.kind == kind, CallListItem.done_at.is_(None))
            .order_by(CallListItem.created_at, CallListItem.id)
        )
    )


def mark_done(item: CallListItem, *, by: str, now: datetime | None = None) -> CallListItem:
    """Someone at the desk has made the call; marking it twice changes nothing."""
    if item.done_at is not None:
        return item
    now = now or utc_now()
    item.done_at = now
    item.done_by = by
    audit.record(
        "call_list_done",
        actor=by,
        appointment_id=item.appointment_id,
        therapist_id=item.appointment.therapist_id,
        details={"list": item.kind},
        at=now,
    )
    return item
