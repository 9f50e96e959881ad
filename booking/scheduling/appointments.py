"""Booking, rescheduling and cancelling: the only code that writes appointments.

Each function works inside the caller's transaction and leaves the commit to it, so a request
commits once (the appointment, its audit entry and whatever the caller adds go together).
The slot is re-checked after the write lock is held (SQLite) and PostgreSQL's exclusion
constraint refuses any overlap that two hosts race into: a lost race is a SlotUnavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, TextClause, bindparam, column, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from booking.clinic.reference import (
    ServiceFacts,
    TherapistFacts,
    reference_data,
    service_row,
    therapist_row,
)
from booking.database import (
    as_loaded,
    converted_rows,
    hold_write_lock,
    is_exclusion_violation,
    is_postgresql,
    mark_held,
    row_of,
    take_held_read,
)
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    AuditEntry,
    Notification,
    Patient,
    Service,
    WaitlistEntry,
    WaitlistStatus,
    audit,
    new_calendar_uid,
    patient_identity,
    utc_now,
)
from booking.notifications import outbox
from booking.patients.details import PatientDetails
from booking.rules import availability
from booking.rules.availability import SlotRefusal
from booking.rules.clinical import ClearanceDecision
from booking.scheduling import booking_eligibility, waitlist_offers
from booking.scheduling.booking_eligibility import (
    patient_on_record,
)
from booking.scheduling.clearances import decision_in_force
from booking.scheduling.therapist_time import booking_rules, local_day_bounds, therapist_calendars


class SchedulingError(Exception):
    """A refusal the patient or staff can act on; code and status are part of the API."""

    code = "scheduling_error"
    status = 409
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class SlotUnavailable(SchedulingError):
    """The start is not a free slot: `reason` (availability.SlotRefusal) says why."""

    code = "slot_unavailable"
    status = 409
    field = "start"

    def __init__(self, reason: SlotRefusal, message: str):
        super().__init__(message)
        self.reason = reason


class EvaluationRequired(SchedulingError):
    code = "evaluation_required"
    status = 422
    field = "service"


class ClearanceRequired(SchedulingError):
    """The service needs a therapist's clearance for this patient, and "cleared" is not in force."""

    code = "clearance_required"
    status = 422
    field = "service"


class UnknownService(SchedulingError):
    code = "unknown_service"
    status = 422
    field = "service"


class UnknownTherapist(SchedulingError):
    code = "unknown_therapist"
    status = 422
    field = "therapist"


class AppointmentNotChangeable(SchedulingError):
    code = "appointment_not_changeable"
    status = 409
    field = None


@dataclass(frozen=True)
class StaffOverride:
    """Front desk waiving the notice, the booking window and the evaluation and clearance
    rules, with a reason."""

    staff: str
    reason: str


# --- lookups -------------------------------------------------------------------------------


def offered_service(slug: str) -> ServiceFacts:
    """The active service of that slug, as plain values (what availability reads)."""
    service = reference_data().service(slug)
    if service is None or not service.active:
        raise UnknownService(f"there is no service {slug!r}")
    return service


def bookable_service(slug: str) -> Service:
    """The active service of that slug as its row in the session, for writing (no query)."""
    return service_row(offered_service(slug))


def therapists_offering(
    service: ServiceFacts | Service, slug: str | None = None
) -> list[TherapistFacts]:
    """Active therapists who offer the service, in the clinic file's order (or just `slug`)."""
    therapists = reference_data().therapists
    if slug is None:
        return [
            therapist for therapist in therapists
            if therapist.active and therapist.offers(service)
        ]
    found = next(
        (therapist for therapist in therapists if therapist.slug == slug and therapist.active),
        None,
    )
    if found is None:
        raise UnknownTherapist(f"there is no therapist {slug!r}")
    if not found.offers(service):
        raise UnknownTherapist(f"{found.name} does not offer {service.name}")
    return [found]


def free_slots(
    service: ServiceFacts | Service,
    first_day: date,
    last_day: date,
    *,
    therapist_slug: str | None = None,
    local_zone: ZoneInfo | None = None,
    now: datetime | None = None,
) -> list[availability.Slot]:
    """The slots a patient can book online for this service on these days.

    The days are in `local_zone` (the patient's, say), by default the clinic's zone.
    """
    starts = free_starts(
        service, first_day, last_day, therapist_slug=therapist_slug, local_zone=local_zone,
        now=now,
    )
    return availability.slots_of(starts, timedelta(minutes=service.duration_minutes))


def free_starts(
    service: ServiceFacts | Service,
    first_day: date,
    last_day: date,
    *,
    therapist_slug: str | None = None,
    local_zone: ZoneInfo | None = None,
    now: datetime | None = None,
) -> availability.FreeStarts:
    """free_slots, as each free start with the therapists free then (an answer's bulk)."""
    clinic = reference_data().clinic
    zone = clinic.zone
    therapists = therapists_offering(service, therapist_slug)
    local_zone = local_zone or zone
    window_start, window_end = local_day_bounds(first_day, last_day, local_zone)
    clinic_first_day = window_start.astimezone(zone).date()
    clinic_last_day = (window_end - timedelta(microseconds=1)).astimezone(zone).date()
    calendars = therapist_calendars(
        therapists, window_start - _span(service), window_end + _span(service)
    )
    starts = availability.free_starts(
        calendars,
        booking_rules(service, clinic.slot_step_minutes),
        zone,
        clinic_first_day,
        clinic_last_day,
        now or utc_now(),
    )
    if local_zone.key == zone.key:
        return starts
    first, last = window_start.timestamp(), window_end.timestamp()
    return [(instant, therapists) for instant, therapists in starts if first <= instant < last]


def _span(service: ServiceFacts | Service) -> timedelta:
    return timedelta(minutes=service.duration_minutes + service.buffer_after_minutes)


def require_evaluation(
    service: ServiceFacts | Service, identity: str, start: datetime,
    override: StaffOverride | None,
) -> None:
    """The clinical rule at booking: EvaluationRequired unless it holds for the patient of
    this identity (one statement) or front desk waived it."""
    if not service.requires_evaluation or override is not None:
        return
    if not booking_eligibility.has_evaluation_for_identity(identity, start):
        raise EvaluationRequired(
            f"{service.name} follows an evaluation: please book an evaluation first"
        )


def require_clearance(
    service: ServiceFacts | Service, identity: str, override: StaffOverride | None
) -> None:
    """Dry needling's rule at booking: ClearanceRequired unless a therapist's "cleared" is in
    force for the patient of this identity, or front desk waived it."""
    if not service.requires_clearance or override is not None:
        return
    if not booking_eligibility.is_cleared_for(patient_on_record(identity), service):
        raise _clearance_required(service)


def require_clinical_rules(
    service: ServiceFacts | Service, identity: str, start: datetime,
    override: StaffOverride | None,
) -> None:
    """The clinic's rules about the patient, for a booking online: an evaluation first, and a
    therapist's clearance where the service needs one. Front desk may waive both."""
    require_evaluation(service, identity, start, override)
    require_clearance(service, identity, override)


# --- writing -------------------------------------------------------------------------------


def book_appointment(
    service: ServiceFacts | Service,
    start: datetime,
    patient: PatientDetails,
    *,
    therapist_slug: str | None = None,
    notes: str = "",
    booked_by: str = "patient",
    override: StaffOverride | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book `service` at `start` for the patient, with the named therapist or any free one.

    Raises SlotUnavailable when the slot is not offered (taken, outside hours, too soon, too
    far ahead), EvaluationRequired when the service needs an evaluation the patient lacks, and
    ClearanceRequired when it needs a therapist's clearance that is not in force.
    With a staff override, a start already past records a visit that happened (a walk-in
    seen before it was entered): the hours and the other visits still apply.
    """
    now = now or utc_now()
    hold_write_lock()
    service = _service_facts(service)
    therapists = therapists_offering(service, therapist_slug)
    identity = patient_identity(patient.email, patient.name, patient.phone)
    require_clinical_rules(service, identity, start, override)

    past_visit = override is not None and start < now
    candidates = _free_therapists_at(
        service, therapists, start, now, override=override, past_visit=past_visit
    )

    patient_row, waits = _patient_and_waiting(identity, patient, service.id)
    end = start + timedelta(minutes=service.duration_minutes)
    for therapist in candidates:
        values = {
            "calendar_uid": new_calendar_uid(),
            "sequence": 0,
            "status": AppointmentStatus.CONFIRMED,
            "service_id": service.id,
            "therapist_id": therapist.id,
            "patient_id": patient_row.id,
            "series_id": None,
            "start_at": start,
            "end_at": end,
            "busy_until": end + timedelta(minutes=service.buffer_after_minutes),
            "notes": notes,
            # What was given with this booking is this booking's (the record keeps its own).
            "patient_phone": patient.phone,
            "patient_date_of_birth": patient.date_of_birth,
            "patient_guardian_name": patient.guardian_name,
            "patient_language": patient.language,
            "booked_by": booked_by,
            "evaluation_override": override.reason if override else "",
            "cancel_reason": "",
            "arrived_at": None,
            "created_at": now,
            "updated_at": now,
        }
        related = {"service": service_row(service), "therapist": therapist_row(therapist),
                   "patient": patient_row}
        # The visit's audit entry and its mail are planned before it is written: they are
        # written with it, in one statement on PostgreSQL.
        entry = audit.entry_row(
            "booked",
            actor=booked_by,
            appointment_id=None,
            therapist_id=therapist.id,
            details={
                "service": service.slug,
                "therapist": therapist.slug,
                "start": start.isoformat(),
                **({"override": override.reason} if override else {}),
                **({"past_visit": True} if past_visit else {}),
            },
            at=now,
        )
        mail = outbox.booking_mail_rows(_to_be_written(values, related), now)
        # PostgreSQL's exclusion constraint refuses an overlap that another host raced into:
        # ON CONFLICT DO NOTHING turns the refusal into no row, and the next therapist is
        # tried in the same transaction (on SQLite the write lock already rules a race out).
        inserted = _write_visit(values, entry, mail)
        if inserted is None:
            continue
        # Read back as a plain row and handed over as the object callers want (no ORM load).
        appointment = as_loaded(Appointment, inserted)
        for name, value in related.items():
            set_committed_value(appointment, name, value)
        if waits:
            waitlist_offers.end_entries_for_booking(patient_row.identity, service.id, now)
        return appointment
    raise _lost_race()


def _service_facts(service: ServiceFacts | Service) -> ServiceFacts:
    if isinstance(service, ServiceFacts):
        return service
    # By its identity: reading an attribute of a row a commit expired would query it again.
    found = reference_data().service_with_id(inspect(service).identity[0])
    if found is None:
        raise UnknownService(f"there is no service {service.slug!r}")
    return found


def reschedule_appointment(
    appointment: Appointment,
    start: datetime,
    *,
    therapist_slug: str | None = None,
    changed_by: str = "patient",
    override: StaffOverride | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move a live appointment to another free slot (same service), keeping its id and UID."""
    now = now or utc_now()
    hold_write_lock()
    _refresh_with_people(appointment)
    _require_changeable(appointment, now)
    # From the kept reference data, by the visit's column, and the visit's service as if
    # loaded for the mail planned below: the service's row is not read.
    service = reference_data().service_with_id(appointment.service_id) or _service_facts(
        appointment.service
    )
    set_committed_value(appointment, "service", service_row(service))
    # A visit booked before its patient was found not cleared stays where it is (on the front
    # desk's follow-up list) until staff move it with an override or cancel it.
    if (
        service.requires_clearance
        and override is None
        and decision_in_force(appointment.patient, service) is ClearanceDecision.NOT_CLEARED
    ):
        raise _clearance_required(service)
    slug = therapist_slug or appointment.therapist.slug
    therapists = therapists_offering(service, slug)
    candidates = _free_therapists_at(
        service, therapists, start, now, override=override, ignore_appointment_id=appointment.id
    )
    before = {"therapist": appointment.therapist.slug, "start": appointment.start_at.isoformat()}
    before_therapist, before_start, before_busy_until = (
        appointment.therapist, appointment.start_at, appointment.busy_until
    )
    therapist = candidates[0]
    end = start + timedelta(minutes=service.duration_minutes)
    appointment.therapist = therapist_row(therapist)
    appointment.start_at = start
    appointment.end_at = end
    appointment.busy_until = end + timedelta(minutes=service.buffer_after_minutes)
    appointment.sequence += 1
    appointment.updated_at = now
    if not _write_unless_overlapping(savepoint=False):
        raise _lost_race()
    _audit(
        changed_by,
        "rescheduled",
        appointment,
        {
            "from": before,
            "to": {"therapist": therapist.slug, "start": start.isoformat()},
            **({"override": override.reason} if override else {}),
        },
        now,
    )
    outbox.plan_for_reschedule(appointment, now)
    waitlist_offers.offer_freed_time(before_therapist, before_start, before_busy_until, now)
    return appointment


def cancel_appointment(
    appointment: Appointment,
    *,
    cancelled_by: str = "patient",
    reason: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Cancel a live appointment; cancelling one already cancelled changes nothing."""
    now = now or utc_now()
    hold_write_lock()
    _refresh_with_people(appointment)
    if appointment.status == AppointmentStatus.CANCELLED:
        return appointment
    _require_changeable(appointment, now)
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancel_reason = reason
    appointment.sequence += 1
    appointment.updated_at = now
    _audit(cancelled_by, "cancelled", appointment, {"reason": reason} if reason else {}, now)
    outbox.plan_for_cancellation(appointment, now)
    db.session.flush()
    waitlist_offers.offer_freed_time(
        appointment.therapist, appointment.start_at, appointment.busy_until, now
    )
    return appointment


ATTENDANCE = ("arrived", AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW)
# A patient may be in the waiting room a little early; not hours before the visit.
ARRIVAL_OPENS_BEFORE_START = timedelta(minutes=30)


def record_attendance(
    appointment: Appointment, outcome: str, *, by: str, now: datetime | None = None
) -> Appointment:
    """Front desk's record of a visit: the patient arrived, the visit was completed, or no-show.

    Only for a confirmed visit. "arrived" from 30 minutes before the start; "completed" and
    "no-show" only once the visit has started. A no-show drops the reminders and aftercare
    still waiting: there is no soreness note for a visit that did not happen.
    """
    if outcome not in ATTENDANCE:
        raise SchedulingError(f"attendance is one of {', '.join(ATTENDANCE)}", field="outcome")
    now = now or utc_now()
    hold_write_lock()
    refresh_held(appointment)
    if appointment.status != AppointmentStatus.CONFIRMED:
        raise AppointmentNotChangeable(f"this appointment is {appointment.status}")
    if outcome == "arrived":
        if now < appointment.start_at - ARRIVAL_OPENS_BEFORE_START:
            raise AppointmentNotChangeable(
                "arrival is recorded from 30 minutes before the start", field="outcome"
            )
        if appointment.arrived_at is not None:
            raise AppointmentNotChangeable("the arrival is already recorded", field="outcome")
        appointment.arrived_at = now
    else:
        if now < appointment.start_at:
            word = "a no-show" if outcome == AppointmentStatus.NO_SHOW else "completed"
            raise AppointmentNotChangeable(
                f"{word} is recorded only after the start", field="outcome"
            )
        appointment.status = outcome
    appointment.sequence += 1
    appointment.updated_at = now
    _audit(by, str(outcome), appointment, {}, now)
    if outcome == AppointmentStatus.NO_SHOW:
        outbox.plan_for_missed_visit(appointment)
    db.session.flush()
    return appointment


def undo_attendance(
    appointment: Appointment, *, by: str, reason: str, now: datetime | None = None
) -> Appointment:
    """Take back the last attendance recorded (a no-show, a completion, an arrival).

    The visit is confirmed again; undoing a no-show restores the reminders and aftercare it
    dropped that are still ahead. The reason goes into the audit log.
    """
    reason = reason.strip()
    if not reason:
        raise SchedulingError("give a reason for undoing the attendance", field="reason")
    now = now or utc_now()
    hold_write_lock()
    refresh_held(appointment)
    if appointment.status in (AppointmentStatus.NO_SHOW, AppointmentStatus.COMPLETED):
        undone = str(appointment.status)
        appointment.status = AppointmentStatus.CONFIRMED
    elif appointment.status == AppointmentStatus.CONFIRMED and appointment.arrived_at:
        undone = "arrived"
        appointment.arrived_at = None
    else:
        raise AppointmentNotChangeable("there is no attendance recorded to undo")
    appointment.sequence += 1
    appointment.updated_at = now
    _audit(by, "attendance_undone", appointment, {"undone": undone, "reason": reason}, now)
    if undone == AppointmentStatus.NO_SHOW:
        outbox.plan_after_undone_no_show(appointment, now)
    db.session.flush()
    return appointment


# --- inside the transaction ----------------------------------------------------------------


def visit_held(appointment_id: int) -> Appointment | None:
    """The visit as committed now, held until this writing transaction ends (PostgreSQL:
    `FOR UPDATE` of its row alone; SQLite's write lock already holds the whole database),
    with its patient: one statement, read as plain rows, and its therapist from the kept
    reference data. None when there is no such visit.

    What a manage link or the desk opens when the request writes: the cancel, move or mark
    about to be made takes this read as its own (`take_held_read`), where reading the visit,
    then holding it, would be two statements through the ORM's loading."""
    rows = converted_rows(db.session.connection(), _VISIT_AND_PATIENT_HELD,
                          {"appointment_id": appointment_id})
    if not rows:
        return None
    [row] = rows
    appointment = as_loaded(
        Appointment, dict(zip(_APPOINTMENT_COLUMNS, row[:len(_APPOINTMENT_COLUMNS)], strict=True))
    )
    patient = as_loaded(
        Patient, dict(zip(_PATIENT_COLUMNS, row[len(_APPOINTMENT_COLUMNS):], strict=True))
    )
    set_committed_value(appointment, "patient", patient)
    therapist = reference_data().therapist_with_id(appointment.therapist_id)
    if therapist is not None:
        set_committed_value(appointment, "therapist", therapist_row(therapist))
    mark_held(appointment)
    return appointment


_APPOINTMENT_COLUMNS = tuple(column.name for column in Appointment.__table__.c)
# Core, built once: every cancel and move through a manage link reads it.
_VISIT_AND_PATIENT_HELD = (
    select(*Appointment.__table__.c, *Patient.__table__.c)
    .join_from(Appointment.__table__, Patient.__table__,
               Appointment.__table__.c.patient_id == Patient.__table__.c.id)
    .where(Appointment.__table__.c.id == bindparam("appointment_id"))
    .with_for_update(of=Appointment.__table__)
)


def refresh_held(appointment: Appointment) -> None:
    """The appointment as committed now, held for this transaction as in
    `_refresh_with_people` (its row alone: not the patient or therapist it was loaded
    with)."""
    if take_held_read(appointment):
        return
    db.session.refresh(appointment, with_for_update={"of": Appointment})


def _refresh_with_people(appointment: Appointment) -> None:
    """The appointment as committed now, held for this transaction, with its patient and
    therapist, in one statement (the mail to send and the time freed need them); none when
    the request read it so a moment ago (its manage link or the desk: `visit_held`).

    Held: on PostgreSQL another transaction changing the visit (a second click, the desk at
    the same moment) waits here until this one ends, then reads what it wrote. Without it
    both would read the visit confirmed and both cancel or move it, each with its own mail.
    On SQLite the writing transaction already holds the whole database."""
    if take_held_read(appointment):
        return
    db.session.execute(
        select(Appointment)
        # By its identity: reading the id of a row a commit expired would load it first.
        .where(Appointment.id == inspect(appointment).identity[0])
        .options(joinedload(Appointment.patient), joinedload(Appointment.therapist))
        .with_for_update(of=Appointment)
        .execution_options(populate_existing=True)
    ).one()


def _require_changeable(appointment: Appointment, now: datetime) -> None:
    if appointment.status != AppointmentStatus.CONFIRMED:
        raise AppointmentNotChangeable(f"this appointment is {appointment.status}")
    if appointment.start_at <= now:
        raise AppointmentNotChangeable("this appointment has already started")


def _free_therapists_at(
    service: ServiceFacts,
    therapists: list[TherapistFacts],
    start: datetime,
    now: datetime,
    *,
    override: StaffOverride | None,
    ignore_appointment_id: int | None = None,
    past_visit: bool = False,
) -> list[TherapistFacts]:
    """Those of `therapists` for whom `start` is a free slot, least busy that day first.

    Raises SlotUnavailable, with the reason nearest to free, when there is none.
    """
    clinic = reference_data().clinic
    zone = clinic.zone
    local_day = start.astimezone(zone).date()
    window_start, window_end = local_day_bounds(local_day, local_day, zone)
    calendars = therapist_calendars(
        therapists,
        window_start - _span(service),
        window_end + _span(service),
        ignore_appointment_id=ignore_appointment_id,
    )
    rules = booking_rules(service, clinic.slot_step_minutes, staff_override=override is not None,
                          past_visit=past_visit)
    free, refusals = [], []
    for position, (therapist, calendar) in enumerate(zip(therapists, calendars, strict=True)):
        refusal = availability.why_not_free(calendar, rules, zone, start, now)
        if refusal is None:
            free.append((len(calendar.busy), position, therapist))
        else:
            refusals.append(refusal)
    if not free:
        reason = availability.nearest_to_free(refusals)
        raise SlotUnavailable(reason, _refusal_message(reason, service, rules, len(therapists)))
    return [therapist for _, _, therapist in sorted(free, key=lambda item: item[:2])]


def _refusal_message(
    reason: SlotRefusal, service: Service, rules: availability.BookingRules, therapists: int
) -> str:
    """The reason in plain words; staff see it with a note on what an override waives."""
    whose = "the therapist's" if therapists == 1 else "the therapists'"
    why = {
        SlotRefusal.TOO_SOON: f"it is too soon ({service.name} is booked at least "
        f"{_hours(rules.min_notice)} ahead)" if rules.min_notice else "it is in the past",
        SlotRefusal.TOO_FAR: f"it is too far ahead ({service.name} is booked at most "
        f"{rules.max_advance.days} days ahead)",
        SlotRefusal.OFF_GRID: f"visits start every {rules.slot_step_minutes} minutes from the "
        "hour, and that time is between two of them",
        SlotRefusal.OUTSIDE_HOURS: f"the visit would not fit in {whose} working hours",
        SlotRefusal.TIME_OFF: "the therapist is away then" if therapists == 1
        else "the therapists are away then",
        SlotRefusal.TAKEN: "it is already booked",
    }[reason]
    return f"that time is not available: {why}"


def _hours(notice: timedelta) -> str:
    hours = notice.total_seconds() / 3600
    return "1 hour" if hours == 1 else f"{hours:g} hours"


def _clearance_required(service: Service) -> ClearanceRequired:
    return ClearanceRequired(
        f"{service.name} needs a therapist's clearance after your evaluation: "
        "please book an evaluation, or call the clinic"
    )


def _lost_race() -> SlotUnavailable:
    """Another booking was written between the check and this one."""
    return SlotUnavailable(SlotRefusal.TAKEN, "that time is not available: it was just booked")


def _patient_for(identity: str, details: PatientDetails, now: datetime) -> Patient:
    """The patient row for these details, made on their first booking; one statement.

    A later booking never changes the record: anyone who knows a patient's name and email can
    book, so the details given with a booking are kept on that booking, and the record's
    contact details change only through the back office. The same new patient may be booking
    twice at once: the second insert waits for the first (on PostgreSQL) and uses its row.
    """
    return _patient_and_waiting(identity, details, None)[0]


def _patient_and_waiting(
    identity: str, details: PatientDetails, service_id: int | None
) -> tuple[Patient, bool]:
    """_patient_for, and in the same statement whether the patient waits on the waitlist for
    the service: most do not, and their booking then skips ending their entries."""
    row = converted_rows(
        db.session.connection(),
        _upsert_patient(),
        {
            "waited_service_id": service_id,
            "waiting": WaitlistStatus.WAITING,
            "identity": identity,
            "name": " ".join(details.name.split()),
            "email": details.email.strip(),
            "phone": details.phone,
            "date_of_birth": details.date_of_birth,
            "guardian_name": details.guardian_name,
            # When the record was made, whatever instant the booking is judged at.
            "created_at": utc_now(),
            "updated_at": utc_now(),
        },
    )[0]
    # Read back as a plain row: the record as it is now, in the session (no ORM load). The
    # statement's columns are the table's, then `waits`.
    record = as_loaded(Patient, dict(zip(_PATIENT_COLUMNS, row[:-1], strict=True)))
    return record, row[-1]


_PATIENT_COLUMNS = tuple(column.name for column in Patient.__table__.c)
_VISIT_COLUMNS = tuple(column.name for column in Appointment.__table__.c)


@cache
def _upsert_patient() -> TextClause:
    """Insert the patient, or give back the row on record as it is (a no-op update, so that
    RETURNING answers either way)."""
    table, entries = Patient.__table__, WaitlistEntry.__table__
    return _insert_returning(
        table,
        [column for column in table.c if column.name != "id"],
        "ON CONFLICT (identity) DO UPDATE SET identity = excluded.identity",
        # Whether the patient waits for the service booked (see _patient_and_waiting).
        also_returning=(
            f"EXISTS (SELECT 1 FROM {entries.name} WHERE patient_identity = :identity"
            " AND service_id = :waited_service_id AND status = :waiting) AS waits"
        ),
        also_columns=(column("waits", Boolean),),
        also_parameters=(
            bindparam("waited_service_id", type_=entries.c.service_id.type),
            bindparam("waiting", type_=entries.c.status.type),
        ),
    )



@cache
def _insert_unless_overlapping() -> TextClause:
    """Insert the appointment; no row back when PostgreSQL's exclusion constraint refuses it."""
    table = Appointment.__table__
    return _insert_returning(
        table, [column for column in table.c if column.name != "id"], "ON CONFLICT DO NOTHING"
    )


def _insert_returning(
    table, columns, on_conflict: str, *, also_returning: str = "", also_columns=(),
    also_parameters=(),
) -> TextClause:
    names = ", ".join(column.name for column in columns)
    values = ", ".join(f":{column.name}" for column in columns)
    returned = ", ".join([*(column.name for column in table.c), *filter(None, [also_returning])])
    return (
        text(
            f"INSERT INTO {table.name} ({names}) VALUES ({values}) {on_conflict} "
            f"RETURNING {returned}"
        )
        .bindparams(
            *(bindparam(column.name, type_=column.type) for column in columns), *also_parameters
        )
        .columns(*table.c, *also_columns)
    )


def _to_be_written(values: dict, related: dict) -> Appointment:
    """The visit these values make, before it is written (no id yet, in no session): for
    planning what is written with it."""
    visit = row_of(Appointment, {**values, "id": None})
    for name, value in related.items():
        set_committed_value(visit, name, value)
    return visit


def _write_visit(values: dict, entry: dict, mail: list[dict]) -> dict | None:
    """Insert the visit, then its audit entry and its mail with its id; the visit's row back
    (by column name), or None (and nothing written) when PostgreSQL's exclusion constraint
    refuses it.

    On PostgreSQL in one statement: the entry and the mail are inserted from the visit's
    RETURNING in data-modifying WITH clauses, so no visit means no rows. That spares two
    round trips, a tenth of a booking's cost. SQLite, in-process, runs the three inserts.
    """
    connection = db.session.connection()
    if is_postgresql():
        parameters = {**values, **{f"entry_{name}": value for name, value in entry.items()}}
        # (Their appointment_id, None until now, is the visit's id in the statement.)
        for number, row in enumerate(mail):
            parameters.update({f"mail_{number}_{name}": value for name, value in row.items()})
        statement = _insert_visit_with_entry_and_mail(
            tuple(name for name in entry if name != "appointment_id"),
            tuple(name for name in mail[0] if name != "appointment_id") if mail else (),
            len(mail),
        )
        rows = converted_rows(connection, statement, parameters)
        return dict(zip(_VISIT_COLUMNS, rows[0], strict=True)) if rows else None
    rows = converted_rows(connection, _insert_unless_overlapping(), values)
    if not rows:
        return None
    inserted = dict(zip(_VISIT_COLUMNS, rows[0], strict=True))
    audit.write_rows([{**entry, "appointment_id": inserted["id"]}])
    if mail:
        outbox.write_rows([{**row, "appointment_id": inserted["id"]} for row in mail])
    return inserted


@cache
def _insert_visit_with_entry_and_mail(
    entry_names: tuple[str, ...], mail_names: tuple[str, ...], mails: int
) -> TextClause:
    """_write_visit's statement on PostgreSQL, for an entry and `mails` mail rows of these
    columns (the rows' own: audit.entry_row's and outbox.booking_mail_rows')."""
    visits, entries = Appointment.__table__, AuditEntry.__table__
    notifications = Notification.__table__
    visit_columns = [column for column in visits.c if column.name != "id"]
    entry_columns = [entries.c[name] for name in entry_names]
    mail_columns = [notifications.c[name] for name in mail_names]

    def names(columns) -> str:
        return ", ".join(column.name for column in columns)

    clauses = [
        f"visit AS (INSERT INTO {visits.name} ({names(visit_columns)}) VALUES "
        f"({', '.join(f':{column.name}' for column in visit_columns)}) ON CONFLICT DO NOTHING "
        f"RETURNING {names(visits.c)})",
        f"entry AS (INSERT INTO {entries.name} (appointment_id, {names(entry_columns)}) "
        f"SELECT visit.id, {', '.join(f':entry_{column.name}' for column in entry_columns)} "
        "FROM visit)",
    ]
    mail_parameters = []
    if mails:
        rows = []
        for number in range(mails):
            rows.append(", ".join(f":mail_{number}_{column.name}" for column in mail_columns))
            mail_parameters += [
                bindparam(f"mail_{number}_{column.name}", type_=column.type)
                for column in mail_columns
            ]
        clauses.append(
            f"mail AS (INSERT INTO {notifications.name} (appointment_id, "
            f"{names(mail_columns)}) SELECT visit.id, planned.* FROM visit, (VALUES "
            f"{', '.join(f'({row})' for row in rows)}) AS planned ({names(mail_columns)}))"
        )
    return (
        text(f"WITH {', '.join(clauses)} SELECT {names(visits.c)} FROM visit")
        .bindparams(
            *(bindparam(column.name, type_=column.type) for column in visit_columns),
            *(bindparam(f"entry_{column.name}", type_=column.type) for column in entry_columns),
            *mail_parameters,
        )
        .columns(*visits.c)
    )


def _write_unless_overlapping(
    new: Appointment | Sequence[object] | None = None, *, savepoint: bool
) -> bool:
    """Flush pending changes (and `new`: one appointment, or rows written together, such as a
    series and its visits); False when PostgreSQL refuses an overlap.

    With a savepoint only this write is undone, so the caller can try another therapist;
    without one, the whole transaction is rolled back.
    """
    rows = [new] if isinstance(new, Appointment) else list(new or ())
    try:
        if savepoint:
            with db.session.begin_nested():
                db.session.add_all(rows)
        else:
            db.session.add_all(rows)
            db.session.flush()
    except IntegrityError as error:
        if not savepoint:
            db.session.rollback()
        if is_exclusion_violation(error):
            return False
        raise
    return True


def _audit(actor: str, action: str, appointment: Appointment, details: dict, now: datetime):
    audit.record(action, actor=actor, appointment_id=appointment.id,
                 therapist_id=appointment.therapist_id, details=details, at=now)


def appointments_overlapping_count() -> int:
    """Pairs of live appointments of one therapist whose busy spans overlap (should be 0)."""
    first, second = (
        select(Appointment).subquery("first"),
        select(Appointment).subquery("second"),
    )
    return db.session.scalar(
        select(func.count()).where(
            first.c.therapist_id == second.c.therapist_id,
            first.c.id < second.c.id,
            first.c.status != AppointmentStatus.CANCELLED,
            second.c.status != AppointmentStatus.CANCELLED,
            first.c.start_at < second.c.busy_until,
            second.c.start_at < first.c.busy_until,
        )
    )
