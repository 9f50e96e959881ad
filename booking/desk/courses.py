"""Courses of care, as the front desk books and keeps them: a weekly series of visits previewed
as a table (each visit free, or why not and the nearest alternatives to pick), booked all or
nothing; then the course's page (visits done, to come, cancelled; the insurance authorisation
and a warning as it runs out), moving a visit and every later one, cancelling the rest and
adding visits to the end. Every change goes through `scheduling`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from booking import scheduling
from booking.clinic.reference import clinic_zone
from booking.desk import access, queries
from booking.desk.access import DESK, EVERYONE, allowed
from booking.desk.appointments import explain_refusal, prefill_booking
from booking.desk.forms import (
    WEEKDAY_NAMES,
    AddVisitsForm,
    AuthorisationForm,
    CancelFollowingForm,
    CourseForm,
    MoveFollowingForm,
    choices,
    patient_on_record,
)
from booking.desk.pages import today
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    Patient,
    Service,
    utc_now,
)
from booking.rules.availability import SlotRefusal
from booking.rules.series import WEEKDAYS, authorisation_standing, visits_until
from booking.web.requests import writing

courses = Blueprint("courses", __name__)

# Why a visit of a course is not free, in the desk's words; the override can waive the first two.
REFUSAL_WORDS = {
    SlotRefusal.TOO_SOON: "too soon (inside the minimum notice)",
    SlotRefusal.TOO_FAR: "too far ahead (beyond the booking window)",
    SlotRefusal.OFF_GRID: "between two start times",
    SlotRefusal.OUTSIDE_HOURS: "outside the therapist's hours",
    SlotRefusal.TIME_OFF: "the therapist is away",
    SlotRefusal.TAKEN: "taken",
}
OVERRIDABLE = {SlotRefusal.TOO_SOON, SlotRefusal.TOO_FAR}
PICK_PREFIX = "visit-"


# --- booking a course ------------------------------------------------------------------------


@courses.route("/courses/new", methods=["GET", "POST"])
@allowed(*DESK)
def new_course():
    if request.method == "GET":
        page = _CoursePage()
        prefill_booking(page.form)
        return page.shown()
    if request.form.get("action") == "book":
        return _book_posted()
    return _preview_posted()


def _preview_posted():
    page = _CoursePage()
    asked = page.asked()
    if asked is None:
        return page.shown(422)
    try:
        page.plan = scheduling.preview_series(**asked.preview_arguments())
    except scheduling.SchedulingError as error:
        page.refused(error, asked)
        return page.shown(error.status)
    return page.shown()


@writing
def _book_posted():
    page = _CoursePage()
    asked = page.asked()
    if asked is None:
        return page.shown(422)
    form = page.form
    try:
        booked = scheduling.book_series(
            **asked.preview_arguments(),
            notes=(form.notes.data or "").strip(),
            booked_by=current_user.actor,
            authorised_visits=form.authorised_visits.data,
            authorised_until=form.authorised_until.data,
        )
    except scheduling.SchedulingError as error:
        page.refused(error, asked)
        return page.shown(error.status)
    flash(
        f"Booked a course of {len(booked.appointments)} visits of {booked.series.service.name} "
        f"for {booked.series.patient.name}; one confirmation lists them all."
    )
    return redirect(url_for(".course", series_id=booked.series.id), 303)


@dataclass
class _Asked:
    """The course as the form asks for it, read and checked."""

    service: Service
    first: datetime
    weekdays: list[int]
    count: int
    therapist: str
    patient: scheduling.PatientDetails
    override: scheduling.StaffOverride | None
    chosen: dict[int, datetime]

    def preview_arguments(self) -> dict:
        return {
            "service": self.service, "first": self.first, "weekdays": self.weekdays,
            "count": self.count, "patient": self.patient, "therapist_slug": self.therapist,
            "override": self.override, "chosen": self.chosen,
        }


class _CoursePage:
    """The course form with its choices, the patient search, and the preview once asked."""

    def __init__(self):
        self.form = CourseForm()
        services = db.session.scalars(
            select(Service)
            .where(Service.active.is_(True), Service.max_series_visits > 0)
            .order_by(Service.position)
        ).all()
        self.form.service.choices = choices((service.slug, service.name) for service in services)
        self.form.therapist.choices = choices(
            (therapist.slug, therapist.name) for therapist in queries.active_therapists()
        )
        self.search = request.args.get("q", "").strip()
        self.found = queries.find_patients(self.search, limit=20) if self.search else []
        patient = patient_on_record(self.form.patient_id.data or request.args.get("patient", ""))
        if patient is not None:
            self.form.patient_id.data = str(patient.id)
        self.chosen_patient: Patient | None = patient
        self.plan: scheduling.SeriesPlan | None = None
        self.picks: dict[int, datetime] = {}
        self.pick_errors: list[str] = []
        self.note = ""

    def asked(self) -> _Asked | None:
        """The course asked for; None when the form is refused (its fields say why)."""
        form = self.form
        valid = form.validate_on_submit()
        self.picks = self._read_picks()
        if not valid or self.pick_errors:
            return None
        service = scheduling.bookable_service(form.service.data)
        zone = clinic_zone()
        first = datetime.combine(form.day.data, form.time.data, tzinfo=zone)
        weekdays = scheduling.weekday_numbers(form.weekdays.data or [], first)
        limit = service.max_series_visits
        count = form.count.data
        if count is None:
            count = visits_until(first, weekdays, form.until.data, zone, limit=limit + 1)
            if count > limit:
                count = limit
                self.note = (
                    f"The last day given holds more visits than a course of {service.name} "
                    f"may have: the course is its first {limit} visits."
                )
            if count < 2:
                form.until.errors = [
                    *form.until.errors,
                    f"The weekdays give {count} visit(s) by then; a course has at least 2.",
                ]
                return None
        elif count > limit:
            form.count.errors = [
                *form.count.errors, f"A course of {service.name} has at most {limit} visits."
            ]
            return None
        if any(index >= count for index in self.picks):
            self.pick_errors.append("An alternative was picked for a visit the course no "
                                    "longer has: preview again.")
            return None
        reason = (form.override_reason.data or "").strip()
        return _Asked(
            service=service, first=first, weekdays=weekdays, count=count,
            therapist=form.therapist.data, patient=form.patient_details,
            override=scheduling.StaffOverride(current_user.actor, reason) if reason else None,
            chosen=self.picks,
        )

    def _read_picks(self) -> dict[int, datetime]:
        """The alternatives picked in the preview: `visit-N` = the start chosen for visit N."""
        picks = {}
        for name, value in request.form.items():
            if not name.startswith(PICK_PREFIX) or not value:
                continue
            number = name.removeprefix(PICK_PREFIX)
            try:
                start = datetime.fromisoformat(value)
            except ValueError:
                start = None
            if not number.isdigit() or not 1 <= int(number) <= 99 or start is None \
                    or start.utcoffset() is None:
                self.pick_errors.append(f"{name}: choose one of the times offered.")
                continue
            picks[int(number) - 1] = start
        return picks

    def refused(self, error: scheduling.SchedulingError, asked: _Asked) -> None:
        """A refusal shown where it belongs: a series' conflicts in the preview table (with
        the alternatives to pick), anything else under its field."""
        if isinstance(error, scheduling.SeriesUnavailable):
            self.plan = error.plan
            can_override = asked.override is None and all(
                visit.reason in OVERRIDABLE for visit in error.plan.conflicts
            )
            self.pick_errors.append(
                "Nothing was booked: " + _conflicts_in_words(error.plan.conflicts)
                + (". Give an override reason to book inside the notice or beyond the "
                   "window." if can_override else
                   ". Pick an alternative for each, or change the course.")
            )
            return
        form = self.form
        if error.field == "repeat.count":
            form.count.errors = [*form.count.errors, error.message]
            return
        explain_refusal(form, error, can_override=asked.override is None)

    def shown(self, status: int = 200):
        return render_template(
            "desk/course_new.html", form=self.form, search=self.search, found=self.found,
            chosen=self.chosen_patient, plan=self.plan, picks=self.picks,
            pick_errors=self.pick_errors, note=self.note, words=REFUSAL_WORDS,
            pick_prefix=PICK_PREFIX, weekdays=WEEKDAYS,
        ), status


def _conflicts_in_words(conflicts) -> str:
    zone = clinic_zone()
    return "; ".join(
        f"{visit.start.astimezone(zone):%a %d %b %H:%M} is {REFUSAL_WORDS[visit.reason]}"
        for visit in conflicts
    )


# --- the course ------------------------------------------------------------------------------


@courses.get("/courses/<int:series_id>")
@allowed(*EVERYONE)
def course(series_id: int):
    return _course_page(_series_in_reach(series_id))


def _series_in_reach(series_id: int) -> AppointmentSeries:
    series = db.session.get(AppointmentSeries, series_id)
    if access.is_therapist() and (series is None
                                  or series.therapist_id != current_user.therapist_id):
        abort(403)
    if series is None:
        abort(404)
    return series


@dataclass
class CourseVisits:
    """A course's visits as the desk counts them."""

    done: list[Appointment]
    missed: list[Appointment]
    unrecorded: list[Appointment]  # started, attendance not yet recorded
    to_come: list[Appointment]
    cancelled: list[Appointment]


def course_visits(visits: list[Appointment], now: datetime) -> CourseVisits:
    sorted_out = CourseVisits([], [], [], [], [])
    for visit in visits:
        if visit.status == AppointmentStatus.COMPLETED:
            sorted_out.done.append(visit)
        elif visit.status == AppointmentStatus.NO_SHOW:
            sorted_out.missed.append(visit)
        elif visit.status == AppointmentStatus.CANCELLED:
            sorted_out.cancelled.append(visit)
        elif visit.start_at > now:
            sorted_out.to_come.append(visit)
        else:
            sorted_out.unrecorded.append(visit)
    return sorted_out


def _course_page(series: AppointmentSeries, *, move_form=None, cancel_form=None,
                 add_form=None, authorisation_form=None, problems=(), status=200):
    now = utc_now()
    visits = scheduling.series_visits(series)
    sorted_out = course_visits(visits, now)
    standing = authorisation_standing(
        series.authorised_visits, series.authorised_until,
        visits_done=len(sorted_out.done), visits_to_come=len(sorted_out.to_come),
        today=today(),
    )
    upcoming = choices(
        (str(visit.id), f"{visit.start_at.astimezone(clinic_zone()):%a %d %b %Y %H:%M}")
        for visit in sorted_out.to_come
    )
    move_form = move_form or MoveFollowingForm(formdata=None)
    cancel_form = cancel_form or CancelFollowingForm(formdata=None)
    move_form.visit.choices = cancel_form.visit.choices = upcoming
    if authorisation_form is None:
        authorisation_form = AuthorisationForm(formdata=None)
        authorisation_form.authorised_visits.data = series.authorised_visits
        authorisation_form.authorised_until.data = series.authorised_until
    live = [visit for visit in visits if visit.is_live]
    return render_template(
        "desk/course.html",
        series=series,
        visits=visits,
        numbers={visit.id: number for number, visit in enumerate(live, start=1)},
        sorted_out=sorted_out,
        standing=standing,
        now=now,
        can_change=not access.is_therapist(),
        move_form=move_form,
        cancel_form=cancel_form,
        add_form=add_form or AddVisitsForm(formdata=None),
        authorisation_form=authorisation_form,
        problems=problems,
        weekday_names=[WEEKDAY_NAMES[WEEKDAYS.index(name)] for name in series.weekdays],
    ), status


def _visit_of(series: AppointmentSeries, field) -> Appointment | None:
    """The course's visit a form names by id, or None (the field says why)."""
    written = field.data or ""
    visit = db.session.get(Appointment, int(written)) if written.isdigit() \
        and len(written) < 12 else None
    if visit is None or visit.series_id != series.id:
        field.errors = [*field.errors, "Choose one of the course's visits to come."]
        return None
    return visit


def _override(form) -> scheduling.StaffOverride | None:
    reason = (form.override_reason.data or "").strip()
    return scheduling.StaffOverride(current_user.actor, reason) if reason else None


@courses.post("/courses/<int:series_id>/move-following")
@allowed(*DESK)
@writing
def move_following(series_id: int):
    series = _series_in_reach(series_id)
    form = MoveFollowingForm()
    if not form.validate_on_submit() or (visit := _visit_of(series, form.visit)) is None:
        return _course_page(series, move_form=form, status=422)
    try:
        moved = scheduling.move_following(
            visit, WEEKDAYS.index(form.weekday.data), form.time.data,
            changed_by=current_user.actor, override=_override(form),
        )
    except scheduling.SeriesUnavailable as error:
        return _course_page(series, move_form=form, status=error.status, problems=[
            "Nothing was moved: " + _conflicts_in_words(error.plan.conflicts) + "."
        ])
    except scheduling.SchedulingError as error:
        explain_refusal(form, error, can_override=not form.override_reason.data)
        return _course_page(series, move_form=form, status=error.status)
    flash(f"Moved {len(moved)} visit(s); one message tells the patient.")
    return redirect(url_for(".course", series_id=series.id), 303)


@courses.post("/courses/<int:series_id>/cancel-following")
@allowed(*DESK)
@writing
def cancel_following(series_id: int):
    series = _series_in_reach(series_id)
    form = CancelFollowingForm()
    if not form.validate_on_submit() or (visit := _visit_of(series, form.visit)) is None:
        return _course_page(series, cancel_form=form, status=422)
    try:
        cancelled = scheduling.cancel_following(
            visit, cancelled_by=current_user.actor, reason=form.reason.data.strip()
        )
    except scheduling.SchedulingError as error:
        form.visit.errors = [*form.visit.errors, error.message]
        return _course_page(series, cancel_form=form, status=error.status)
    flash(f"Cancelled {len(cancelled)} visit(s); one message tells the patient.")
    return redirect(url_for(".course", series_id=series.id), 303)


@courses.post("/courses/<int:series_id>/add-visits")
@allowed(*DESK)
@writing
def add_visits(series_id: int):
    series = _series_in_reach(series_id)
    form = AddVisitsForm()
    if not form.validate_on_submit():
        return _course_page(series, add_form=form, status=422)
    try:
        added = scheduling.add_visits(
            series, form.count.data, booked_by=current_user.actor, override=_override(form)
        )
    except scheduling.SeriesUnavailable as error:
        return _course_page(series, add_form=form, status=error.status, problems=[
            "Nothing was added: " + _conflicts_in_words(error.plan.conflicts) + "."
        ])
    except scheduling.SchedulingError as error:
        form.count.errors = [*form.count.errors, error.message]
        return _course_page(series, add_form=form, status=error.status)
    flash(f"Added {len(added)} visit(s) to the course; the patient is sent the whole course.")
    return redirect(url_for(".course", series_id=series.id), 303)


@courses.post("/courses/<int:series_id>/authorisation")
@allowed(*DESK)
@writing
def authorisation(series_id: int):
    series = _series_in_reach(series_id)
    form = AuthorisationForm()
    if not form.validate_on_submit():
        return _course_page(series, authorisation_form=form, status=422)
    scheduling.set_authorisation(
        series, form.authorised_visits.data, form.authorised_until.data,
        changed_by=current_user.actor,
    )
    flash("Authorisation saved.")
    return redirect(url_for(".course", series_id=series.id), 303)
