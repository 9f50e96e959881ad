"""Manage links: signed tokens that let whoever holds one see, cancel or reschedule one visit.

The token names the appointment and its calendar UID and is signed with the secret key, so it
opens that appointment and no other. Nothing is stored: it is checked on use, and it stops
working a while after the visit ends (MANAGE_LINK_GRACE_DAYS), however often it was moved.
A series' token (salted apart) opens each visit of its series the same way, and the series.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from functools import lru_cache

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from booking.database import holds_write_lock
from booking.extensions import db
from booking.models import Appointment, AppointmentSeries, utc_now

_SALT = "manage-appointment"


def _serializer() -> URLSafeSerializer:
    return _signer(current_app.config["SECRET_KEY"], _SALT)


@lru_cache(maxsize=8)
def _signer(secret_key: str, salt: str) -> URLSafeSerializer:
    """One per key and salt: it holds no state between tokens, and making one (it tries its
    encoder on the way) cost a third of what signing a token with it does."""
    return URLSafeSerializer(secret_key, salt=salt)


def manage_token_for(appointment: Appointment) -> str:
    return _serializer().dumps([appointment.id, appointment.calendar_uid])


def manage_url_for(appointment: Appointment) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/manage/{manage_token_for(appointment)}"


def appointment_for_token(
    token: str, appointment_id: int | None = None, *, now: datetime | None = None,
    only_to_read: bool = False,
) -> Appointment | None:
    """The appointment this token opens (and only if it is `appointment_id`, when given).

    In a writing request, read held with its patient and therapist: what cancelling or
    moving it reads first, so that the change needs no read of its own. `only_to_read`
    (the language of the link's pages): as the session holds it, never read again."""
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        return _series_appointment(token, appointment_id, now)
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int)):
        return None
    token_id, token_uid = payload
    if appointment_id is not None and token_id != appointment_id:
        return None
    if holds_write_lock() and not only_to_read:
        from booking.scheduling.appointments import visit_held

        appointment = visit_held(token_id)
    else:
        appointment = db.session.get(Appointment, token_id)
    if appointment is None or not hmac.compare_digest(
        str(token_uid).encode(), appointment.calendar_uid.encode()
    ):
        return None
    return _within_grace(appointment, now)


def _within_grace(appointment: Appointment, now: datetime | None) -> Appointment | None:
    grace = timedelta(days=current_app.config["MANAGE_LINK_GRACE_DAYS"])
    if (now or utc_now()) > appointment.end_at + grace:
        return None
    return appointment


# --- A series' manage token: every visit of the series, and the series' own list -----------

_SERIES_SALT = "manage-series"


def _series_serializer() -> URLSafeSerializer:
    return _signer(current_app.config["SECRET_KEY"], _SERIES_SALT)


def series_token_for(series: AppointmentSeries) -> str:
    return _series_serializer().dumps([series.id, series.key])


def series_manage_url_for(series: AppointmentSeries) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/manage/{series_token_for(series)}"


def series_for_token(token: str, series_id: int | None = None) -> AppointmentSeries | None:
    """The series this token opens (and only if it is `series_id`, when given)."""
    try:
        payload = _series_serializer().loads(token)
    except BadSignature:
        return None
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int)):
        return None
    token_id, token_key = payload
    if series_id is not None and token_id != series_id:
        return None
    series = db.session.get(AppointmentSeries, token_id)
    if series is None or not hmac.compare_digest(str(token_key).encode(), series.key.encode()):
        return None
    return series


def _series_appointment(
    token: str, appointment_id: int | None, now: datetime | None
) -> Appointment | None:
    # A series token opens each visit of its series by id; it names no single visit.
    if appointment_id is None:
        return None
    series = series_for_token(token)
    if series is None:
        return None
    # Found among the series' own visits: any id asked for is compared, never looked up.
    appointment = next(
        (visit for visit in series.appointments if visit.id == appointment_id), None
    )
    if appointment is None:
        return None
    return _within_grace(appointment, now)
