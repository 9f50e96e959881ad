"""Failed back-office sign-ins, one row each: counted by booking.desk.sign_in_attempts for the
login limit, which every web worker and host must share (an in-memory count is per worker)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from booking.extensions import db
from booking.models.instants import UTCDateTime


class SignInFailure(db.Model):
    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_client_at", "client", "at"),
                      Index("ix_sign_in_failures_at", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))  # the remote address the limit keys on
    at: Mapped[datetime] = mapped_column(UTCDateTime)
