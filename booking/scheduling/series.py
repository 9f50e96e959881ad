"""Weekly series of visits: a preview that books nothing, booking all or nothing, and
cancelling a visit with every later one of its series.

Each visit is checked by the single booking's rules (hours, time off, busy calendars,
buffers, notice, booking window); the evaluation rule is checked against the first visit.
The visits are written together under one savepoint: on SQLite the write lock makes the
check and the write one step; on PostgreSQL the exclusion constraint refuses a series that
lost a race as a whole, and the series is planned again to name what was taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from booking.clinic.reference import current_clinic, zone_named
from booking.database import hold_write_lock
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    Service,
    Therapist,
    audit,
    patient_identity,
    utc_now,
)
from booking.notifications import outbox
from booking.rules import availability
from booking.rules.series import (
    WEEKDAYS,
    days_around,
    nearest_alternatives,
    series_starts,
)
from booking.scheduling.appointments import (
    PatientDetails,
    SchedulingError,
    SlotUnavailable,
    StaffOverride,
    _audit,
    _patient_for,
    _require_changeable,
    _write_unless_overlapping,
    cancel_appointment,
    require_clinical_rules,
    therapists_offering,
)
from booking.scheduling.therapist_time import booking_rules, local_day_bounds, therapist_calendars

# A lost race on PostgreSQL is planned again: with no therapist named another one may be free.
_WRITE_TRIES = 3


class SeriesNotOffered(SchedulingError):
    code = "series_not_offered"
    status = 422
    field = "service"


class SeriesLengthRefused(SchedulingError):
    code = "validation_error"
    status = 422
    field = "repeat.count"


@dataclass(frozen=True)
class PlannedVisit:
    """One visit of a series as planned: free, or why not and the nearest free times."""

    start: datetime
    end: datetime
    therapist: str
    reason: str | None = None
    alternatives: tuple[availability.Slot, ...] = ()

    @property
    def free(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class SeriesPlan:
    therapist: Therapist
    visits: tuple[PlannedVisit, ...]

    @property
    def conflicts(self) -> list[PlannedVisit]:
        return [visit for visit in self.visits if not visit.free]


class SeriesUnavailable(SlotUnavailable):
    """Some visits of the series are not free: nothing was booked; `conflicts` names them."""

    def __init__(self, plan: SeriesPlan):
        taken = ", ".join(
            f"visit {number} ({visit.reason})"
            for number, visit in enumerate(plan.visits, start=1)
            if not visit.free
        )
        first = next(visit for visit in plan.visits if not visit.free)
        super().__init__(first.reason, f"the series cannot be booked as asked: {taken}")
        self.plan = plan


@dataclass
class BookedSeries:
    series: AppointmentSeries
    appointments: list[Appointment] = field(default_factory=list)


def weekday_numbers(names: Sequence[str], first: datetime) -> list[int]:
    """The weekdays asked for (0 = Monday); none asked for: the first visit's, in clinic time."""
    if not names:
        zone = zone_named(current_clinic().timezone)
        return [first.astimezone(zone).weekday()]
    return sorted({WEEKDAYS.index(name) for name in names})


def plan_series(
    service: Service,
    first: datetime,
    weekdays: Sequence[int],
    count: int,
    *,
    therapist_slug: str | None = None,
    override: StaffOverride | None = None,
    now: datetime | None = None,
) -> SeriesPlan:
    """Each visit of the series, free or not (and why not, with up to three alternatives).

    With no therapist named, the first therapist (clinic order) free for every visit is
    chosen; when none is, the one with the fewest visits taken, and the alternatives may come
    from any therapist of the same discipline. Books nothing.
    """
    _require_series_offered(service, count, override)
    now = now or utc_now()
    clinic = current_clinic()
    zone = zone_named(clinic.timezone)
    starts = series_starts(first, weekdays, count, zone)
    visit = timedelta(minutes=service.duration_minutes)
    span = visit + timedelta(minutes=service.buffer_after_minutes)
    rules = booking_rules(service, clinic.slot_step_minutes, staff_override=override is not None)
    therapists = therapists_offering(service, therapist_slug)
    if not therapists:
        raise SlotUnavailable(
            availability.SlotRefusal.OUTSIDE_HOURS,
            f"no therapist offers {service.name} at the moment",
        )
    first_day = days_around(starts[0].astimezone(zone).date())[0]
    last_day = days_around(starts[-1].astimezone(zone).date())[1]
    window_start, window_end = local_day_bounds(first_day, last_day, zone)
    window = (window_start - span, window_end + span)

    # One therapist's calendar at a time, in clinic order: the first free for every visit
    # ends the search, so a busy clinic is read no further than needed.
    calendars: dict[int, availability.TherapistCalendar] = {}
    best: tuple[int, Therapist, list[str | None]] | None = None
    for therapist in therapists:
        [calendar] = therapist_calendars([therapist], *window)
        calendars[therapist.id] = calendar
        reasons = [availability.why_not_free(calendar, rules, zone, start, now) for start in starts]
        taken = sum(reason is not None for reason in reasons)
        if best is None or taken < best[0]:
            best = (taken, therapist, reasons)
        if taken == 0:
            break
    assert best is not None  # there is at least one therapist
    taken, chosen, reasons = best

    nearby: list[availability.TherapistCalendar] = []
    if taken:
        # Alternatives: the chosen therapist's, and with none named, their discipline's.
        mates = [
            therapist
            for therapist in therapists
            if therapist is chosen or set(therapist.disciplines) & set(chosen.disciplines)
        ]
        unread = [therapist for therapist in mates if therapist.id not in calendars]
        calendars.update(
            zip([t.id for t in unread], therapist_calendars(unread, *window), strict=True)
        )
        nearby = [calendars[therapist.id] for therapist in mates]
    visits = []
    for start, reason in zip(starts, reasons, strict=True):
        alternatives: tuple[availability.Slot, ...] = ()
        if reason is not None:
            before, after = days_around(start.astimezone(zone).date())
            others = [
                (other, other + span, chosen.slug) for other in starts if other != start
            ]
            alternatives = tuple(
                nearest_alternatives(
                    start,
                    availability.free_slots(nearby, rules, zone, before, after, now),
                    chosen.slug,
                    avoid=others,
                )
            )
        visits.append(PlannedVisit(start, start + visit, chosen.slug, reason, alternatives))
    return SeriesPlan(chosen, tuple(visits))


def preview_series(
    service: Service,
    first: datetime,
    weekdays: Sequence[int],
    count: int,
    patient: PatientDetails,
    *,
    therapist_slug: str | None = None,
    override: StaffOverride | None = None,
    now: datetime | None = None,
) -> SeriesPlan:
    """What book_series would do, booking nothing: its refusal of the patient
    (EvaluationRequired), or each visit free or not."""
    identity = patient_identity(patient.email, patient.name, patient.phone)
    require_clinical_rules(service, identity, first, override)
    return plan_series(
        service, first, weekdays, count, therapist_slug=therapist_slug, override=override,
        now=now,
    )


def book_series(
    service: Service,
    first: datetime,
    weekdays: Sequence[int],
    count: int,
    patient: PatientDetails,
    *,
    therapist_slug: str | None = None,
    notes: str = "",
    booked_by: str = "patient",
    override: StaffOverride | None = None,
    now: datetime | None = None,
) -> BookedSeries:
    """Book every visit of the series, or none: SeriesUnavailable names each visit not free.

    One confirmation goes out for the whole series; each visit has its own reminders.
    """
    now = now or utc_now()
    hold_write_lock()
    _require_series_offered(service, count, override)
    identity = patient_identity(patient.email, patient.name, patient.phone)
    require_clinical_rules(service, identity, first, override)
    patient_row = _patient_for(identity, patient, now)
    weekday_names = [WEEKDAYS[number] for number in weekdays]
    for _ in range(_WRITE_TRIES):
        plan = plan_series(
            service, first, weekdays, count,
            therapist_slug=therapist_slug, override=override, now=now,
        )
        if plan.conflicts:
            raise SeriesUnavailable(plan)
        therapist = plan.therapist
        series = AppointmentSeries(
            service_id=service.id,
            therapist_id=therapist.id,
            patient_id=patient_row.id,
            weekdays=weekday_names,
            visit_count=count,
            booked_by=booked_by,
            created_at=now,
        )
        span = timedelta(minutes=service.buffer_after_minutes)
        # Ids, not relationships to rows already in the session: the new rows join the
        # session only inside the savepoint, so a refused series leaves nothing behind.
        appointments = [
            Appointment(
                series=series,
                service_id=service.id,
                therapist_id=therapist.id,
                patient_id=patient_row.id,
                start_at=visit.start,
                end_at=visit.end,
                busy_until=visit.end + span,
                status=AppointmentStatus.CONFIRMED,
                notes=notes,
                booked_by=booked_by,
                evaluation_override=override.reason if override else "",
                created_at=now,
                updated_at=now,
            )
            for visit in plan.visits
        ]
        if not _write_unless_overlapping([series, *appointments], savepoint=True):
            continue  # PostgreSQL refused an overlap: another booking won a visit
        for appointment in appointments:
            for name, value in (("service", service), ("therapist", therapist),
                                ("patient", patient_row)):
                set_committed_value(appointment, name, value)
        audit.record_each(
            "booked",
            actor=booked_by,
            changes=[
                (appointment.id, appointment.therapist_id, {
                    "service": service.slug,
                    "therapist": therapist.slug,
                    "start": appointment.start_at.isoformat(),
                    "series": series.id,
                    **({"override": override.reason} if override else {}),
                })
                for appointment in appointments
            ],
            at=now,
        )
        outbox.plan_for_series_booking(appointments, now)
        return BookedSeries(series, appointments)
    raise SlotUnavailable(
        availability.SlotRefusal.TAKEN, "those times were just taken; please choose others"
    )


def series_visits(series: AppointmentSeries) -> list[Appointment]:
    return list(
        db.session.scalars(
            select(Appointment)
            .where(Appointment.series_id == series.id)
            .order_by(Appointment.start_at, Appointment.id)
        )
    )


def cancel_following(
    appointment: Appointment,
    *,
    cancelled_by: str = "patient",
    reason: str = "",
    now: datetime | None = None,
) -> list[Appointment]:
    """Cancel this visit and every later live visit of its series; one cancellation mail.

    A visit of no series is cancelled alone, as cancel_appointment does.
    """
    now = now or utc_now()
    hold_write_lock()
    db.session.refresh(appointment)
    if appointment.series_id is None or appointment.status == AppointmentStatus.CANCELLED:
        return [cancel_appointment(appointment, cancelled_by=cancelled_by, reason=reason, now=now)]
    _require_changeable(appointment, now)
    following = list(
        db.session.scalars(
            select(Appointment)
            .where(
                Appointment.series_id == appointment.series_id,
                Appointment.status == AppointmentStatus.CONFIRMED,
                Appointment.start_at >= appointment.start_at,
            )
            .order_by(Appointment.start_at, Appointment.id)
        )
    )
    for visit in following:
        visit.status = AppointmentStatus.CANCELLED
        visit.cancel_reason = reason
        visit.sequence += 1
        visit.updated_at = now
        _audit(
            cancelled_by,
            "cancelled",
            visit,
            {"scope": "following", **({"reason": reason} if reason else {})},
            now,
        )
    outbox.plan_for_series_cancellation(following, now)
    db.session.flush()
    return following


def _require_series_offered(service: Service, count: int, override: StaffOverride | None):
    if service.max_series_visits <= 0 and override is None:
        raise SeriesNotOffered(f"{service.name} is not booked as a series online")
    if count < 2:
        raise SeriesLengthRefused("a series has at least 2 visits")
    if override is None and count > service.max_series_visits:
        raise SeriesLengthRefused(
            f"a series of {service.name} has at most {service.max_series_visits} visits"
        )
