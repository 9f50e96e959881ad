"""What a calendar feed holds: which visits, what their events say, and the feed's version.

A therapist's feed holds their visits; the clinic-wide one (front desk) everyone's. From
FEED_PAST_DAYS back on; a cancelled visit stays, as cancelled, for FEED_CANCELLED_DAYS after
it was cancelled, so subscribed calendars remove it; a no-show is shown cancelled too (the
slot was not used). An event says the service and, unless the clinic chose "service" (clinic
file `feed_details`), the patient's initials; never contact details or notes. It links to the
visit's page in the back office, behind the staff login: for a call, that is where the number
to call is. A visit of a weekly series says which of how many it is. Only the front desk's
clinic-wide feed says why a visit was called off.

The version (ETag) comes from one aggregate query plus what is already loaded, so an
unchanged feed answers 304 without being built.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from flask import current_app
from sqlalchemy import bindparam, func, or_, select

from booking.calendars.ical import ZONE_RULES_YEARS, FeedEvent, feed_text
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    Patient,
    Service,
    ServiceKind,
    Therapist,
)
from booking.scheduling.series import SeriesPlace, places_in_series

# Raised when what a feed says about a visit changes shape, so every ETag changes with it.
FEED_FORMAT = 3

# Shown cancelled in subscribed calendars: the visit is not (or did not) take place.
_CALLED_OFF = (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW)


@dataclass(frozen=True)
class FeedVersion:
    etag: str
    last_modified: datetime  # whole seconds, UTC


def feed_name(owner: Therapist | Clinic, clinic: Clinic) -> str:
    if isinstance(owner, Clinic):
        return f"{clinic.name}: all therapists"
    return f"{owner.name}: {clinic.name}"


def _included(clinic_wide: bool) -> list:
    """Which visits a feed holds, with the values bound by _window()."""
    conditions = [
        Appointment.start_at >= bindparam("visits_since"),
        or_(
            Appointment.status != AppointmentStatus.CANCELLED,
            Appointment.updated_at >= bindparam("cancelled_since"),
        ),
    ]
    if not clinic_wide:
        conditions.append(Appointment.therapist_id == bindparam("therapist_id"))
    return conditions


def _window(owner: Therapist | Clinic, now: datetime) -> dict:
    config = current_app.config
    window = {
        "visits_since": now - timedelta(days=config["FEED_PAST_DAYS"]),
        "cancelled_since": now - timedelta(days=config["FEED_CANCELLED_DAYS"]),
    }
    if isinstance(owner, Therapist):
        window["therapist_id"] = owner.id
    return window


@lru_cache(maxsize=2)
def _version_query(clinic_wide: bool):
    # Built once: a 304 is mostly this query, and building it costs as much as running it.
    return select(
        func.count(Appointment.id),
        func.coalesce(func.sum(Appointment.id), 0),
        func.coalesce(func.sum(Appointment.sequence), 0),
        func.max(Appointment.updated_at),
        _names_of(Service),
        _names_of(Therapist),
    ).where(*_included(clinic_wide))


def feed_version(owner: Therapist | Clinic, clinic: Clinic, now: datetime) -> FeedVersion:
    """The feed's ETag and Last-Modified, without building it.

    The visits in the window are summed up (how many, which, how often changed, latest
    change): a visit booked, moved, cancelled, recorded or aged out changes the sum. What else
    an event shows (service and therapist names, the clinic's zone, address and feed setting)
    goes in as it is.
    """
    # One round trip. Patients are left out: the initials come from a name, and a patient's
    # name never changes (name and email are who the patient is: another name, another one).
    clinic_wide = isinstance(owner, Clinic)
    counted = db.session.execute(_version_query(clinic_wide), _window(owner, now)).one()
    count, id_sum, sequence_sum, visits_changed, service_names, therapist_names = counted
    changes = [
        _aware(moment)
        for moment in (visits_changed, clinic.updated_at)
        if moment is not None
    ]
    subject = repr(
        (
            FEED_FORMAT,
            ZONE_RULES_YEARS,
            "clinic" if isinstance(owner, Clinic) else "therapist",
            owner.id,
            owner.feed_rotation,
            clinic.name,
            clinic.timezone,
            clinic.address,
            clinic.feed_details,
            current_app.config["PUBLIC_BASE_URL"],
            service_names,
            therapist_names,
            count,
            int(id_sum),
            int(sequence_sum),
            [moment.isoformat() for moment in changes],
        )
    )
    etag = hashlib.sha256(subject.encode()).hexdigest()[:32]
    latest = max(changes).astimezone(UTC).replace(microsecond=0)
    return FeedVersion(etag=etag, last_modified=latest)


def build_feed(owner: Therapist | Clinic, clinic: Clinic, now: datetime) -> bytes:
    """The whole feed, as bytes of text/calendar."""
    with_initials = clinic.feed_details != "service"
    clinic_wide = isinstance(owner, Clinic)
    rows = db.session.execute(
        select(
            Appointment.id,
            Appointment.calendar_uid,
            Appointment.sequence,
            Appointment.status,
            Appointment.cancel_reason,
            Appointment.start_at,
            Appointment.end_at,
            Appointment.created_at,
            Appointment.updated_at,
            Service.kind.label("service_kind"),
            Service.name.label("service"),
            Patient.name.label("patient"),
            Therapist.name.label("therapist"),
            Appointment.series_id,
        )
        .join(Service, Service.id == Appointment.service_id)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Therapist, Therapist.id == Appointment.therapist_id)
        .where(*_included(clinic_wide))
        .order_by(Appointment.start_at, Appointment.id),
        _window(owner, now),
    ).tuples().all()
    # A feed with no series visit asks nothing more.
    places = places_in_series(row[0] for row in rows if row[-1] is not None)
    address = clinic.address
    visit_pages = current_app.config["PUBLIC_BASE_URL"] + "/desk/appointments/"
    summaries: dict[tuple, str] = {}  # a busy feed has many visits per patient and service

    def summary(service: str, patient: str, therapist: str) -> str:
        key = (service, patient if with_initials else None, therapist if clinic_wide else None)
        if key not in summaries:
            summaries[key] = event_summary(*key)
        return summaries[key]

    events = (
        FeedEvent(
            uid=uid,
            sequence=sequence,
            cancelled=status in _CALLED_OFF,
            start=start,
            end=end,
            created=created,
            last_modified=updated,
            summary=summary(service, patient, therapist),
            # A call happens on the phone: the clinic's street is not where it takes place.
            location="" if kind == ServiceKind.CALL else address,
            description=event_description(
                kind, status, cancel_reason if clinic_wide else None,
                f"{visit_pages}{appointment_id}",
                in_series=places.get(appointment_id),
            ),
            url=f"{visit_pages}{appointment_id}",
        )
        for (
            appointment_id, uid, sequence, status, cancel_reason, start, end, created, updated,
            kind, service, patient, therapist, _series_id,
        ) in rows
    )
    return feed_text(name=feed_name(owner, clinic), zone_name=clinic.timezone, events=events)


def event_description(
    kind: str, status: str, reason: str | None, page: str, *,
    in_series: SeriesPlace | None = None,
) -> str:
    """What an event says beyond its summary: which visit of its weekly series it is
    (`in_series`), how a call happens (the number is on
    the visit's `page`, behind the staff login), and (`reason` given, in the clinic-wide feed
    only) why a visit was called off."""
    lines = []
    if in_series is not None:
        lines.append(f"Visit {in_series.number} of {in_series.of} of a weekly course.")
    if kind == ServiceKind.CALL:
        # In the text too: Google Calendar shows an event's DESCRIPTION, not its URL.
        lines.append(f"A phone call: the number to call is on the visit's page: {page}")
    if reason is not None and status == AppointmentStatus.NO_SHOW:
        lines.append("No-show.")
    elif reason is not None and status == AppointmentStatus.CANCELLED:
        lines.append(f"Cancelled: {reason}" if reason else "Cancelled.")
    return "\n".join(lines)


def _names_of(model):
    """Every row's name, in id order, as one text (a scalar subquery)."""
    rows = select(model.id, model.name).order_by(model.id).subquery()
    return (
        select(func.aggregate_strings(rows.c.name, "\x1f"))
        .select_from(rows)
        .scalar_subquery()
    )


def event_summary(service: str, patient: str | None, therapist: str | None) -> str:
    """"Dry needling session (PE)", plus "with <therapist>" in the clinic-wide feed."""
    summary = service
    if patient:
        initials = "".join(part[0].upper() for part in patient.split() if part[:1].isalpha())
        if initials:
            summary += f" ({initials})"
    if therapist:
        summary += f" with {therapist}"
    return summary


def _aware(moment: datetime) -> datetime:
    # Aggregates skip the column type on some databases: SQLite hands back naive UTC text.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
