"""The login limit: failed sign-ins from one client, counted in the database.

RATE_LIMIT_LOGIN ("10 per minute;100 per day") is how many failed sign-ins one remote address
may make in each window before the login answers 429. They are rows (SignInFailure), so every
gunicorn worker on every host counts the same ones; an in-memory count, per worker, let a
guesser try about twenty times a minute with two workers. Successful sign-ins are not counted,
and reading the login page is never limited. Rows older than the longest window are deleted
as new failures come in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, request
from limits import parse_many
from sqlalchemy import delete, func, select

from booking.database import hold_write_lock
from booking.extensions import db
from booking.models import utc_now
from booking.models.sign_in_failures import SignInFailure


def _windows() -> list[tuple[int, timedelta]]:
    """(failures allowed, window) for each part of RATE_LIMIT_LOGIN."""
    return [(item.amount, timedelta(seconds=item.get_expiry()))
            for item in parse_many(current_app.config["RATE_LIMIT_LOGIN"])]


def _client() -> str:
    return (request.remote_addr or "unknown")[:64]


def seconds_until_allowed(now: datetime | None = None) -> int:
    """0 when this request's client may try to sign in; else how long until it may."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return 0
    now = now or utc_now()
    client = _client()
    wait = 0
    for allowed, window in _windows():
        recent = select(SignInFailure.at).where(
            SignInFailure.client == client, SignInFailure.at > now - window
        )
        failures = db.session.scalar(select(func.count()).select_from(recent.subquery()))
        if failures >= allowed:
            # The oldest failure that still counts leaves the window first.
            oldest = db.session.scalar(
                recent.order_by(SignInFailure.at).offset(failures - allowed).limit(1)
            )
            wait = max(wait, int((oldest + window - now).total_seconds()) + 1)
    return wait


def record_failure(now: datetime | None = None) -> None:
    """Count a failed sign-in from this request's client, and commit it."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    now = now or utc_now()
    longest = max(window for _, window in _windows())
    db.session.rollback()  # nothing of the failed sign-in is kept but this
    hold_write_lock()
    db.session.execute(delete(SignInFailure).where(SignInFailure.at <= now - longest))
    db.session.add(SignInFailure(client=_client(), at=now))
    db.session.commit()
