"""Staff logins made and switched off, by `flask users create` or an admin in the back office.

A staff password opens patients' health data: besides a length, it must be hard to guess,
as zxcvbn estimates it, knowing the words a guesser would try first: the login's email, the
therapist's and the clinic's names.
"""

from __future__ import annotations

import contextlib
import re

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import delete, select
from zxcvbn import zxcvbn

from booking.clinic.reference import ClinicNotConfigured, current_clinic
from booking.extensions import db
from booking.models import (
    StaffApiToken,
    StaffRole,
    StaffUser,
    Therapist,
    audit,
    hash_password,
    utc_now,
)


class AccountRefused(Exception):
    """Bad input for a login; `field` names the option or form field at fault."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


def create_staff_user(
    email: str, role: StaffRole | str, therapist_slug: str | None, password: str, *, by: str
) -> StaffUser:
    """A new active login; the caller commits. Refuses duplicates and weak passwords."""
    try:
        email = validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise AccountRefused(str(error), field="email") from None
    try:
        role = StaffRole(role)
    except ValueError:
        raise AccountRefused(f"must be one of {', '.join(StaffRole)}", field="role") from None
    therapist = None
    if role is StaffRole.THERAPIST:
        if not therapist_slug:
            raise AccountRefused("a therapist login needs a therapist", field="therapist")
        therapist = db.session.scalars(
            select(Therapist).where(Therapist.slug == therapist_slug)
        ).first()
        if therapist is None:
            raise AccountRefused(f"there is no therapist {therapist_slug!r}", field="therapist")
    elif therapist_slug:
        raise AccountRefused("only a therapist login names a therapist", field="therapist")
    _check_password(password, email=email, therapist=therapist)
    if db.session.scalars(select(StaffUser).where(StaffUser.email == email)).first():
        raise AccountRefused(f"{email} already has a login", field="email")
    user = StaffUser(
        email=email,
        password_hash=hash_password(password),
        role=role,
        therapist=therapist,
        active=True,
        created_at=utc_now(),
    )
    db.session.add(user)
    _audit(by, "login_created", user, therapist)
    return user


def _check_password(password: str, *, email: str, therapist: Therapist | None) -> None:
    shortest = current_app.config["STAFF_PASSWORD_MIN_LENGTH"]
    if len(password) < shortest:
        raise AccountRefused(f"must be at least {shortest} characters", field="password")
    names = [email, *(therapist.name.split() if therapist else [])]
    with contextlib.suppress(ClinicNotConfigured):  # `users create` before the clinic file
        names += current_clinic().name.split()
    # Each word on its own too: "alex", "rivera", "clinic" are what a guesser starts with.
    words = {piece.lower() for name in names for piece in [name, *re.split(r"[\W_]+", name)]
             if len(piece) > 2}
    estimate = zxcvbn(password[:100], user_inputs=sorted(words))  # its cost grows with length
    if estimate["score"] < current_app.config["STAFF_PASSWORD_MIN_STRENGTH"]:
        warning = estimate["feedback"]["warning"]
        raise AccountRefused(
            "is too easy to guess" + (f" ({warning.rstrip('.').lower()})" if warning else "")
            + "; a few uncommon words together, unrelated to the clinic and the login, are "
            "far harder",
            field="password",
        )


def set_active(user: StaffUser, active: bool, *, by: str) -> None:
    """Switch a login off (it is signed out at its next request) or on again."""
    if user.active == active:
        return
    user.active = active
    user.end_sessions()
    _audit(by, "login_reactivated" if active else "login_deactivated", user, user.therapist)


def _audit(by: str, action: str, user: StaffUser, therapist: Therapist | None) -> None:
    audit.record(action, actor=by, therapist_id=therapist.id if therapist else None,
                 details={"login": user.email, "role": user.role})


def staff_user_by_email(email: str) -> StaffUser:
    found = db.session.scalars(
        select(StaffUser).where(StaffUser.email == email.strip().lower())
    ).first()
    if found is None:
        raise AccountRefused(f"there is no login {email.strip()!r}", field="email")
    return found


def issue_api_token(user: StaffUser, *, by: str) -> str:
    """A new personal API token for the staff API; earlier ones keep working. Shown once."""
    if not user.active:
        raise AccountRefused(f"{user.email} is switched off", field="email")
    row, token = StaffApiToken.issue(user)
    db.session.add(row)
    _audit(by, "api_token_issued", user, user.therapist)
    return token


def revoke_api_tokens(user: StaffUser, *, by: str) -> int:
    """End every API token of this login at once; returns how many there were."""
    ended = db.session.execute(
        delete(StaffApiToken).where(StaffApiToken.staff_user_id == user.id)
    ).rowcount
    _audit(by, "api_tokens_revoked", user, user.therapist)
    return ended
