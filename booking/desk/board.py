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
from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from booking import scheduling
from booking.clinic.reference import clinic_zone
from booking.desk import access, queries
from booking.desk.access import DESK, EVERYONE, allowed
from booking.desk.calendar_grid import grid_of, week_days
from booking.desk.pages import today
from booking.extensions import db
from booking.models import (
    Appointment,
    AppointmentStatus,
    Patient,
    Service,
    Therapist,
    utc_now,
)
from booking.patients.health_forms import forms_where_they_stand
from booking.rules import health_forms as health_form_rules
from booking.rules.clinical import ClearanceDecision
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
# As desk/_clearance.html's decision_words says them.
CLEARANCE_WORDS = {
    ClearanceDecision.CLEARED: "cleared",
    ClearanceDecision.NOT_CLEARED: "not cleared",
    None: "no decision yet",
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
    zone = clinic_zone()
    therapists = _therapists(request.args.get("discipline", "").strip())
    window_start, window_end = local_day_bounds(first, last, zone)
    services = {service.id: service for service in db.session.execute(
        select(Service.id, Service.forms, Service.requires_clearance)
        .order_by(Service.position, Service.id))}
    colours = {service_id: index % SERVICE_COLOURS for index, service_id in enumerate(services)}
    now = utc_now()
    movable = not access.is_therapist()
    # Columns, not objects: a full day of a large clinic is hundreds of visits.
    visits = db.session.execute(
        select(Appointment.id, Appointment.start_at, Appointment.end_at, Appointment.status,
               Appointment.arrived_at, Appointment.service_id, Appointment.patient_id,
               Appointment.series_id, Therapist.slug,
               Patient.name.label("patient"), Service.name.label("service"))
        .join(Therapist, Therapist.id == Appointment.therapist_id)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Service, Service.id == Appointment.service_id)
        .where(
            Appointment.therapist_id.in_([therapist.id for therapist in therapists]),
            Appointment.status != AppointmentStatus.CANCELLED,
            Appointment.start_at < window_end,
            Appointment.end_at > window_start,
            # No visit lasts a day: this bound lets the index on the start skip the past.
            Appointment.start_at > window_start - timedelta(days=1),
        )
        .order_by(Appointment.start_at)
    ).all() if therapists else []
    # What the visit's details say beyond its time, each read for all the visits at once.
    details = _visit_details(visits, services)
    visits_address = url_for("desk.appointments.appointment", appointment_id=0)[:-2]
    events = [_event(visit, zone, colours, now, movable, visits_address, details[visit.id])
              for visit in visits]
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


def _visit_details(visits, services: dict) -> dict[int, dict]:
    """Each visit's place in its series, where its forms stand and, for a service that needs
    it, the patient's clearance: three or four queries for any number of visits."""
    places = queries.series_places(visit.series_id for visit in visits)
    forms = forms_where_they_stand(
        (visit.id, visit.patient_id, services[visit.service_id].forms or ()) for visit in visits
    )
    clearances = decisions_in_force(
        (visit.patient_id, visit.service_id) for visit in visits
        if services[visit.service_id].requires_clearance
    )
    found = {}
    for visit in visits:
        place = places.get(visit.id)
        forms_stand = forms_summary(each.status for each in forms[visit.id])
        found[visit.id] = {
            "series": str(place) if place else "",
            "forms": FORMS_WORDS[forms_stand] if forms_stand else "",
            "clearance": CLEARANCE_WORDS[clearances[(visit.patient_id, visit.service_id)]]
            if services[visit.service_id].requires_clearance else "",
        }
    return found


def _event(visit, zone, colours: dict, now: datetime, movable: bool,
           visits_address: str, details: dict) -> dict:
    status = "arrived" if visit.status == AppointmentStatus.CONFIRMED and visit.arrived_at \
        else str(visit.status)
    return {
        "id": str(visit.id),
        "resourceId": visit.slug,
        "start": _wall(visit.start_at, zone),
        "end": _wall(visit.end_at, zone),
        "title": visit.patient,
        "editable": movable and visit.status == AppointmentStatus.CONFIRMED
        and visit.start_at > now,
        "classNames": [f"service-colour-{colours.get(visit.service_id, 0)}",
                       f"visit-{status.replace('_', '-')}"],
        "extendedProps": {
            "service": visit.service,
            "status": status.replace("_", "-"),
            "url": f"{visits_address}/{visit.id}",
            **details,
        },
    }


def _wall(moment: datetime, zone=None) -> str:
    """A clinic wall-clock time without an offset: the board shows it as it is."""
    if zone is not None:
        moment = moment.astimezone(zone)
    return f"{moment:%Y-%m-%dT%H:%M}"


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
