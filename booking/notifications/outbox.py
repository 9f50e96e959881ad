"""The outbox: which emails an appointment calls for, and when, written as Notification rows.

Each function adds rows inside the caller's transaction (the one that books, moves or cancels
the visit), so the change and the emails it owes are committed together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value

from booking.clinic.reference import clinic_zone
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    AuditEntry,
    Notification,
    NotificationKind,
    NotificationStatus,
    WaitlistOffer,
    new_message_id,
    utc_now,
)
from booking.patients.health_forms import missing_forms, visits_missing_forms

# Reminders and aftercare notes are not sent at night (clinic wall clock): 21:00 until 08:00.
QUIET_HOURS_START = time(21, 0)
QUIET_HOURS_END = time(8, 0)

_TIMED_KINDS = (NotificationKind.REMINDER, NotificationKind.AFTERCARE)
# How long before a visit the patient is reminded of its health forms, if still missing.
FORMS_REMINDER_BEFORE = timedelta(days=2)


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


def forms_reminder_time(appointment: Appointment, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When to remind the patient of the visit's forms: two days before, outside the quiet
    hours; None when that is past (booked at shorter notice: the confirmation says it) or
    the quiet hours would push it to the visit itself."""
    due = appointment.start_at - FORMS_REMINDER_BEFORE
    moved = outside_quiet_hours(due, zone)
    return moved if due > now and moved < appointment.start_at else None


def plan_for_booking(appointment: Appointment, now: datetime) -> None:
    """A confirmation now, then the service's reminders before and aftercare after the visit,
    and a reminder of the health forms the visit's service asks for, if still missing.

    A visit recorded after it happened gets no confirmation, and only the aftercare ahead.
    """
    _write_planned([(appointment, kind, due, step) for kind, due, step in _booking_mail(
        appointment, now)])


def booking_mail_rows(visit: Appointment, now: datetime) -> list[dict]:
    """The rows plan_for_booking writes, but for their appointment id: for a visit about to
    be written, in the same statement as the visit (booking/scheduling/appointments.py)."""
    if not visit.patient.email:
        return []
    return [_row(None, kind, due, step) for kind, due, step in _booking_mail(visit, now)]


def _booking_mail(
    appointment: Appointment, now: datetime
) -> list[tuple[NotificationKind, datetime, int]]:
    zone = clinic_zone()
    if appointment.start_at > now:
        return [(NotificationKind.CONFIRMATION, now, 0), *_timed(appointment, now, zone)]
    return [
        (NotificationKind.AFTERCARE, due, step)
        for step, due in enumerate(aftercare_times(appointment, zone)) if due > now
    ]


def plan_for_reschedule(appointment: Appointment, now: datetime) -> None:
    """The reminders and aftercare follow the visit to its new time; the patient is told now."""
    _drop_pending(
        appointment,
        (*_TIMED_KINDS, NotificationKind.RESCHEDULE, NotificationKind.FORMS_REMINDER),
    )
    planned = [(NotificationKind.RESCHEDULE, now, 0), *_timed(appointment, now, clinic_zone())]
    _write_planned([(appointment, kind, due, step) for kind, due, step in planned])


def plan_for_cancellation(appointment: Appointment, now: datetime) -> None:
    """Nothing still waiting goes out; the patient is told of the cancellation now."""
    _drop_pending(appointment, tuple(NotificationKind))
    _write_planned([(appointment, NotificationKind.CANCELLATION, now, 0)])


def plan_for_series_booking(appointments: list[Appointment], now: datetime) -> None:
    """One confirmation for the whole series (on its first visit: the mail lists them all),
    then each visit's own reminders and aftercare, as for a single booking.

    Written in one statement, as plain rows: a series is a hundred of them, and the session
    need not hold them."""
    # One patient for every visit: without email (a walk-in), nothing is sent.
    if not appointments or not appointments[0].patient.email:
        return
    zone = clinic_zone()
    missing = visits_missing_forms(appointments)
    planned = [(appointments[0], NotificationKind.CONFIRMATION, now, 0)]
    for appointment in appointments:
        planned += [
            (appointment, kind, due, step)
            for kind, due, step in _timed(appointment, now, zone, appointment.id in missing)
        ]
    _write_planned(planned)


def plan_for_series_cancellation(appointments: list[Appointment], now: datetime) -> None:
    """Visits of one series cancelled together: nothing still waiting for any of them goes
    out, and one cancellation (on the first of them) tells the patient of them all."""
    _drop_pending(appointments, tuple(NotificationKind))
    if appointments:
        _write_planned([(appointments[0], NotificationKind.CANCELLATION, now, 0)])


def plan_for_series_reschedule(appointments: list[Appointment], now: datetime) -> None:
    """Visits of one series moved together ("this and the following"): each one's reminders
    and aftercare follow it to its new time, and one email (on the first of them) tells the
    patient of them all."""
    if not appointments:
        return
    zone = clinic_zone()
    _drop_pending(
        appointments, (*_TIMED_KINDS, NotificationKind.RESCHEDULE, NotificationKind.FORMS_REMINDER)
    )
    missing = visits_missing_forms(appointments)
    planned = [
        (appointment, kind, due, step)
        for appointment in appointments
        for kind, due, step in _timed(appointment, now, zone, appointment.id in missing)
    ]
    _write_planned([*planned, (appointments[0], NotificationKind.RESCHEDULE, now, 0)])


@dataclass(frozen=True)
class MovedVisit:
    appointment: Appointment
    moved_from: datetime


def visits_moved_together(notification: Notification) -> list[MovedVisit]:
    """For a reschedule: the visits of its series moved in the same change as its own visit
    ("this and the following"), each with the time it had before, in order; [] when its
    visit was last moved alone.

    The audit log is where a move's former times are kept: the visit's latest move, and the
    moves of its series written at the same instant (move_following writes one `now` to them
    all). A visit cancelled since is left out: its cancellation told of it.
    """
    appointment = notification.appointment
    if appointment.series_id is None or notification.kind != NotificationKind.RESCHEDULE:
        return []
    latest = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.appointment_id == appointment.id, AuditEntry.action == "rescheduled")
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.details.get("scope") != "following":
        return []
    moves = db.session.execute(
        select(Appointment, AuditEntry)
        .join(AuditEntry, AuditEntry.appointment_id == Appointment.id)
        .where(
            Appointment.series_id == appointment.series_id,
            Appointment.status != AppointmentStatus.CANCELLED,
            AuditEntry.action == "rescheduled",
            AuditEntry.created_at == latest.created_at,
        )
        .order_by(Appointment.start_at, Appointment.id)
    ).all()
    return [
        MovedVisit(visit, datetime.fromisoformat(entry.details["from"]["start"]))
        for visit, entry in moves
        if entry.details.get("scope") == "following"
    ]


def visits_told_in(notification: Notification) -> list[Appointment]:
    """The visits one email is about: the whole series for a series' confirmation, every
    visit cancelled (or moved) together for a series' cancellation (or reschedule), else the
    notification's own visit.

    Visits cancelled together are the series' visits from this one on, cancelled in the
    same change (the same instant: cancel_following writes one `now` to them all).
    """
    appointment = notification.appointment
    if notification.kind == NotificationKind.RESCHEDULE:
        moved = visits_moved_together(notification)
        return [each.appointment for each in moved] or [appointment]
    if appointment.series_id is None or notification.kind not in (
        NotificationKind.CONFIRMATION,
        NotificationKind.CANCELLATION,
    ):
        return [appointment]
    together = select(Appointment).where(Appointment.series_id == appointment.series_id)
    if notification.kind == NotificationKind.CONFIRMATION:
        together = together.where(Appointment.status != AppointmentStatus.CANCELLED)
    else:
        together = together.where(
            Appointment.status == AppointmentStatus.CANCELLED,
            Appointment.start_at >= appointment.start_at,
            Appointment.updated_at == appointment.updated_at,
        )
    visits = list(db.session.scalars(together.order_by(Appointment.start_at, Appointment.id)))
    return visits or [appointment]


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


def plan_for_offer(offer: WaitlistOffer, due: datetime) -> Notification:
    """A waitlist offer's mail, due when the quiet hours let it go (its claim clock starts
    when it is sent)."""
    notification = Notification(
        waitlist_offer=offer,
        kind=NotificationKind.WAITLIST_OFFER,
        step=0,
        due_at=due,
        status=NotificationStatus.PENDING,
        attempts=0,
        last_error="",
    )
    db.session.add(notification)
    return notification


def _timed(
    appointment: Appointment, now: datetime, zone: ZoneInfo, forms_missing: bool | None = None
) -> list[tuple[NotificationKind, datetime, int]]:
    """The visit's reminders and aftercare, and its forms reminder, as (kind, due, step).

    The forms reminder is written whenever forms are missing now (`forms_missing`, else
    asked); the dispatcher drops it if they are completed before it is due."""
    timed = [
        (NotificationKind.REMINDER, due, step)
        for step, due in enumerate(reminder_times(appointment, now, zone)) if due is not None
    ]
    timed += [
        (NotificationKind.AFTERCARE, due, step)
        for step, due in enumerate(aftercare_times(appointment, zone))
    ]
    forms_due = forms_reminder_time(appointment, now, zone)
    if forms_due is not None and (
        missing_forms(appointment) if forms_missing is None else forms_missing
    ):
        timed.append((NotificationKind.FORMS_REMINDER, forms_due, 0))
    return timed


_INSERT = insert(Notification.__table__)  # Core, built once


def _write_planned(
    planned: list[tuple[Appointment, NotificationKind, datetime, int]],
) -> None:
    """Write (visit, kind, due, step), all of one patient's visits, as plain rows in one
    statement: a booking's or a series' mail is written with it, and the session need not
    hold the rows. A patient without email (a walk-in with only a phone) is sent nothing."""
    if not planned or not planned[0][0].patient.email:
        return
    write_rows([_row(appointment.id, kind, due, step) for appointment, kind, due, step in planned])


def write_rows(rows: list[dict]) -> None:
    """Rows made here (booking_mail_rows, with their appointment id), in one statement."""
    db.session.connection().execute(_INSERT, rows[0] if len(rows) == 1 else rows)


def _row(appointment_id: int | None, kind: NotificationKind, due: datetime, step: int) -> dict:
    """One mail owed about a visit, as its outbox row: every column a new row is given."""
    return {"appointment_id": appointment_id, "kind": kind, "step": step, "due_at": due,
            "status": NotificationStatus.PENDING, "attempts": 0, "last_error": "",
            "message_id": new_message_id(), "created_at": utc_now()}


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


_notifications = Notification.__table__
# Core, built once: every cancel and move runs it.
_DROP_PENDING = (
    update(_notifications)
    .where(
        _notifications.c.appointment_id.in_(bindparam("appointment_ids", expanding=True)),
        _notifications.c.status == NotificationStatus.PENDING,
        _notifications.c.kind.in_(bindparam("kinds", expanding=True)),
    )
    .values(status=NotificationStatus.DROPPED)
)


def _drop_pending(appointments: Appointment | list[Appointment], kinds: tuple[str, ...]) -> None:
    """What still waits to be sent about these visits, of these kinds, will not be.

    One statement, however many visits; rows this session holds are changed to match, as the
    ORM's own UPDATE would change them (whose machinery cost as much as the rest of a cancel's
    writes together)."""
    if isinstance(appointments, Appointment):
        appointments = [appointments]
    if not appointments:
        return
    session = db.session()
    session.flush()  # as before any statement: what the session still has to write goes first
    visit_ids = {appointment.id for appointment in appointments}
    kind_names = {str(kind) for kind in kinds}
    session.connection().execute(
        _DROP_PENDING, {"appointment_ids": sorted(visit_ids), "kinds": sorted(kind_names)}
    )
    for held in list(session.identity_map.values()):
        if not isinstance(held, Notification):
            continue
        if inspect(held).expired_attributes & {"appointment_id", "status", "kind"}:
            session.expire(held, ["status"])  # read again when next used
        elif (held.appointment_id in visit_ids and held.status == NotificationStatus.PENDING
              and held.kind in kind_names):
            set_committed_value(held, "status", NotificationStatus.DROPPED)
