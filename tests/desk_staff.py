"""Staff logins for the back-office tests, and a client already signed in as one of them."""

from __future__ import annotations

from flask import g
from flask.testing import FlaskClient
from sqlalchemy import select

from booking.extensions import db
from booking.models import StaffUser, Therapist, hash_password

PASSWORD = "correct horse battery staple"
_HASH = hash_password(PASSWORD)  # argon2 is slow on purpose: hash once for the whole run

ROLES = ("therapist", "front_desk", "admin")


def add_staff(email: str, role: str, therapist_slug: str | None = None) -> StaffUser:
    therapist_id = None
    if therapist_slug:
        therapist_id = db.session.scalars(
            select(Therapist.id).where(Therapist.slug == therapist_slug)
        ).one()
    user = StaffUser(
        email=email, password_hash=_HASH, role=role, therapist_id=therapist_id, active=True
    )
    db.session.add(user)
    db.session.commit()
    return user


def staff_logins() -> dict[str, StaffUser]:
    """One login per role (the clinic must be loaded); the therapist is Alex Rivera."""
    return {
        "therapist": add_staff("alex@clinic.example", "therapist", "alex-rivera"),
        "front_desk": add_staff("desk@clinic.example", "front_desk"),
        "admin": add_staff("admin@clinic.example", "admin"),
    }


class DeskClient(FlaskClient):
    """A test client whose every request finds its user anew.

    The tests' app context outlives requests, so Flask-Login's per-request cache of the user
    and Flask-WTF's of the form token (both on `g`) would carry one request's into the next.
    """

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


def desk_client(app) -> DeskClient:
    return DeskClient(app, app.response_class, use_cookies=True)


def signed_in(app, user: StaffUser | None) -> DeskClient:
    """A test client with this user's session (None: nobody), as Flask-Login keeps it."""
    client = desk_client(app)
    if user is not None:
        with client.session_transaction() as session:
            session["_user_id"] = user.get_id()
            session["_fresh"] = True
    return client
