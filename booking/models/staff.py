"""The clinic's staff logins: who may open the back office, and with which role; and the
personal API tokens of those logins for the staff API (`/api/v1/staff`)."""

from __future__ import annotations

import enum
import hashlib
import secrets
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


def api_token_digest(token: str) -> str:
    """What is kept of a token: its SHA-256. A token is 256 random bits, so no slow hash is
    needed, and a copy of the database holds nothing that opens the API."""
    return hashlib.sha256(token.encode()).hexdigest()


class StaffApiToken(db.Model):
    """A personal API token of one staff login (`flask users token`); several may be live."""

    __tablename__ = "staff_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    staff_user: Mapped[StaffUser] = relationship()

    @classmethod
    def issue(cls, user: StaffUser) -> tuple[StaffApiToken, str]:
        """A new token for `user`: the row to add, and the token, shown once."""
        token = secrets.token_urlsafe(32)
        return cls(staff_user=user, digest=api_token_digest(token), created_at=utc_now()), token
