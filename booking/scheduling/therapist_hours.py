"""Therapists' weekly hours and time off, as staff change them from the back office.

Each change is written with an audit entry naming the therapist, inside the caller's
transaction; the public availability reads the same rows, so it follows at once. A change never
moves or cancels a visit: the visits it strands (now outside the hours, or in time off) are
returned, for staff to move or cancel themselves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from booking.clinic.reference import clinic_zone
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    Therapist,
    TimeOff,
    WorkingHours,
    audit,
    utc_now,
)
from booking.rules import availability, weekly_hours
from booking.scheduling import waitlist_offers


class ScheduleError(Exception):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


def parse_day_hours(
    weekday: int, written: str, field: str
) -> list[availability.WorkingHours]:
    """ "08:00-12:00, 13:00-17:00" as windows, with the clinic file's rules and messages."""
    items = [item.strip() for item in written.split(",") if item.strip()]
    try:
        return weekly_hours.day_windows(weekday, items)
    except weekly_hours.DayHoursError as error:
        raise ScheduleError(
            f'{error} (write the hours like "08:00-12:00, 13:00-17:00")', field=field
        ) from None


def set_weekly_hours(
    therapist: Therapist,
    hours: dict[int, list[availability.WorkingHours]],
    *,
    by: str,
    now: datetime | None = None,
) -> list[Appointment]:
    """Replace the therapist's weekly hours; returns the visits left outside them."""
    earlier_windows = weekly_windows(therapist)
    before = weekly_hours.hours_summary(earlier_windows)
    windows = weekly_hours.in_week_order(window for day in hours.values() for window in day)
    therapist.hours = [
        WorkingHours(weekday=window.weekday, start_time=window.start, end_time=window.end)
        for window in windows
    ]
    after = weekly_hours.hours_summary(windows)
    if before != after:
        _audit(by, "hours_changed", therapist, {"from": before, "to": after}, now)
    db.session.flush()
    waitlist_offers.offer_hours_added(therapist, set(windows) - set(earlier_windows), now)
    return stranded_visits(therapist, now)


def add_time_off(
    therapist: Therapist,
    starts_local: datetime,
    ends_local: datetime,
    reason: str,
    *,
    by: str,
    now: datetime | None = None,
) -> list[Appointment]:
    """Add time off (or a one-off block), clinic wall clock; returns the visits inside it."""
    if starts_local.tzinfo is not None or ends_local.tzinfo is not None:
        raise ValueError("time off is wall clock: naive local datetimes")
    if ends_local <= starts_local:
        raise ScheduleError("must end after it starts", field="ends")
    db.session.add(
        TimeOff(
            therapist=therapist, starts_local=starts_local, ends_local=ends_local, reason=reason
        )
    )
    _audit(
        by,
        "time_off_added",
        therapist,
        {"start": starts_local.isoformat(), "end": ends_local.isoformat(), "reason": reason},
        now,
    )
    db.session.flush()
    return stranded_visits(therapist, now)


def remove_time_off(time_off: TimeOff, *, by: str, now: datetime | None = None) -> None:
    _audit(
        by,
        "time_off_removed",
        time_off.therapist,
        {
            "start": time_off.starts_local.isoformat(),
            "end": time_off.ends_local.isoformat(),
            "reason": time_off.reason,
        },
        now,
    )
    db.session.delete(time_off)
    db.session.flush()
    waitlist_offers.offer_time_off_ended(
        time_off.therapist, time_off.starts_local, time_off.ends_local, now
    )


def stranded_visits(therapist: Therapist, now: datetime | None = None) -> list[Appointment]:
    """Confirmed visits still ahead that no longer fit the therapist's hours and time off."""
    now = now or utc_now()
    zone = clinic_zone()
    visits = db.session.scalars(
        select(Appointment)
        .options(joinedload(Appointment.patient), joinedload(Appointment.service))
        .where(
            Appointment.therapist_id == therapist.id,
            Appointment.status == AppointmentStatus.CONFIRMED,
            Appointment.start_at > now,
        )
        .order_by(Appointment.start_at)
    ).all()
    if not visits:
        return []
    calendar = availability.TherapistCalendar(
        therapist.slug, weekly_windows(therapist), therapist_time_off(therapist)
    )
    return [
        visit
        for visit in visits
        if not availability.fits_hours(calendar, zone, visit.start_at, visit.end_at)
    ]


def weekly_windows(therapist: Therapist) -> list[availability.WorkingHours]:
    """The therapist's hours rows as availability's windows."""
    return [
        availability.WorkingHours(row.weekday, row.start_time, row.end_time)
        for row in therapist.hours
    ]


def therapist_time_off(therapist: Therapist) -> list[availability.TimeOff]:
    """The therapist's time off rows as availability's periods (clinic wall clock)."""
    return [
        availability.TimeOff(row.starts_local, row.ends_local, row.reason)
        for row in therapist.time_off
    ]


def _audit(actor: str, action: str, therapist: Therapist, details: dict, now: datetime | None):
    audit.record(action, actor=actor, therapist_id=therapist.id,
                 details={"therapist": therapist.slug, **details}, at=now)
