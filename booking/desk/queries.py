"""What the back office reads, each in a fixed number of queries however full the clinic is."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from booking.desk.calendar_grid import Column, day_column
from booking.extensions import db
from booking.models import (
    LONGEST_VISIT,
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    AuditEntry,
    Notification,
    Patient,
    Therapist,
    TimeOff,
    WorkingHours,
)
from booking.scheduling.therapist_time import local_day_bounds

PATIENT_LIST_LIMIT = 100
AUDIT_PAGE_LIMIT = 200


def active_therapists(only_id: int | None = None) -> list[Therapist]:
    query = select(Therapist).where(Therapist.active.is_(True))
    if only_id is not None:
        query = query.where(Therapist.id == only_id)
    return list(db.session.scalars(query.order_by(Therapist.position, Therapist.slug)))


def calendar_columns(therapists: list[Therapist], days: list[date], zone) -> list[Column]:
    """A column per (therapist, day): four queries (hours, time off, visits with their patients
    and services) for any number of therapists and days."""
    ids = [therapist.id for therapist in therapists]
    if not ids:
        return []
    window_start, window_end = local_day_bounds(days[0], days[-1], zone)
    hours: dict[tuple[int, int], list[tuple[time, time]]] = defaultdict(list)
    for row in db.session.execute(
        select(
            WorkingHours.therapist_id,
            WorkingHours.weekday,
            WorkingHours.start_time,
            WorkingHours.end_time,
        )
        .where(WorkingHours.therapist_id.in_(ids))
        .order_by(WorkingHours.start_time)
    ):
        hours[(row.therapist_id, row.weekday)].append((row.start_time, row.end_time))
    local_from = datetime.combine(days[0], time())
    local_to = datetime.combine(days[-1] + timedelta(days=1), time())
    time_off = defaultdict(list)
    for row in db.session.execute(
        select(TimeOff.therapist_id, TimeOff.starts_local, TimeOff.ends_local, TimeOff.reason)
        .where(
            TimeOff.therapist_id.in_(ids),
            TimeOff.starts_local < local_to,
            TimeOff.ends_local > local_from,
        )
    ):
        time_off[row.therapist_id].append((row.starts_local, row.ends_local, row.reason))
    visits = defaultdict(list)
    for visit in db.session.scalars(
        select(Appointment)
        .options(joinedload(Appointment.patient), joinedload(Appointment.service))
        .where(
            Appointment.therapist_id.in_(ids),
            Appointment.start_at < window_end,
            Appointment.end_at > window_start,
            # No visit is longer: this bound lets the index on the start skip the past.
            Appointment.start_at > window_start - LONGEST_VISIT,
        )
        .order_by(Appointment.start_at)
    ):
        visits[(visit.therapist_id, visit.start_at.astimezone(zone).date())].append(visit)
    return [
        day_column(
            title=therapist.name if len(days) == 1 else f"{day:%a %d %b}",
            key=therapist.slug if len(days) == 1 else day.isoformat(),
            therapist=therapist.slug,
            day=day,
            zone=zone,
            hours=hours[(therapist.id, day.weekday())],
            time_off=time_off[therapist.id],
            visits=visits[(therapist.id, day)],
        )
        for therapist in therapists
        for day in days
    ]


def find_patients(search: str, *, limit: int = PATIENT_LIST_LIMIT) -> list[Patient]:
    """Patients whose name, email or phone contains `search` (case ignored), by name."""
    query = select(Patient).order_by(Patient.name, Patient.id).limit(limit)
    words = search.split()
    if words:
        text = " ".join(words).casefold()
        pattern = f"%{_escaped(text)}%"
        digits = "".join(char for char in search if char.isdigit())
        conditions = [
            func.lower(Patient.name).like(pattern, escape="\\"),
            func.lower(Patient.email).like(pattern, escape="\\"),
        ]
        if len(digits) >= 3:
            # Phones are written many ways; compare the digits only.
            stripped = Patient.phone
            for separator in (" ", "-", "(", ")", ".", "+"):
                stripped = func.replace(stripped, separator, "")
            conditions.append(stripped.like(f"%{digits}%"))
        query = query.where(or_(*conditions))
    return list(db.session.scalars(query))


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def visits_of(patient: Patient, therapist_id: int | None) -> list[Appointment]:
    query = (
        select(Appointment)
        .options(joinedload(Appointment.service), joinedload(Appointment.therapist))
        .where(Appointment.patient_id == patient.id)
        .order_by(Appointment.start_at.desc())
    )
    if therapist_id is not None:
        query = query.where(Appointment.therapist_id == therapist_id)
    return list(db.session.scalars(query))


def notifications_for(appointment_ids: list[int]) -> list[Notification]:
    if not appointment_ids:
        return []
    return list(
        db.session.scalars(
            select(Notification)
            .options(joinedload(Notification.appointment).joinedload(Appointment.service))
            .where(Notification.appointment_id.in_(appointment_ids))
            .order_by(Notification.due_at.desc(), Notification.id.desc())
        )
    )


def audit_entries(
    *, actor: str = "", action: str = "", since=None, until=None, zone=None
) -> list[tuple[AuditEntry, str | None]]:
    """The latest entries matching the filters, with the therapist's name where there is one."""
    query = (
        select(AuditEntry, Therapist.name)
        .outerjoin(Therapist, Therapist.id == AuditEntry.therapist_id)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .limit(AUDIT_PAGE_LIMIT)
    )
    if actor:
        query = query.where(
            func.lower(AuditEntry.actor).like(f"%{_escaped(actor.casefold())}%", escape="\\")
        )
    if action:
        query = query.where(AuditEntry.action == action)
    if since:
        query = query.where(AuditEntry.created_at >= local_day_bounds(since, since, zone)[0])
    if until:
        query = query.where(AuditEntry.created_at < local_day_bounds(until, until, zone)[1])
    return [(row.AuditEntry, row.name) for row in db.session.execute(query)]


def audit_actions() -> list[str]:
    return list(
        db.session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    )


def courses_of(patient: Patient, therapist_id: int | None) -> list[tuple]:
    """The patient's courses, newest first, each with its live visits' count."""
    query = (
        select(AppointmentSeries, func.count(Appointment.id))
        .join(Appointment, Appointment.series_id == AppointmentSeries.id)
        .where(AppointmentSeries.patient_id == patient.id,
               Appointment.status != AppointmentStatus.CANCELLED)
        .group_by(AppointmentSeries.id)
        .order_by(AppointmentSeries.created_at.desc())
    )
    if therapist_id is not None:
        query = query.where(AppointmentSeries.therapist_id == therapist_id)
    return list(db.session.execute(query).all())
