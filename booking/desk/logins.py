"""Staff logins, for admins: the list, a new login, and switching one off or on again
(booking/desk/accounts.py does the work, for this page and `flask users create` alike)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from booking.desk import queries
from booking.desk.access import ADMIN, allowed
from booking.desk.accounts import AccountRefused, create_staff_user, set_active
from booking.desk.forms import LoginActiveForm, NewLoginForm, choices
from booking.extensions import db
from booking.models import StaffUser
from booking.web.requests import writing

logins = Blueprint("logins", __name__)


@logins.get("/users")
@allowed(*ADMIN)
def users():
    return _users_page()


def _users_page(form: NewLoginForm | None = None, status: int = 200):
    form = form or NewLoginForm(formdata=None)
    _therapist_options(form)
    staff = db.session.scalars(select(StaffUser).order_by(StaffUser.email)).all()
    return render_template(
        "desk/users.html", form=form, logins=staff, active_form=LoginActiveForm(formdata=None)
    ), status


def _therapist_options(form: NewLoginForm) -> None:
    form.therapist.choices = choices(
        [("", "None")] + [(t.slug, t.name) for t in queries.active_therapists()]
    )


@logins.post("/users")
@allowed(*ADMIN)
@writing
def create_login():
    form = NewLoginForm()
    _therapist_options(form)
    if not form.validate_on_submit():
        return _users_page(form, 422)
    try:
        user = create_staff_user(
            form.email.data, form.role.data, form.therapist.data or None, form.password.data,
            by=current_user.actor,
        )
    except AccountRefused as refused:
        field = getattr(form, refused.field)
        field.errors = [*field.errors, refused.message]
        return _users_page(form, 422)
    flash(f"Created the {user.role} login {user.email}.")
    return redirect(url_for(".users"), 303)


@logins.post("/users/<int:user_id>/active")
@allowed(*ADMIN)
@writing
def set_login_active(user_id: int):
    user = db.session.get(StaffUser, user_id)
    if user is None:
        abort(404)
    form = LoginActiveForm()
    if not form.validate_on_submit():
        flash("Active: choose on or off.")
        return _users_page(status=422)
    if user.id == current_user.id:
        flash("You cannot switch off your own login.")
        return _users_page(status=409)
    set_active(user, form.active.data == "on", by=current_user.actor)
    flash(f"{user.email} is {'active' if user.active else 'switched off'}.")
    return redirect(url_for(".users"), 303)
