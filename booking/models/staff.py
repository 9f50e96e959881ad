"""The clinic's staff logins: who may open the back office, and with which role."""

from __future__ import annotations

import enum
from contextlib import suppress
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.extensions import db
from booking.models.clinic import Therapist
from booking.models.instants import UTCDateTime, utc_now


class StaffRole(enum.StrEnum):
    ADMIN = "admin"  # everything: calendars, patients, logins, the audit log
    FRONT_DESK = "front_desk"  # every calendar and patient
    THERAPIST = "therapist"  # their own schedule and feed only


# argon2id with the library's defaults (RFC 9106's second recommended profile).
_hasher = PasswordHasher()
# Checked against when the email is unknown, so a wrong email takes as long as a wrong password.
_NOBODY_HASH = _hasher.hash("nobody has this password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class StaffUser(UserMixin, db.Model):
    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'front_desk', 'therapist')", name="staff_role"),
        CheckConstraint(
            "(role = 'therapist') = (therapist_id IS NOT NULL)", name="staff_therapist_link"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower case
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    therapist_id: Mapped[int | None] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), nullable=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # Part of every session's login id: raising it ends every session of this login, even a
    # copy of the cookie taken before (signing out, the login switched off, a new password).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    therapist: Mapped[Therapist | None] = relationship()

    @property
    def is_active(self) -> bool:  # Flask-Login: a deactivated login cannot sign in
        return self.active

    def get_id(self) -> str:  # Flask-Login: what the session cookie keeps
        return f"{self.id}.{self.session_version}"

    def end_sessions(self) -> None:
        """Every session of this login ends at its next request; the caller commits."""
        self.session_version += 1

    @property
    def actor(self) -> str:
        """How this person is named in the audit trail and on appointments they book."""
        return f"staff:{self.email}"

    def password_matches(self, password: str) -> bool:
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def __repr__(self) -> str:
        return f"<StaffUser {self.role}>"


def no_such_staff_user(password: str) -> bool:
    """Spend the time a real check takes, and fail: the answer to an unknown email."""
    with suppress(VerificationError, InvalidHashError):
        _hasher.verify(_NOBODY_HASH, password)
    return False
