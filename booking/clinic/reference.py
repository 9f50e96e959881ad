"""The clinic as the rest of the code asks for it: the clinic row and its time zone.

The clinic, its services and therapists are reference data, changed only by a clinic file or
the back office; every other module reads them through here.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import select

from booking.extensions import db
from booking.models import Clinic


class ClinicNotConfigured(Exception):
    """No clinic file has been loaded yet."""


def current_clinic() -> Clinic:
    # Asked for many times in a request: after the first, the session's identity map answers.
    known_id = db.session.info.get("clinic_id")
    clinic = db.session.get(Clinic, known_id) if known_id else None
    if clinic is None:
        clinic = db.session.scalars(select(Clinic).limit(1)).first()
    if clinic is None:
        raise ClinicNotConfigured("no clinic loaded: run `flask --app wsgi clinic load FILE`")
    db.session.info["clinic_id"] = clinic.id
    return clinic


@lru_cache(maxsize=16)
def zone_named(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def clinic_zone() -> ZoneInfo:
    return zone_named(current_clinic().timezone)
