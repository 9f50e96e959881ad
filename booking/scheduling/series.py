"""Weekly series of visits: a preview that books nothing, booking all or nothing (with the
alternatives staff picked visit by visit), cancelling a visit with every later one of its
series, moving a visit with every later one, and adding visits to the end.

Each visit is checked by the single booking's rules (hours, time off, busy calendars,
buffers, notice, booking window); the evaluation rule is checked against the first visit.
The visits are written together under one savepoint: on SQLite the write lock makes the
check and the write one step; on PostgreSQL the exclusion constraint refuses a series that
lost a race as a whole, and the series is planned again to name what was taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from booking.clinic.reference import current_clinic, therapist_row, zone_named
from booking.database import hold_write_lock, is_exclusion_violation
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
from booking.rules.clinical import ClearanceDecision
from booking.rules.series import (
    WEEKDAYS,
    days_around,
    nearest_alternatives,
    series_starts,
)
from booking.scheduling import waitlist_offers
from booking.scheduling.appointments import (
    PatientDetails,
    SchedulingError,
    SlotUnavailable,
    StaffOverride,
    _audit,
    _clearance_required,
    _lost_race,
    _patient_for,
    _require_changeable,
    _write_unless_overlapping,
    cancel_appointment,
    refresh_held,
    require_clinical_rules,
    therapists_offering,
)
from booking.scheduling.clearances import decision_in_force
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
    chosen: Mapping[int, datetime] | None = None,
) -> SeriesPlan:
    """Each visit of the series, free or not (and why not, with up to three alternatives).

    `chosen` replaces visits of the pattern (by their index, 0 = the first) with the starts
    staff picked instead, each checked as the others. With no therapist named, the first
    therapist (clinic order) free for every visit is chosen; when none is, the one with the
    fewest visits taken, and the alternatives may come from any therapist of the same
    discipline. Books nothing.
    """
    _require_series_offered(service, count, override)
    zone = zone_named(current_clinic().timezone)
    starts = series_starts(first, weekdays, count, zone)
    for index, start in (chosen or {}).items():
        if not 0 <= index < count:
            raise SchedulingError(
                f"a series of {count} visits has no visit {index + 1}", field=f"visit-{index + 1}"
            )
        if start.utcoffset() is None:
            raise ValueError("a chosen start must be a timezone-aware instant")
        starts[index] = start.astimezone(UTC)
    return plan_visits(
        service, starts, therapist_slug=therapist_slug, override=override, now=now
    )


def plan_visits(
    service: Service,
    starts: Sequence[datetime],
    *,
    therapist_slug: str | None = None,
    override: StaffOverride | None = None,
    now: datetime | None = None,
    ignore_appointment_ids: Sequence[int] = (),
) -> SeriesPlan:
    """These visits, each free or not by a single booking's rules and not overlapping another
    of them, with up to three alternatives for each that is not. The appointments ignored are
    those being moved. Books nothing."""
    now = now or utc_now()
    clinic = current_clinic()
    zone = zone_named(clinic.timezone)
    visit = timedelta(minutes=service.duration_minutes)
    span = visit + timedelta(minutes=service.buffer_after_minutes)
    rules = booking_rules(service, clinic.slot_step_minutes, staff_override=override is not None)
    therapists = therapists_offering(service, therapist_slug)
    if not therapists:
        raise SlotUnavailable(
            availability.SlotRefusal.OUTSIDE_HOURS,
            f"no therapist offers {service.name} at the moment",
        )
    days = [start.astimezone(zone).date() for start in starts]
    first_day = days_around(min(days))[0]
    last_day = days_around(max(days))[1]
    window_start, window_end = local_day_bounds(first_day, last_day, zone)
    window = (window_start - span, window_end + span)

    def calendars_of(chosen_therapists):
        return therapist_calendars(
            chosen_therapists, *window, ignore_appointment_ids=ignore_appointment_ids
        )

    # One therapist's calendar at a time, in clinic order: the first free for every visit
    # ends the search, so a busy clinic is read no further than needed.
    calendars: dict[int, availability.TherapistCalendar] = {}
    best: tuple[int, Therapist, list[str | None]] | None = None
    for therapist in therapists:
        [calendar] = calendars_of([therapist])
        calendars[therapist.id] = calendar
        reasons = [
            availability.why_not_free(calendar, rules, zone, start, now)
            or _overlapping_an_earlier_one(starts, number, span)
            for number, start in enumerate(starts)
        ]
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
            zip([t.id for t in unread], calendars_of(unread), strict=True)
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


def _overlapping_an_earlier_one(
    starts: Sequence[datetime], number: int, span: timedelta
) -> availability.SlotRefusal | None:
    """A visit of the plan is taken by an earlier one of the same plan (two picked
    alternatives, or a move, can land on one time)."""
    start = starts[number]
    if any(other < start + span and start < other + span for other in starts[:number]):
        return availability.SlotRefusal.TAKEN
    return None


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
    chosen: Mapping[int, datetime] | None = None,
) -> SeriesPlan:
    """What book_series would do, booking nothing: its refusal of the patient
    (EvaluationRequired), or each visit free or not."""
    identity = patient_identity(patient.email, patient.name, patient.phone)
    require_clinical_rules(service, identity, (chosen or {}).get(0, first), override)
    return plan_series(
        service, first, weekdays, count, therapist_slug=therapist_slug, override=override,
        now=now, chosen=chosen,
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
    chosen: Mapping[int, datetime] | None = None,
    authorised_visits: int | None = None,
    authorised_until: date | None = None,
) -> BookedSeries:
    """Book every visit of the series, or none: SeriesUnavailable names each visit not free.

    `chosen`: starts staff picked instead of visits of the pattern (see plan_series). The
    insurance authorisation, if any, is kept with the series. One confirmation goes out for
    the whole series; each visit has its own reminders.
    """
    now = now or utc_now()
    chosen = dict(chosen or {})
    hold_write_lock()
    _require_series_offered(service, count, override)
    identity = patient_identity(patient.email, patient.name, patient.phone)
    require_clinical_rules(service, identity, chosen.get(0, first), override)
    patient_row = _patient_for(identity, patient, now)
    weekday_names = [WEEKDAYS[number] for number in weekdays]
    for _ in range(_WRITE_TRIES):
        plan = plan_series(
            service, first, weekdays, count,
            therapist_slug=therapist_slug, override=override, now=now, chosen=chosen,
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
            authorised_visits=authorised_visits,
            authorised_until=authorised_until,
        )
        # Ids, not relationships to rows already in the session: the new rows join the
        # session only inside the savepoint, so a refused series leaves nothing behind.
        # What was given with this booking is this booking's, as for a single visit.
        given = _DetailsGiven(notes, patient.phone, patient.date_of_birth,
                              patient.guardian_name, patient.language)
        appointments = [
            _visit_row(visit, service, therapist.id, patient_row.id, given,
                       booked_by=booked_by, override=override, now=now, series=series)
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
                    **({"alternative_chosen": True} if index in chosen else {}),
                    **({"override": override.reason} if override else {}),
                })
                for index, appointment in enumerate(appointments)
            ],
            at=now,
        )
        outbox.plan_for_series_booking(appointments, now)
        return BookedSeries(series, appointments)
    raise SlotUnavailable(
        availability.SlotRefusal.TAKEN, "those times were just taken; please choose others"
    )


@dataclass(frozen=True)
class _DetailsGiven:
    """What the patient gave with the booking of a series, kept on each of its visits."""

    notes: str
    patient_phone: str | None
    patient_date_of_birth: date | None
    patient_guardian_name: str | None
    patient_language: str | None


def _visit_row(
    visit: PlannedVisit, service: Service, therapist_id: int, patient_id: int,
    given: _DetailsGiven, *, booked_by: str, override: StaffOverride | None, now: datetime,
    **of_series,
) -> Appointment:
    """A confirmed visit of a series as planned (`of_series`: the series, or its id)."""
    return Appointment(
        **of_series,
        service_id=service.id,
        therapist_id=therapist_id,
        patient_id=patient_id,
        start_at=visit.start,
        end_at=visit.end,
        busy_until=visit.end + timedelta(minutes=service.buffer_after_minutes),
        status=AppointmentStatus.CONFIRMED,
        notes=given.notes,
        patient_phone=given.patient_phone,
        patient_date_of_birth=given.patient_date_of_birth,
        patient_guardian_name=given.patient_guardian_name,
        patient_language=given.patient_language,
        booked_by=booked_by,
        evaluation_override=override.reason if override else "",
        created_at=now,
        updated_at=now,
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
    refresh_held(appointment)
    if appointment.series_id is None or appointment.status == AppointmentStatus.CANCELLED:
        return [cancel_appointment(appointment, cancelled_by=cancelled_by, reason=reason, now=now)]
    _require_changeable(appointment, now)
    following = _live_from(appointment)
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


def move_following(
    appointment: Appointment,
    weekday: int,
    wall_time: time,
    *,
    changed_by: str,
    override: StaffOverride | None = None,
    now: datetime | None = None,
) -> list[Appointment]:
    """Move this visit and every later confirmed one of its series, all or nothing: this one
    to `weekday` (0 = Monday) of its week at `wall_time` (clinic time), each later one by the
    same number of days to the same time, all with this visit's therapist.

    Every new time is checked by a single booking's rules (the moving visits not counting as
    busy); SeriesUnavailable names each one that is not free, and nothing moves. Each moved
    visit keeps its id and UID; one reschedule mail tells the patient of them all.
    """
    now = now or utc_now()
    hold_write_lock()
    refresh_held(appointment)
    if appointment.series_id is None:
        raise SchedulingError("this visit is not part of a course", field="visit")
    _require_changeable(appointment, now)
    service = appointment.service
    _require_clearance_not_refused(appointment, override)
    zone = zone_named(current_clinic().timezone)
    following = _live_from(appointment)
    shift = timedelta(days=weekday - appointment.start_at.astimezone(zone).weekday())
    starts = [
        datetime.combine(
            visit.start_at.astimezone(zone).date() + shift, wall_time, tzinfo=zone
        ).astimezone(UTC)
        for visit in following
    ]
    plan = plan_visits(
        service, starts, therapist_slug=appointment.therapist.slug, override=override, now=now,
        ignore_appointment_ids=[visit.id for visit in following],
    )
    if plan.conflicts:
        raise SeriesUnavailable(plan)
    therapist = therapist_row(plan.therapist)
    before = [
        (visit.therapist, visit.start_at, visit.busy_until, visit.therapist.slug)
        for visit in following
    ]
    moves = list(zip(following, plan.visits, strict=True))
    # Visits moving later are written from the last one back, earlier ones from the first on,
    # so no visit passes over another still in its old place (PostgreSQL checks every row).
    if starts[0] > following[0].start_at:
        moves.reverse()
    buffer = timedelta(minutes=service.buffer_after_minutes)
    try:
        with db.session.begin_nested():
            for visit, planned in moves:
                visit.therapist = therapist
                visit.start_at, visit.end_at = planned.start, planned.end
                visit.busy_until = planned.end + buffer
                visit.sequence += 1
                visit.updated_at = now
                db.session.flush()
    except IntegrityError as error:
        if is_exclusion_violation(error):
            raise _lost_race() from None
        raise
    for visit, (_, start_before, _, slug_before) in zip(following, before, strict=True):
        _audit(
            changed_by,
            "rescheduled",
            visit,
            {
                "from": {"therapist": slug_before, "start": start_before.isoformat()},
                "to": {"therapist": therapist.slug, "start": visit.start_at.isoformat()},
                "scope": "following",
                **({"override": override.reason} if override else {}),
            },
            now,
        )
    outbox.plan_for_series_reschedule(following, now)
    series = db.session.get(AppointmentSeries, appointment.series_id)
    series.weekdays = [
        WEEKDAYS[(WEEKDAYS.index(name) + shift.days) % 7] for name in series.weekdays
    ]
    db.session.flush()
    for therapist_before, start_before, busy_before, _ in before:
        waitlist_offers.offer_freed_time(therapist_before, start_before, busy_before, now)
    return following


def add_visits(
    series: AppointmentSeries,
    count: int,
    *,
    booked_by: str,
    override: StaffOverride | None = None,
    now: datetime | None = None,
) -> list[Appointment]:
    """Book `count` more visits at the end of the series, on its weekdays at the time of its
    last visit, all or nothing: SeriesUnavailable names each one not free (with its
    alternatives). One confirmation tells the patient of the whole course."""
    now = now or utc_now()
    hold_write_lock()
    db.session.refresh(series)
    service = series.service
    limit = max(service.max_series_visits, 2)
    if not 1 <= count <= limit and override is None:
        raise SeriesLengthRefused(f"add from 1 to {limit} visits at a time", field="count")
    if count < 1:
        raise SeriesLengthRefused("add at least 1 visit", field="count")
    visits = series_visits(series)
    last = ([visit for visit in visits if visit.is_live] or visits)[-1]
    _require_clearance_not_refused(last, override)
    zone = zone_named(current_clinic().timezone)
    weekdays = [WEEKDAYS.index(name) for name in series.weekdays] or [
        last.start_at.astimezone(zone).weekday()
    ]
    starts = series_starts(last.start_at, weekdays, count + 1, zone)[1:]
    plan = plan_visits(
        service, starts, therapist_slug=series.therapist.slug, override=override, now=now
    )
    if plan.conflicts:
        raise SeriesUnavailable(plan)
    # The added visits carry what was given with the course's last one.
    given = _DetailsGiven(last.notes, last.patient_phone, last.patient_date_of_birth,
                          last.patient_guardian_name, last.patient_language)
    added = [
        _visit_row(visit, service, series.therapist_id, series.patient_id, given,
                   booked_by=booked_by, override=override, now=now, series_id=series.id)
        for visit in plan.visits
    ]
    if not _write_unless_overlapping(added, savepoint=True):
        raise _lost_race()
    series.visit_count += count
    for appointment in added:
        for name, value in (("service", service), ("therapist", series.therapist),
                            ("patient", series.patient), ("series", series)):
            set_committed_value(appointment, name, value)
        _audit(
            booked_by,
            "booked",
            appointment,
            {
                "service": service.slug,
                "therapist": series.therapist.slug,
                "start": appointment.start_at.isoformat(),
                "series": series.id,
                "added_to_series": True,
                **({"override": override.reason} if override else {}),
            },
            now,
        )
    outbox.plan_for_series_booking(added, now)
    db.session.flush()
    return added


def set_authorisation(
    series: AppointmentSeries,
    authorised_visits: int | None,
    authorised_until: date | None,
    *,
    changed_by: str,
    now: datetime | None = None,
) -> AppointmentSeries:
    """Record the insurer's authorisation for the course (so many visits, until a day), or
    take it away with None; audit logged when it changes."""
    hold_write_lock()
    db.session.refresh(series)
    before = {"visits": series.authorised_visits, "until": _day(series.authorised_until)}
    after = {"visits": authorised_visits, "until": _day(authorised_until)}
    if before != after:
        series.authorised_visits, series.authorised_until = authorised_visits, authorised_until
        audit.record(
            "authorisation_changed", actor=changed_by, therapist_id=series.therapist_id,
            details={"series": series.id, "from": before, "to": after}, at=now or utc_now(),
        )
        db.session.flush()
    return series


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _live_from(appointment: Appointment) -> list[Appointment]:
    """This visit and the later confirmed visits of its series, in order."""
    return list(
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


def _require_clearance_not_refused(appointment: Appointment, override: StaffOverride | None):
    """As for moving one visit: a patient found not cleared keeps no new times for the service
    unless staff override."""
    service = appointment.service
    if (
        service.requires_clearance
        and override is None
        and decision_in_force(appointment.patient, service) is ClearanceDecision.NOT_CLEARED
    ):
        raise _clearance_required(service)


def _require_series_offered(service: Service, count: int, override: StaffOverride | None):
    if service.max_series_visits <= 0 and override is None:
        raise SeriesNotOffered(f"{service.name} is not booked as a series online")
    if count < 2:
        raise SeriesLengthRefused("a series has at least 2 visits")
    if override is None and count > service.max_series_visits:
        raise SeriesLengthRefused(
            f"a series of {service.name} has at most {service.max_series_visits} visits"
        )


@dataclass(frozen=True)
class SeriesPlace:
    """Which visit of its weekly series a visit is: the series' visits in order of their
    start, every one counted (a cancelled visit keeps its number, so the others keep theirs)."""

    series_id: int
    number: int
    of: int

    def __str__(self) -> str:
        return f"visit {self.number} of {self.of}"


@cache
def series_place_columns() -> tuple:
    """Two columns for a query of visits: the visit's number in its series and how many the
    series has (0 for a visit of no series). Each a count on the index of the series, asked
    only of a visit in one, so a day of hundreds of visits reads them in its own query."""
    # Built once: the same expression every time, which SQLAlchemy's statement cache knows.
    visit, other = Appointment, aliased(Appointment)
    same_series = other.series_id == visit.series_id
    earlier = or_(other.start_at < visit.start_at,
                  and_(other.start_at == visit.start_at, other.id <= visit.id))
    in_no_series = visit.series_id.is_(None)
    return (
        case((in_no_series, 0), else_=select(func.count()).where(same_series, earlier)
             .scalar_subquery()).label("series_number"),
        case((in_no_series, 0), else_=select(func.count()).where(same_series)
             .scalar_subquery()).label("series_visits"),
    )


def places_in_series(visit_ids: Iterable[int]) -> dict[int, SeriesPlace]:
    """The place of each of these visits that belongs to a series; one statement, none when
    no visit is given."""
    visit_ids = sorted(set(visit_ids))
    if not visit_ids:
        return {}
    rows = db.session.execute(
        select(Appointment.id, Appointment.series_id, *series_place_columns())
        .where(Appointment.id.in_(visit_ids), Appointment.series_id.is_not(None))
    ).tuples()
    return {visit_id: SeriesPlace(series_id, number, of)
            for visit_id, series_id, number, of in rows}
