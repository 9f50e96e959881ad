"""Therapists' calendars from elsewhere (personal, hospital): their busy times block booking.

A calendar is an ICS address refreshed by the scheduler, or a file uploaded once. The last
copy that could be read is kept, so a source that fails keeps blocking what it blocked; its
events are kept expanded as busy spans (ExternalBusyTime), which availability reads.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.models.clinic import Therapist
from booking.models.instants import UTCDateTime, utc_now


class ExternalCalendar(db.Model):
    __tablename__ = "external_calendars"
    __table_args__ = (Index("ix_external_calendars_therapist", "therapist_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))  # what staff call it: "Hospital rota"
    # An http(s) address refreshed every few minutes, or "" for an uploaded file.
    url: Mapped[str] = mapped_column(String(2000), default="")
    # The last copy that could be read (the upload itself, for a file); empty before any.
    content: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    # For conditional GET: the source's validators for `content`.
    etag: Mapped[str] = mapped_column(String(300), default="")
    last_modified: Mapped[str] = mapped_column(String(100), default="")
    # Last attempt, last success, and what went wrong last time ("" when the last one worked).
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Busy spans are expanded up to here (recurring events have no end of their own).
    expanded_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    therapist: Mapped[Therapist] = relationship()

    @property
    def is_upload(self) -> bool:
        return not self.url


class ExternalBusyTime(db.Model):
    """One busy span of an external calendar (an event, or one occurrence of a series)."""

    __tablename__ = "external_busy_times"
    __table_args__ = (
        Index("ix_external_busy_times_therapist_start", "therapist_id", "start_at"),
        Index("ix_external_busy_times_calendar", "calendar_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(
        ForeignKey("external_calendars.id", ondelete="CASCADE")
    )
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
