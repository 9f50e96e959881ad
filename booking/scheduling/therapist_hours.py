"""Therapists' weekly hours and time off, as staff change them from the back office.

Each change is written with an audit entry naming the therapist, inside the caller's
transaction; the public availability reads the same rows, so it follows at once. A change never
moves or cancels a visit: the visits it strands (now outside the hours, or in time off) are
returned, for staff to move or cancel themselves.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from booking.clinic import clinic_file
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

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleError(Exception):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


def parse_day_hours(weekday: int, written: str, field: str) -> list[tuple[time, time]]:
    """ "08:00-12:00, 13:00-17:00" as windows, with the clinic file's rules and messages."""
    items = [item.strip() for item in written.split(",") if item.strip()]
    problems: list[clinic_file.Problem] = []
    # The clinic file's own reading of a day's hours: one rule for both ways of setting them.
    windows = clinic_file._day_windows(weekday, items, WEEKDAY_KEYS[weekday], problems)
    if problems:
        raise ScheduleError(
            "; ".join(problem.what for problem in problems)
            + ' (write the hours like "08:00-12:00, 13:00-17:00")',
            field=field,
        )
    return [(window.start, window.end) for window in windows or []]


def set_weekly_hours(
    therapist: Therapist,
    hours: dict[int, list[tuple[time, time]]],
    *,
    by: str,
    now: datetime | None = None,
) -> list[Appointment]:
    """Replace the therapist's weekly hours; returns the visits left outside them."""
    before = _hours_summary(
        (row.weekday, row.start_time, row.end_time) for row in therapist.hours
    )
    therapist.hours = [
        WorkingHours(weekday=weekday, start_time=start, end_time=end)
        for weekday in sorted(hours)
        for start, end in sorted(hours[weekday])
    ]
    after = _hours_summary(
        (weekday, start, end) for weekday, windows in hours.items() for start, end in windows
    )
    if before != after:
        _audit(by, "hours_changed", therapist, {"from": before, "to": after}, now)
    db.session.flush()
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
    windows = [(row.weekday, row.start_time, row.end_time) for row in therapist.hours]
    last = visits[-1].end_at.astimezone(zone).replace(tzinfo=None)
    time_off = [
        (row.starts_local, row.ends_local)
        for row in therapist.time_off
        if row.ends_local > now.astimezone(zone).replace(tzinfo=None) and row.starts_local < last
    ]
    return [
        visit
        for visit in visits
        if not fits(
            visit.start_at.astimezone(zone).replace(tzinfo=None),
            visit.end_at.astimezone(zone).replace(tzinfo=None),
            windows,
            time_off,
        )
    ]


def fits(
    start: datetime,
    end: datetime,
    windows: list[tuple[int, time, time]],
    time_off: list[tuple[datetime, datetime]],
) -> bool:
    """Whether a visit (wall clock) lies inside one working window and outside all time off."""
    day: date = start.date()
    inside_hours = end.date() == day or end == datetime.combine(day + timedelta(days=1), time())
    inside_hours = inside_hours and any(
        weekday == day.weekday() and start.time() >= first and _wall_end(end, day) <= last
        for weekday, first, last in windows
    )
    return inside_hours and not any(
        off_start < end and start < off_end for off_start, off_end in time_off
    )


def _wall_end(end: datetime, day: date) -> time:
    return end.time() if end.date() == day else time.max


def _hours_summary(windows) -> str:
    by_day: dict[int, list[str]] = {}
    for weekday, start, end in sorted(windows):
        by_day.setdefault(weekday, []).append(f"{start:%H:%M}-{end:%H:%M}")
    return "; ".join(f"{WEEKDAY_KEYS[day]} {', '.join(spans)}" for day, spans in by_day.items())


def _audit(actor: str, action: str, therapist: Therapist, details: dict, now: datetime | None):
    audit.record(action, actor=actor, therapist_id=therapist.id,
                 details={"therapist": therapist.slug, **details}, at=now)
