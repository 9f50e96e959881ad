"""The audit log: who changed what, when. `record` is the one way an entry is written, by
scheduling, the back office and the command line alike, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, insert
from sqlalchemy.orm import Mapped, mapped_column

from booking.extensions import db
from booking.models.instants import UTCDateTime, utc_now


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


_INSERT = insert(AuditEntry.__table__)


def record(
    action: str,
    *,
    actor: str,
    appointment_id: int | None = None,
    therapist_id: int | None = None,
    details: dict | None = None,
    at: datetime | None = None,
) -> None:
    """Write an audit entry in the caller's transaction; it commits with the change it tells of.

    `actor` is `staff:<email>`, `patient`, `cli` and the like; `details` hold what staff need
    to follow the change (never a patient's contact details or health answers). A plain row:
    no session object is made for it.
    """
    record_each(action, actor=actor, changes=[(appointment_id, therapist_id, details or {})],
                at=at)


def record_each(
    action: str,
    *,
    actor: str,
    changes: list[tuple[int | None, int | None, dict]],
    at: datetime | None = None,
) -> None:
    """The same action on several appointments (a series' visits), each entry as `record`
    writes it, in one statement: `changes` holds (appointment_id, therapist_id, details)."""
    if not changes:
        return
    at = at or utc_now()
    rows = [
        entry_row(action, actor=actor, appointment_id=appointment_id,
                  therapist_id=therapist_id, details=details, at=at)
        for appointment_id, therapist_id, details in changes
    ]
    write_rows(rows)


def write_rows(rows: list[dict]) -> None:
    """Entries made by entry_row, in one statement."""
    # One row is one plain INSERT; several, one INSERT of many rows. Core, built once.
    db.session.connection().execute(_INSERT, rows[0] if len(rows) == 1 else rows)


def entry_row(
    action: str,
    *,
    actor: str,
    appointment_id: int | None,
    therapist_id: int | None,
    details: dict,
    at: datetime,
) -> dict:
    """The entry `record` writes, as its row: for a visit about to be written, the booking
    writes it in the visit's own statement (booking/scheduling/appointments.py)."""
    return {"created_at": at, "actor": actor, "action": action,
            "appointment_id": appointment_id, "therapist_id": therapist_id, "details": details}
