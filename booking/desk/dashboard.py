"""The clinic's dashboard, for admins: how full each therapist's weeks are, no-shows and late
cancellations, new patients, evaluations that led to a course of care, and what the waitlist
filled, month by month.

Each figure is one SQL aggregate over buckets of time (a CASE on the start instant), never a
walk over every appointment; the page draws them with Chart.js and shows the same numbers as
tables for screen readers and for a browser without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise

from flask import Blueprint, render_template
from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import aliased

from booking.clinic.reference import clinic_zone
from booking.desk import queries
from booking.desk.access import ADMIN, allowed
from booking.desk.pages import today
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    OfferStatus,
    Patient,
    Service,
    ServiceKind,
    WaitlistOffer,
    WorkingHours,
)

dashboard = Blueprint("dashboard", __name__)

WEEKS_SHOWN = 8
MONTHS_SHOWN = 6
# A cancellation this close to the start is a late one: the time can rarely be filled.
LATE_CANCELLATION = timedelta(hours=24)


@dataclass(frozen=True)
class Figure:
    """One chart: a label per column of the table, and a row of numbers per series."""

    title: str
    key: str
    labels: list[str]
    series: list[tuple[str, list[float]]]
    unit: str = ""


@dashboard.get("/dashboard")
@allowed(*ADMIN)
def overview():
    shown = today()
    figures = clinic_figures(shown)
    return render_template("desk/dashboard.html", figures=figures, shown=shown)


def clinic_figures(day: date) -> list[Figure]:
    zone = clinic_zone()
    week_starts = [day - timedelta(days=day.weekday() + 7 * back)
                   for back in range(WEEKS_SHOWN - 1, -1, -1)]
    month_starts = _month_starts(day, MONTHS_SHOWN)
    weeks = [_instant(start, zone) for start in [*week_starts,
                                                  week_starts[-1] + timedelta(days=7)]]
    months = [_instant(start, zone) for start in [*month_starts, _next_month(month_starts[-1])]]
    week_labels = [f"{start:%d %b}" for start in week_starts]
    month_labels = [f"{start:%b %Y}" for start in month_starts]
    return [
        utilisation(weeks, week_labels),
        attendance_losses(months, month_labels),
        new_patients(months, month_labels),
        evaluations_to_care(months, month_labels),
        waitlist_fills(months, month_labels),
    ]


def utilisation(bounds: list[datetime], labels: list[str]) -> Figure:
    """Booked hours over open hours, per therapist per week (open hours: the weekly hours)."""
    therapists = queries.active_therapists()
    open_minutes: dict[int, int] = {}
    for row in db.session.execute(
        select(WorkingHours.therapist_id, WorkingHours.start_time, WorkingHours.end_time)
    ):
        open_minutes[row.therapist_id] = open_minutes.get(row.therapist_id, 0) + _minutes(
            row.start_time, row.end_time
        )
    bucket = _bucket(Appointment.start_at, bounds)
    booked: dict[tuple[int, int], int] = {}
    for row in db.session.execute(
        select(Appointment.therapist_id, bucket.label("bucket"),
               func.sum(Service.duration_minutes).label("minutes"))
        .join(Service, Service.id == Appointment.service_id)
        .where(Appointment.status != AppointmentStatus.CANCELLED,
               Appointment.start_at >= bounds[0], Appointment.start_at < bounds[-1])
        .group_by(Appointment.therapist_id, bucket)
    ):
        booked[(row.therapist_id, row.bucket)] = int(row.minutes or 0)
    series = []
    for therapist in therapists:
        week_open = open_minutes.get(therapist.id, 0)
        series.append((therapist.name, [
            round(100 * booked.get((therapist.id, index), 0) / week_open, 1) if week_open else 0
            for index in range(len(labels))
        ]))
    return Figure("Utilisation per therapist per week", "utilisation", labels, series, unit="%")


def attendance_losses(bounds: list[datetime], labels: list[str]) -> Figure:
    """No-shows, and cancellations within 24 hours of the start, per month."""
    bucket = _bucket(Appointment.start_at, bounds)
    # The cancellation's time is the row's last change; compared in Python per bucket as the
    # two databases subtract instants differently: only cancelled rows' two columns are read.
    no_shows = [0] * len(labels)
    for row in db.session.execute(
        select(bucket.label("bucket"), func.count().label("count"))
        .where(Appointment.status == AppointmentStatus.NO_SHOW,
               Appointment.start_at >= bounds[0], Appointment.start_at < bounds[-1])
        .group_by(bucket)
    ):
        no_shows[row.bucket] = row.count
    late = [0] * len(labels)
    for row in db.session.execute(
        select(bucket.label("bucket"), Appointment.start_at, Appointment.updated_at)
        .where(Appointment.status == AppointmentStatus.CANCELLED,
               Appointment.start_at >= bounds[0], Appointment.start_at < bounds[-1])
    ):
        if row.start_at - row.updated_at < LATE_CANCELLATION:
            late[row.bucket] += 1
    return Figure("No-shows and late cancellations per month", "losses", labels,
                  [("No-shows", no_shows), ("Late cancellations", late)])


def new_patients(bounds: list[datetime], labels: list[str]) -> Figure:
    bucket = _bucket(Patient.created_at, bounds)
    counts = [0] * len(labels)
    for row in db.session.execute(
        select(bucket.label("bucket"), func.count().label("count"))
        .where(Patient.created_at >= bounds[0], Patient.created_at < bounds[-1])
        .group_by(bucket)
    ):
        counts[row.bucket] = row.count
    return Figure("New patients per month", "patients", labels, [("New patients", counts)])


def evaluations_to_care(bounds: list[datetime], labels: list[str]) -> Figure:
    """Evaluations held each month, and those followed by a treatment for the same patient."""
    treatment, treatment_service = aliased(Appointment), aliased(Service)
    followed = exists().where(
        treatment.patient_id == Appointment.patient_id,
        treatment.start_at > Appointment.start_at,
        treatment.status != AppointmentStatus.CANCELLED,
        treatment_service.id == treatment.service_id,
        treatment_service.kind == ServiceKind.TREATMENT,
    )
    bucket = _bucket(Appointment.start_at, bounds)
    held, to_care = [0] * len(labels), [0] * len(labels)
    for row in db.session.execute(
        select(bucket.label("bucket"), func.count().label("held"),
               func.sum(case((followed, 1), else_=0)).label("to_care"))
        .join(Service, Service.id == Appointment.service_id)
        .where(Service.kind == ServiceKind.EVALUATION,
               Appointment.status.in_([AppointmentStatus.CONFIRMED,
                                       AppointmentStatus.COMPLETED]),
               Appointment.start_at >= bounds[0], Appointment.start_at < bounds[-1])
        .group_by(bucket)
    ):
        held[row.bucket], to_care[row.bucket] = row.held, int(row.to_care or 0)
    return Figure("Evaluations that led to a course of care", "evaluations", labels,
                  [("Evaluations", held), ("Followed by treatment", to_care)])


def waitlist_fills(bounds: list[datetime], labels: list[str]) -> Figure:
    """Per month of the offer: the freed times offered to waiting patients (one time offered to
    several counts once), those claimed, and the hours of the visits booked through them."""
    bucket = _bucket(WaitlistOffer.created_at, bounds)
    in_months = and_(WaitlistOffer.created_at >= bounds[0], WaitlistOffer.created_at < bounds[-1])
    times = (select(bucket.label("bucket"), WaitlistOffer.therapist_id, WaitlistOffer.start_at)
             .where(in_months).distinct().subquery())
    offered = [0] * len(labels)
    for row in db.session.execute(
        select(times.c.bucket, func.count().label("count")).group_by(times.c.bucket)
    ):
        offered[row.bucket] = row.count
    filled, hours = [0] * len(labels), [0.0] * len(labels)
    for row in db.session.execute(
        select(bucket.label("bucket"), func.count().label("count"),
               func.sum(Service.duration_minutes).label("minutes"))
        .join(Appointment, Appointment.id == WaitlistOffer.appointment_id)
        .join(Service, Service.id == Appointment.service_id)
        .where(WaitlistOffer.status == OfferStatus.CLAIMED, in_months)
        .group_by(bucket)
    ):
        filled[row.bucket] = row.count
        hours[row.bucket] = round(int(row.minutes or 0) / 60, 2)
    return Figure("Waitlist fills per month", "waitlist", labels,
                  [("Freed times offered", offered), ("Filled", filled),
                   ("Hours recovered", hours)])


def _bucket(column, bounds: list[datetime]):
    """Which of the periods between `bounds` the instant falls in (0, 1, ...)."""
    return case(*[(and_(column >= start, column < end), index)
                  for index, (start, end) in enumerate(pairwise(bounds))], else_=-1)


def _instant(day: date, zone) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def _month_starts(day: date, count: int) -> list[date]:
    starts = [day.replace(day=1)]
    for _ in range(count - 1):
        starts.insert(0, (starts[0] - timedelta(days=1)).replace(day=1))
    return starts


def _next_month(start: date) -> date:
    return (start + timedelta(days=32)).replace(day=1)


def _minutes(start: time, end: time) -> int:
    return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
