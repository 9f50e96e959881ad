"""What the clinic knows about therapists' time, as the plain values availability takes:
their hours and time off (reference data), their busy spans, and a service's booking rules.

One statement for the busy spans, whatever the number of therapists and days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, null, select, union_all

from booking.clinic.reference import (
    ServiceFacts,
    TherapistFacts,
    check_revision,
    reference_data,
    unchecked_revision,
)
from booking.database import connection_for_reads, driver_rows, one_of
from booking.models import (
    LONGEST_BUSY_SPAN,
    Appointment,
    AppointmentStatus,
    Clinic,
    ExternalBusyTime,
    Service,
    Therapist,
    UTCDateTime,
)
from booking.rules.availability import BookingRules, TherapistCalendar

# How far back the front desk may record a visit that already happened.
PAST_VISITS_RECORDED_FOR = timedelta(days=31)


def booking_rules(
    service: ServiceFacts | Service,
    slot_step_minutes: int,
    *,
    staff_override: bool = False,
    past_visit: bool = False,
):
    """The service's rules; front desk may waive notice and the booking window (not hours),
    and record a visit already past (`past_visit`, with an override)."""
    if staff_override and past_visit:
        min_notice = -PAST_VISITS_RECORDED_FOR
    elif staff_override:
        min_notice = timedelta(0)
    else:
        min_notice = timedelta(hours=service.min_notice_hours)
    return BookingRules(
        duration=timedelta(minutes=service.duration_minutes),
        buffer_after=timedelta(minutes=service.buffer_after_minutes),
        min_notice=min_notice,
        max_advance=timedelta(days=3650)
        if staff_override
        else timedelta(days=service.max_advance_days),
        slot_step_minutes=slot_step_minutes,
    )


def local_day_bounds(first_day: date, last_day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants from local midnight of first_day to local midnight after last_day."""
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return start, end


def therapist_calendars(
    therapists: Sequence[TherapistFacts | Therapist],
    window_start: datetime,
    window_end: datetime,
    *,
    ignore_appointment_id: int | None = None,
    ignore_appointment_ids: Sequence[int] = (),
) -> list[TherapistCalendar]:
    """Hours, time off and busy spans of these therapists, for availability in this window.

    Hours and time off come from the reference data; the busy spans (live appointments and the
    therapists' own calendars kept elsewhere) are one statement, read as plain rows. The
    appointments to ignore are those being moved (one visit, or several of a series).
    """
    if not therapists:
        return []
    # A Therapist row (the waitlist has one) is read as its reference data.
    known = reference_data()
    therapists = [
        therapist if isinstance(therapist, TherapistFacts)
        else known.therapist_with_id(therapist.id)
        for therapist in therapists
    ]
    busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    parameters = {"therapist_ids": [therapist.id for therapist in therapists],
                  "window_start": window_start, "window_end": window_end,
                  "earliest_start": window_start - LONGEST_BUSY_SPAN}
    ignored = [*ignore_appointment_ids]
    if ignore_appointment_id is not None:
        ignored.append(ignore_appointment_id)
    if ignored:
        parameters["ignored_appointments"] = ignored
    # The reference data in use may be the process's copy unchecked: its revision is read
    # in this same statement (a row of its own, with no start).
    to_check = unchecked_revision()
    connection = connection_for_reads()
    statement = _busy_spans(ignoring=bool(ignored), with_revision=to_check is not None,
                            dialect_name=connection.dialect.name)
    for therapist_id, start, end in driver_rows(connection, statement, parameters):
        if start is None:
            check_revision(therapist_id)
        else:
            busy[therapist_id].append((start, end))  # in order, as the database keeps them
    # Time off is wall clock; a day either side covers any zone offset.
    local_from = window_start.replace(tzinfo=None) - timedelta(days=1)
    local_to = window_end.replace(tzinfo=None) + timedelta(days=1)
    return [
        TherapistCalendar(
            therapist=therapist.slug,
            hours=therapist.hours,
            time_off=tuple(
                period for period in therapist.time_off
                if period.start < local_to and period.end > local_from
            ),
            busy=tuple(busy[therapist.id]),
        )
        for therapist in therapists
    ]


@cache
def _busy_spans(*, ignoring: bool, with_revision: bool, dialect_name: str):
    """(therapist id, start, end) of every busy span of some therapists in a window: live
    appointments and the therapists' own calendars kept elsewhere (booking/calendars).

    Built once per process and database: building the expression was a third of a short
    request's time. Read with driver_rows: the rows are the busy spans as they come.
    """
    window_start = bindparam("window_start", type_=UTCDateTime)
    window_end = bindparam("window_end", type_=UTCDateTime)
    # No busy span is longer than this before the window: the index on (therapist, start)
    # skips the therapist's past rather than reading all of it.
    earliest_start = bindparam("earliest_start", type_=UTCDateTime)
    appointments = select(
        Appointment.therapist_id, Appointment.start_at, Appointment.busy_until
    ).where(
        one_of(Appointment.therapist_id, "therapist_ids", dialect_name=dialect_name),
        Appointment.status != AppointmentStatus.CANCELLED,
        Appointment.start_at < window_end,
        Appointment.busy_until > window_start,
        Appointment.start_at > earliest_start,
    )
    if ignoring:
        appointments = appointments.where(
            ~one_of(Appointment.id, "ignored_appointments", dialect_name=dialect_name)
        )
    elsewhere = select(
        ExternalBusyTime.therapist_id, ExternalBusyTime.start_at, ExternalBusyTime.end_at
    ).where(
        one_of(ExternalBusyTime.therapist_id, "therapist_ids", dialect_name=dialect_name),
        ExternalBusyTime.start_at < window_end,
        ExternalBusyTime.end_at > window_start,
    )
    if not with_revision:
        return union_all(appointments, elsewhere)
    revision = select(
        Clinic.reference_revision, null().label("start_at"), null().label("busy_until")
    )
    return union_all(appointments, elsewhere, revision)
