"""The outbox: which emails an appointment calls for, and when, written as Notification rows.

Each function adds rows inside the caller's transaction (the one that books, moves or cancels
the visit), so the change and the emails it owes are committed together or not at all.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from booking.clinic.reference import clinic_zone
from booking.extensions import db
from booking.models import Appointment, Notification, NotificationKind, NotificationStatus

# Reminders and aftercare notes are not sent at night (clinic wall clock): 21:00 until 08:00.
QUIET_HOURS_START = time(21, 0)
QUIET_HOURS_END = time(8, 0)

_TIMED_KINDS = (NotificationKind.REMINDER, NotificationKind.AFTERCARE)


def outside_quiet_hours(due: datetime, zone: ZoneInfo) -> datetime:
    """`due`, or the next 08:00 clinic time when `due` falls in the quiet hours."""
    wall = due.astimezone(zone)
    if QUIET_HOURS_END <= wall.time() < QUIET_HOURS_START:
        return due
    morning = wall.date() if wall.time() < QUIET_HOURS_END else wall.date() + timedelta(days=1)
    return datetime.combine(morning, QUIET_HOURS_END, tzinfo=zone)


def reminder_times(
    appointment: Appointment, now: datetime, zone: ZoneInfo
) -> list[datetime | None]:
    """When each of the service's reminders goes; None for one that is no longer worth sending.

    A reminder whose time has passed is skipped (booked at short notice), and so is one that
    the quiet hours would push to the start of the visit or later.
    """
    times = []
    for before in appointment.service.reminders:
        due = appointment.start_at - before
        moved = outside_quiet_hours(due, zone)
        times.append(moved if due > now and moved < appointment.start_at else None)
    return times


def aftercare_times(appointment: Appointment, zone: ZoneInfo) -> list[datetime]:
    return [
        outside_quiet_hours(appointment.end_at + after, zone)
        for after in appointment.service.aftercare
    ]


def plan_for_booking(appointment: Appointment, now: datetime) -> None:
    """A confirmation now, then the service's reminders before and aftercare after the visit.

    A visit recorded after it happened gets no confirmation, and only the aftercare ahead.
    """
    if appointment.start_at > now:
        _add(appointment, NotificationKind.CONFIRMATION, now)
        _add_timed(appointment, now)
        return
    zone = clinic_zone()
    for step, due in enumerate(aftercare_times(appointment, zone)):
        if due > now:
            _add(appointment, NotificationKind.AFTERCARE, due, step=step)


def plan_for_reschedule(appointment: Appointment, now: datetime) -> None:
    """The reminders and aftercare follow the visit to its new time; the patient is told now."""
    _drop_pending(appointment, (*_TIMED_KINDS, NotificationKind.RESCHEDULE))
    _add(appointment, NotificationKind.RESCHEDULE, now)
    _add_timed(appointment, now)


def plan_for_cancellation(appointment: Appointment, now: datetime) -> None:
    """Nothing still waiting goes out; the patient is told of the cancellation now."""
    _drop_pending(appointment, tuple(NotificationKind))
    _add(appointment, NotificationKind.CANCELLATION, now)


def plan_for_missed_visit(appointment: Appointment) -> None:
    """A no-show: no aftercare for a visit that did not happen, no reminder either."""
    _drop_pending(appointment, _TIMED_KINDS)


def plan_after_undone_no_show(appointment: Appointment, now: datetime) -> None:
    """A no-show taken back: the reminders and aftercare it dropped that are still ahead."""
    zone = clinic_zone()
    for step, due in enumerate(reminder_times(appointment, now, zone)):
        if due is not None:
            _add(appointment, NotificationKind.REMINDER, due, step=step)
    for step, due in enumerate(aftercare_times(appointment, zone)):
        if due > now:
            _add(appointment, NotificationKind.AFTERCARE, due, step=step)


def plan_resend(notification: Notification, now: datetime) -> Notification | None:
    """Staff asked to send a message again: a new row of the same kind and step, due now."""
    return _add(notification.appointment, notification.kind, now, step=notification.step)


def _add_timed(appointment: Appointment, now: datetime) -> None:
    zone = clinic_zone()
    for step, due in enumerate(reminder_times(appointment, now, zone)):
        if due is not None:
            _add(appointment, NotificationKind.REMINDER, due, step=step)
    for step, due in enumerate(aftercare_times(appointment, zone)):
        _add(appointment, NotificationKind.AFTERCARE, due, step=step)


def _add(
    appointment: Appointment, kind: NotificationKind, due: datetime, *, step: int = 0
) -> Notification | None:
    # A patient without email (a walk-in with only a phone) is sent nothing.
    if not appointment.patient.email:
        return None
    notification = Notification(
        appointment_id=appointment.id,
        kind=kind,
        step=step,
        due_at=due,
        status=NotificationStatus.PENDING,
        attempts=0,
        last_error="",
    )
    db.session.add(notification)
    return notification


def _drop_pending(appointment: Appointment, kinds: tuple[str, ...]) -> None:
    waiting = db.session.scalars(
        select(Notification).where(
            Notification.appointment_id == appointment.id,
            Notification.status == NotificationStatus.PENDING,
            Notification.kind.in_([str(kind) for kind in kinds]),
        )
    )
    for notification in waiting:
        notification.status = NotificationStatus.DROPPED
