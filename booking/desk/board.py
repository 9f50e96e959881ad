"""The board: the whole clinic's day or week as a resource time grid (therapists as columns),
drawn in the browser by EventCalendar from the JSON here, with drag to move, click to book
and a move dialog for the keyboard. The server-rendered grid stays on the page for a browser
without JavaScript.

Every move goes through `scheduling`; a refused one answers with the rule that refused it
(taken, outside hours, time off, notice, window, evaluation, clearance...) and whether staff
may override it with a reason, so the board can put the visit back and say why.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pydantic
from flask import Blueprint, abort, jsonify, render_template, request
from flask_login import current_user
from sqlalchemy import select

from booking import scheduling
from booking.clinic.reference import clinic_zone, reference_data
from booking.desk import access, queries
from booking.desk.access import DESK, EVERYONE, allowed
from booking.desk.calendar_grid import grid_of, week_days
from booking.desk.pages import clearance_words, today
from booking.extensions import db
from booking.models import (
    LONGEST_VISIT,
    Appointment,
    AppointmentStatus,
    Patient,
    Service,
    Therapist,
    utc_now,
)
from booking.patients.health_forms import form_statuses
from booking.rules import health_forms as health_form_rules
from booking.rules.health_forms import forms_summary
from booking.scheduling.clearances import decisions_in_force
from booking.scheduling.therapist_time import local_day_bounds
from booking.web.requests import writing

board = Blueprint("board", __name__)

# Colours on the board are classes (desk.css), one per service by its place in the clinic
# file: no inline styles, which the Content-Security-Policy refuses.
SERVICE_COLOURS = 8
# Refusals staff may override with a reason; the others (a taken time, outside the hours,
# time off) are facts an override cannot change.
OVERRIDABLE = {"too_soon", "too_far", "evaluation_required", "clearance_required"}
# The refusal's rule, as the board names it.
RULE_NAMES = {
    "taken": "taken",
    "outside_hours": "outside hours",
    "time_off": "time off",
    "too_soon": "notice",
    "too_far": "window",
    "off_grid": "start times",
    "evaluation_required": "evaluation",
    "clearance_required": "clearance",
}
FORMS_WORDS = {
    health_form_rules.MISSING: "forms missing",
    health_form_rules.NEEDS_REVIEW: "forms to review",
    health_form_rules.COMPLETE: "forms complete",
}


@board.get("/board")
@allowed(*EVERYONE)
def board_page():
    shown = _day_asked()
    week = request.args.get("view") == "week"
    discipline = request.args.get("discipline", "").strip()
    therapists = _therapists(discipline)
    days = week_days(shown) if week else [shown]
    grid = grid_of(queries.calendar_columns(therapists, days, clinic_zone()))
    services = _services()
    step = 7 if week else 1
    return render_template(
        "desk/board.html",
        grid=grid,
        shown=shown,
        today=today(),
        week=week,
        days=days,
        discipline=discipline,
        disciplines=_disciplines(),
        services=services,
        can_move=not access.is_therapist(),
        previous=(shown - timedelta(days=step)).isoformat(),
        following=(shown + timedelta(days=step)).isoformat(),
    )


@board.get("/board/events")
@allowed(*EVERYONE)
def board_events():
    """Therapists (resources) and visits (events) from `start` to `end` (dates, end excluded),
    in clinic wall-clock time: what EventCalendar draws."""
    first = _date_argument("start")
    last = _date_argument("end") - timedelta(days=1)
    if last < first or (last - first).days > 42:
        abort(400, description="end: must be after start, at most six weeks on")
    # The clinic's services and therapists as each process keeps them: no query of their own.
    reference = reference_data()
    zone = reference.clinic.zone
    therapists = _therapists_of(reference, request.args.get("discipline", "").strip())
    services = {service.id: service for service in reference.services}
    colours = {service_id: f"service-colour-{index % SERVICE_COLOURS}"
               for index, service_id in enumerate(services)}
    window_start, window_end = local_day_bounds(first, last, zone)
    on_board = (
        Appointment.therapist_id.in_([therapist.id for therapist in therapists]),
        Appointment.status != AppointmentStatus.CANCELLED,
        Appointment.start_at < window_end,
        Appointment.end_at > window_start,
        # No visit is longer: this bound lets the index on the start skip the past.
        Appointment.start_at > window_start - LONGEST_VISIT,
    )
    # Columns as plain tuples, not objects (and run as Core: no ORM result to build): a full
    # day of a large clinic is hundreds of visits.
    visits = db.session.connection().execute(
        select(Appointment.id, Appointment.start_at, Appointment.end_at, Appointment.status,
               Appointment.arrived_at.is_not(None), Appointment.service_id,
               Appointment.patient_id, Appointment.series_id,
               *scheduling.series_place_columns(), Therapist.slug,
               Patient.name, Service.name)
        .join(Therapist, Therapist.id == Appointment.therapist_id)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Service, Service.id == Appointment.service_id)
        .where(*on_board)
        .order_by(Appointment.start_at)
    ).tuples().all() if therapists else []
    details = _visit_details(visits, on_board, services)
    now = utc_now()
    movable = not access.is_therapist()
    # Visits start and end on the clinic's few slot times: each is turned to wall clock once.
    walls: dict[datetime, str] = {}
    events = []
    for (visit_id, start_at, end_at, status, arrived, service_id, patient_id, series_id,
         series_number, series_visits, therapist, patient, service) in visits:
        confirmed = status == AppointmentStatus.CONFIRMED
        shown_status = "arrived" if confirmed and arrived else status.replace("_", "-")
        if start_at not in walls:
            walls[start_at] = _wall(start_at, zone)
        if end_at not in walls:
            walls[end_at] = _wall(end_at, zone)
        shown = {
            "id": str(visit_id),
            "resourceId": therapist,
            "start": walls[start_at],
            "end": walls[end_at],
            "title": patient,
            "classNames": [colours.get(service_id, "service-colour-0"),
                           f"visit-{shown_status}"],
            "extendedProps": {"service": service, "status": shown_status,
                              **details(patient_id, service_id)},
        }
        # Editable by the board's own setting (the desk's: yes; a therapist's: no) unless said.
        if movable and not (confirmed and start_at > now):
            shown["editable"] = False
        if series_visits:
            shown["extendedProps"]["series"] = str(
                scheduling.SeriesPlace(series_id, series_number, series_visits))
        events.append(shown)
    # The time already past on the board is greyed (and offers nothing to click).
    now_local = now.astimezone(zone).replace(tzinfo=None)
    if datetime.combine(first, datetime.min.time()) < now_local:
        events.append({
            "id": "past", "start": _wall(datetime.combine(first, datetime.min.time())),
            "end": _wall(min(now_local, datetime.combine(last + timedelta(days=1),
                                                         datetime.min.time()))),
            "display": "background", "classNames": ["board-past"],
            "resourceIds": [therapist.slug for therapist in therapists],
        })
    return jsonify({
        "resources": [{"id": therapist.slug, "title": therapist.name} for therapist in therapists],
        "events": events,
    })


def _visit_details(visits, on_board, services: dict):
    """Where the visit's forms stand and, for a service that needs it, the patient's clearance,
    by patient and service (nothing said of what the service does not ask for). Read for all
    the visits at once (two queries, which find the visits' patients themselves) and worded
    once per patient and service."""
    asked = {service_id for service_id in {visit[5] for visit in visits}
             if services[service_id].forms or services[service_id].requires_clearance}
    patients = select(Appointment.patient_id).where(*on_board)
    forms = form_statuses(patients, {slug for service_id in asked
                                     for slug in services[service_id].forms})
    clearances = decisions_in_force(patients, [service_id for service_id in asked
                                               if services[service_id].requires_clearance])
    nothing_asked: dict = {}
    worded: dict[tuple[int, int], dict] = {}

    def details(patient_id: int, service_id: int) -> dict:
        if service_id not in asked:
            return nothing_asked
        key = (patient_id, service_id)
        if key not in worded:
            service = services[service_id]
            stand = forms_summary(forms.of(patient_id, service.forms))
            worded[key] = {"forms": FORMS_WORDS[stand]} if stand else {}
            if service.requires_clearance:
                worded[key]["clearance"] = clearance_words(clearances.get(key))
        return worded[key]

    return details


def _wall(moment: datetime, zone=None) -> str:
    """A clinic wall-clock time without an offset (2026-12-07T14:30): the board shows it as it
    is."""
    if zone is not None:
        moment = moment.astimezone(zone)
    return moment.isoformat(timespec="minutes")[:16]


class BoardMove(pydantic.BaseModel):
    """A move asked for on the board: a clinic wall-clock start and a therapist."""

    model_config = pydantic.ConfigDict(extra="forbid")

    start: datetime
    therapist: str = pydantic.Field(min_length=1, max_length=120)
    override_reason: str = pydantic.Field("", max_length=500)

    @pydantic.field_validator("start")
    @classmethod
    def _wall_clock(cls, start: datetime) -> datetime:
        if start.tzinfo is not None:
            raise ValueError("must be a clinic time without an offset, like 2026-12-07T14:30")
        return start


@board.post("/board/appointments/<int:appointment_id>/move")
@allowed(*DESK)
@writing
def move(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    try:
        asked = BoardMove.model_validate(request.get_json(silent=True) or {})
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        return _refusal(422, "invalid", field, f"{field}: {problem['msg']}", overridable=False)
    reason = asked.override_reason.strip()
    try:
        scheduling.reschedule_appointment(
            visit,
            asked.start.replace(tzinfo=clinic_zone()),
            therapist_slug=asked.therapist,
            changed_by=current_user.actor,
            override=scheduling.StaffOverride(current_user.actor, reason) if reason else None,
        )
    except scheduling.SchedulingError as error:
        rule = error.reason.value if isinstance(error, scheduling.SlotUnavailable) else error.code
        return _refusal(error.status, error.code, RULE_NAMES.get(rule, rule), error.message,
                        overridable=not reason and rule in OVERRIDABLE)
    return jsonify({"moved": visit.id, "therapist": visit.therapist.slug,
                    "start": _wall(visit.start_at.astimezone(clinic_zone()))})


def _refusal(status: int, code: str, rule: str, message: str, *, overridable: bool):
    if overridable:
        message += "; staff may override this with a reason"
    return jsonify({"error": {"code": code, "rule": rule, "message": message,
                              "overridable": overridable}}), status


def _therapists_of(reference, discipline: str) -> list:
    """The therapists the board shows this login (as _therapists), from the clinic's reference
    data each process keeps: no query."""
    only = access.own_therapist_id()
    return [therapist for therapist in reference.therapists
            if therapist.active and (only is None or therapist.id == only)
            and (not discipline or discipline in therapist.disciplines)]


def _therapists(discipline: str) -> list[Therapist]:
    therapists = queries.active_therapists(access.own_therapist_id())
    if discipline:
        therapists = [t for t in therapists if discipline in (t.disciplines or [])]
    return therapists


def _disciplines() -> list[str]:
    found = set()
    for therapist in queries.active_therapists():
        found.update(therapist.disciplines or [])
    return sorted(found)


def _services() -> list[tuple[str, int]]:
    services = db.session.scalars(
        select(Service).order_by(Service.position, Service.id)
    ).all()
    return [(service.name, index % SERVICE_COLOURS) for index, service in enumerate(services)
            if service.active]


def _day_asked() -> date:
    return _date_argument("day", default=today())


def _date_argument(name: str, default: date | None = None) -> date:
    written = request.args.get(name, "").strip()[:10]
    if not written and default is not None:
        return default
    try:
        return date.fromisoformat(written)
    except ValueError:
        abort(400, description=f"{name}: must be a date like 2026-12-01")
