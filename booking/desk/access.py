"""Who may see and do what in the back office: the roles, and a therapist's reach.

admin: everything. front_desk: every calendar and patient, not logins or the audit log.
therapist: their own schedule, visits, patients and feed. Anything out of reach is a 403,
whether or not it exists, so guessing ids tells a therapist nothing.
"""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy import exists, select

from booking.database import holds_write_lock
from booking.extensions import db
from booking.models import Appointment, Patient, StaffRole, StaffUser, Therapist
from booking.scheduling.appointments import visit_held

EVERYONE = (StaffRole.ADMIN, StaffRole.FRONT_DESK, StaffRole.THERAPIST)
DESK = (StaffRole.ADMIN, StaffRole.FRONT_DESK)
ADMIN = (StaffRole.ADMIN,)


def load_staff_user(session_id: str) -> StaffUser | None:
    """Flask-Login's loader: the active login of this session ("id.version"), or nobody.

    A session whose version is not the login's current one has been ended (signed out, the
    login switched off): even a copy of its cookie opens nothing.
    """
    user_id, _, version = session_id.partition(".")
    if not (user_id.isdigit() and version.isdigit() and len(user_id) <= 18):
        return None
    user = db.session.get(StaffUser, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def current_role() -> StaffRole:
    """The signed-in login's role, as the enum: roles are compared as StaffRole, never text."""
    return StaffRole(current_user.role)


def allowed(*roles: StaffRole):
    """Logged in (else to the login page) and holding one of `roles` (else 403)."""

    def decorate(view):
        @wraps(view)
        @login_required
        def guarded(*args, **kwargs):
            if current_role() not in roles:
                abort(403)
            return view(*args, **kwargs)

        return guarded

    return decorate


def is_therapist() -> bool:
    return current_role() is StaffRole.THERAPIST


def own_therapist_id() -> int | None:
    """The therapist whose schedule this login is limited to; None: every therapist."""
    return current_user.therapist_id if is_therapist() else None


def therapist_in_reach(slug: str) -> Therapist:
    if is_therapist():
        therapist = db.session.get(Therapist, current_user.therapist_id)
        if therapist is None or therapist.slug != slug:
            abort(403)
        return therapist
    therapist = db.session.scalars(select(Therapist).where(Therapist.slug == slug)).first()
    if therapist is None:
        abort(404)
    return therapist


def appointment_in_reach(appointment_id: int) -> Appointment:
    """The visit, if this login reaches it. In a writing request, read held with its patient
    (`visit_held`): the change about to be made takes that read as its own."""
    if holds_write_lock():
        appointment = visit_held(appointment_id)
        if appointment is not None and is_therapist() \
                and appointment.therapist_id != current_user.therapist_id:
            appointment = None
    else:
        query = select(Appointment).where(Appointment.id == appointment_id)
        if is_therapist():
            query = query.where(Appointment.therapist_id == current_user.therapist_id)
        appointment = db.session.scalars(query).first()
    if appointment is None:
        abort(403 if is_therapist() else 404)
    return appointment


def patient_in_reach(patient_id: int) -> Patient:
    """A therapist reaches a patient only through a visit with them."""
    query = select(Patient).where(Patient.id == patient_id)
    if is_therapist():
        query = query.where(
            exists().where(
                Appointment.patient_id == Patient.id,
                Appointment.therapist_id == current_user.therapist_id,
            )
        )
    patient = db.session.scalars(query).first()
    if patient is None:
        abort(403 if is_therapist() else 404)
    return patient
