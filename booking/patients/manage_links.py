"""Manage links: signed tokens that let whoever holds one see, cancel or reschedule one visit.

The token names the appointment and its calendar UID and is signed with the secret key, so it
opens that appointment and no other. Nothing is stored: it is checked on use, and it stops
working a while after the visit ends (MANAGE_LINK_GRACE_DAYS), however often it was moved.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from booking.extensions import db
from booking.models import Appointment, utc_now

_SALT = "manage-appointment"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def manage_token_for(appointment: Appointment) -> str:
    return _serializer().dumps([appointment.id, appointment.calendar_uid])


def manage_url_for(appointment: Appointment) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/manage/{manage_token_for(appointment)}"


def appointment_for_token(
    token: str, appointment_id: int | None = None, *, now: datetime | None = None
) -> Appointment | None:
    """The appointment this token opens (and only if it is `appointment_id`, when given)."""
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        return None
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int)):
        return None
    token_id, token_uid = payload
    if appointment_id is not None and token_id != appointment_id:
        return None
    appointment = db.session.get(Appointment, token_id)
    if appointment is None or not hmac.compare_digest(
        str(token_uid).encode(), appointment.calendar_uid.encode()
    ):
        return None
    grace = timedelta(days=current_app.config["MANAGE_LINK_GRACE_DAYS"])
    if (now or utc_now()) > appointment.end_at + grace:
        return None
    return appointment
