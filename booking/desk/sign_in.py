"""Signing in to the back office and out again: the login page, rate limited, the same answer
for a wrong email as for a wrong password, and no open redirect after it."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from booking.desk import sign_in_attempts
from booking.desk.access import EVERYONE, allowed
from booking.desk.forms import LoginForm
from booking.extensions import db
from booking.models import StaffUser
from booking.models.staff import no_such_staff_user
from booking.web.requests import writing

sign_in = Blueprint("sign_in", __name__)


@sign_in.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("desk.calendar.day"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if not form.validate_on_submit():
        return render_template("desk/login.html", form=form), 422 if form.errors else 200
    wait = sign_in_attempts.seconds_until_allowed()
    if wait:
        return render_template(
            "desk/login.html", form=form,
            failed="Too many failed sign-ins from here. Please wait a minute and try again.",
        ), 429, {"Retry-After": str(wait)}
    email = form.email.data.strip().lower()
    user = db.session.scalars(select(StaffUser).where(StaffUser.email == email)).first()
    matches = (
        user.password_matches(form.password.data)
        if user is not None
        else no_such_staff_user(form.password.data)
    )
    if not (matches and user.active):
        sign_in_attempts.record_failure()
        # The same words whichever was wrong: no telling which emails have logins.
        return render_template(
            "desk/login.html", form=form, failed="That email and password do not match."
        ), 401
    # A new form token with the new session: one seen before signing in proves nothing.
    session.pop("csrf_token", None)
    login_user(user)
    session.permanent = True
    return redirect(_safe_next(form.next.data) or url_for("desk.calendar.day"), 303)


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the back office: the login page is no open redirect."""
    if not target or any(character < " " or character == "\x7f" for character in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/desk/") or "\\" in target:
        return None
    return target


@sign_in.post("/logout")
@allowed(*EVERYONE)
@writing
def logout():
    current_user.end_sessions()  # a copy of this session's cookie ends with it
    logout_user()
    session.clear()
    return redirect(url_for("desk.sign_in.login"), 303)
