"""What the database knows about therapists' time, as the plain values availability takes:
their hours, time off and busy spans, and a service's booking rules.

One query each for hours, time off and busy spans, whatever the number of therapists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    ExternalBusyTime,
    Service,
    Therapist,
)
from booking.models import TimeOff as TimeOffRow
from booking.models import WorkingHours as WorkingHoursRow
from booking.rules.availability import (
    BookingRules,
    Interval,
    TherapistCalendar,
    TimeOff,
    WorkingHours,
)

# How far back the front desk may record a visit that already happened.
PAST_VISITS_RECORDED_FOR = timedelta(days=31)


def booking_rules(service: Service, slot_step_minutes: int, *, staff_override: bool = False,
                  past_visit: bool = False):
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
    therapists: Sequence[Therapist],
    window_start: datetime,
    window_end: datetime,
    *,
    ignore_appointment_id: int | None = None,
) -> list[TherapistCalendar]:
    """Hours, time off and busy spans of these therapists, for availability in this window."""
    if not therapists:
        return []
    ids = [therapist.id for therapist in therapists]
    hours: dict[int, list[WorkingHours]] = defaultdict(list)
    for row in db.session.execute(
        select(
            WorkingHoursRow.therapist_id,
            WorkingHoursRow.weekday,
            WorkingHoursRow.start_time,
            WorkingHoursRow.end_time,
        ).where(WorkingHoursRow.therapist_id.in_(ids))
    ):
        hours[row.therapist_id].append(WorkingHours(row.weekday, row.start_time, row.end_time))

    # Time off is wall clock; a day either side covers any zone offset.
    local_from = window_start.replace(tzinfo=None) - timedelta(days=1)
    local_to = window_end.replace(tzinfo=None) + timedelta(days=1)
    time_off: dict[int, list[TimeOff]] = defaultdict(list)
    for row in db.session.execute(
        select(TimeOffRow.therapist_id, TimeOffRow.starts_local, TimeOffRow.ends_local).where(
            TimeOffRow.therapist_id.in_(ids),
            TimeOffRow.starts_local < local_to,
            TimeOffRow.ends_local > local_from,
        )
    ):
        time_off[row.therapist_id].append(TimeOff(row.starts_local, row.ends_local))

    busy: dict[int, list[Interval]] = defaultdict(list)
    query = select(Appointment.therapist_id, Appointment.start_at, Appointment.busy_until).where(
        Appointment.therapist_id.in_(ids),
        Appointment.status != AppointmentStatus.CANCELLED,
        Appointment.start_at < window_end,
        Appointment.busy_until > window_start,
    )
    if ignore_appointment_id is not None:
        query = query.where(Appointment.id != ignore_appointment_id)
    for row in db.session.execute(query):
        busy[row.therapist_id].append(Interval(row.start_at, row.busy_until))
    # Busy times of the therapists' own calendars kept elsewhere (booking/external_calendars).
    for row in db.session.execute(
        select(
            ExternalBusyTime.therapist_id, ExternalBusyTime.start_at, ExternalBusyTime.end_at
        ).where(
            ExternalBusyTime.therapist_id.in_(ids),
            ExternalBusyTime.start_at < window_end,
            ExternalBusyTime.end_at > window_start,
        )
    ):
        busy[row.therapist_id].append(Interval(row.start_at, row.end_at))

    return [
        TherapistCalendar(
            therapist=therapist.slug,
            hours=tuple(hours[therapist.id]),
            time_off=tuple(time_off[therapist.id]),
            busy=tuple(busy[therapist.id]),
        )
        for therapist in therapists
    ]
