"""The staff API (`/api/v1/staff`): the back office's data for the clinic's own tools.

A request carries a staff login's personal token (`flask users token`) as
`Authorization: Bearer TOKEN`; the roles of the back office apply: a therapist sees only
their own schedule. No token, a wrong or revoked one, or a switched-off login: `401`; a role
that may not: `403`.
"""

from __future__ import annotations

from datetime import date
from functools import wraps
from typing import Literal

from flask import Blueprint, g, jsonify, request
from pydantic import BaseModel, ConfigDict, RootModel
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from booking import scheduling
from booking.api.operations import ApiError, operation
from booking.api.schemas import Day, Slug, StaffWaitlist, StaffWaitlistEntryOut
from booking.clinic.reference import clinic_zone
from booking.extensions import db
from booking.models import (
    Appointment,
    Service,
    StaffApiToken,
    StaffRole,
    StaffUser,
    Therapist,
    api_token_digest,
)
from booking.patients import health_forms
from booking.patients.details import Email, Notes, PersonName
from booking.rules.clinical import ClearanceDecision
from booking.scheduling import waitlist
from booking.scheduling.clearances import NotAllowedToClear, record_clearance
from booking.scheduling.therapist_time import local_day_bounds
from booking.web.requests import writing

staff_api = Blueprint("staff", __name__, url_prefix="/staff")

EVERY_ROLE = tuple(StaffRole)

_E401 = ("no valid staff token", None)
_E403 = ("this login's role may not", None)
_E422 = ("invalid input; `field` names it", None)


def staff_token_user() -> StaffUser:
    """The active login whose token the request carries, else a 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token and len(token) <= 200:
        user = db.session.scalars(
            select(StaffUser)
            .join(StaffApiToken, StaffApiToken.staff_user_id == StaffUser.id)
            .where(StaffApiToken.digest == api_token_digest(token))
        ).first()
        if user is not None and user.active:
            return user
    raise ApiError(401, "unauthorized", "send a staff API token: Authorization: Bearer TOKEN")


def staff_login(*roles: StaffRole):
    """A check for `operation(authenticate=...)`: the request's login, checked, becomes
    `g.staff`; a role outside `roles` gets a 403."""

    def check() -> None:
        user = staff_token_user()
        if user.role not in roles:
            raise ApiError(403, "forbidden", f"a {user.role} login may not do this")
        g.staff = user

    return check


def staff_only(*roles: StaffRole):
    """The request's login, checked, is `g.staff`; a role outside `roles` gets a 403."""

    def decorate(view):
        @wraps(view)
        def checked(*args, **kwargs):
            staff_login(*roles)()
            return view(*args, **kwargs)

        return checked

    return decorate


# --- the day's appointments ----------------------------------------------------------------


class StaffAppointmentsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: Day
    therapist: Slug | None = None


class PatientDetailsOut(BaseModel):
    name: str
    email: str
    phone: str
    date_of_birth: date | None
    guardian_name: str


class VisitFormStatusOut(BaseModel):
    """Where one of the visit's health forms stands; the answers are not part of this list."""

    form: str
    status: str  # missing | complete | needs_review


class StaffAppointmentOut(BaseModel):
    id: int
    status: str
    service: str
    therapist: str
    start: str
    end: str
    patient: PatientDetailsOut
    series_id: int | None
    forms: list[VisitFormStatusOut]


class StaffAppointmentList(RootModel[list[StaffAppointmentOut]]):
    pass


@operation(
    staff_api, "/appointments", "GET", summary="The day's appointments, with the patients",
    query=StaffAppointmentsQuery, staff_token=True,
    responses={200: ("the appointments, by start", StaffAppointmentList),
               401: _E401, 403: _E403, 422: _E422},
)
@staff_only(*EVERY_ROLE)
def day_appointments(query: StaffAppointmentsQuery):
    staff: StaffUser = g.staff
    zone = clinic_zone()
    start, end = local_day_bounds(query.date, query.date, zone)
    wanted = select(Appointment).options(
        joinedload(Appointment.service),
        joinedload(Appointment.therapist),
        joinedload(Appointment.patient),
    ).where(Appointment.start_at >= start, Appointment.start_at < end)
    if query.therapist is not None:
        therapist = db.session.scalars(
            select(Therapist).where(Therapist.slug == query.therapist)
        ).first()
        if therapist is None:
            raise ApiError(422, "unknown_therapist", f"there is no therapist {query.therapist!r}",
                           "therapist")
        wanted = wanted.where(Appointment.therapist_id == therapist.id)
    if staff.role == StaffRole.THERAPIST:
        if query.therapist is not None and query.therapist != staff.therapist.slug:
            raise ApiError(403, "forbidden", "a therapist sees only their own schedule",
                           "therapist")
        wanted = wanted.where(Appointment.therapist_id == staff.therapist_id)
    visits = db.session.scalars(wanted.order_by(Appointment.start_at, Appointment.id)).all()
    forms = health_forms.forms_of_visits(visits)
    return jsonify([_staff_appointment_out(visit, zone, forms[visit.id]) for visit in visits])


def _staff_appointment_out(visit: Appointment, zone, forms: list) -> dict:
    patient = visit.patient
    return StaffAppointmentOut(
        id=visit.id,
        status=visit.status,
        service=visit.service.slug,
        therapist=visit.therapist.slug,
        start=visit.start_at.astimezone(zone).isoformat(),
        end=visit.end_at.astimezone(zone).isoformat(),
        # The details as given for this booking (the record keeps its own).
        patient=PatientDetailsOut(
            name=patient.name,
            email=patient.email,
            phone=visit.patient_phone,
            date_of_birth=visit.patient_date_of_birth,
            guardian_name=visit.patient_guardian_name,
        ),
        series_id=visit.series_id,
        forms=[VisitFormStatusOut(form=each.form.slug, status=each.status) for each in forms],
    ).model_dump(mode="json")


# --- clearance decisions -------------------------------------------------------------------


class ClearancePatient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PersonName
    email: Email


class ClearanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient: ClearancePatient
    service: Slug
    decision: Literal["cleared", "not_cleared"]
    note: Notes = ""


class ClearanceOut(BaseModel):
    id: int
    service: str
    decision: str
    decided_by: str
    decided_at: str


@operation(
    staff_api, "/clearances", "POST",
    summary="Record whether a patient is cleared for a service that needs it (dry needling)",
    body=ClearanceRequest, staff_token=True, authenticate=staff_login(*EVERY_ROLE),
    responses={201: ("recorded, with who decided and when", ClearanceOut),
               401: _E401, 403: ("only a therapist who offers the service, or an admin", None),
               422: ("invalid input, an unknown patient or service; `field` names it", None)},
)
@writing
def record_clearance_decision(body: ClearanceRequest):
    staff: StaffUser = g.staff
    service = scheduling.bookable_service(body.service)
    if not service.requires_clearance:
        raise ApiError(422, "clearance_not_needed",
                       f"{service.name} is booked without a clearance", "service")
    patient = scheduling.find_patient(body.patient.email, body.patient.name)
    if patient is None:
        raise ApiError(422, "unknown_patient",
                       "patient: no patient with this name and email has visited", "patient")
    try:
        clearance = record_clearance(
            patient, service, ClearanceDecision(body.decision), note=body.note, by=staff
        )
    except NotAllowedToClear as refusal:
        raise ApiError(403, "forbidden", str(refusal)) from None
    answer = ClearanceOut(
        id=clearance.id,
        service=service.slug,
        decision=clearance.decision,
        decided_by=clearance.decided_by,
        decided_at=clearance.decided_at.astimezone(clinic_zone()).isoformat(),
    )
    return jsonify(answer.model_dump(mode="json")), 201


# --- the waitlist --------------------------------------------------------------------------


class StaffWaitlistQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: Slug | None = None


@operation(
    staff_api, "/waitlist", "GET", summary="The waiting entries, oldest first",
    query=StaffWaitlistQuery, staff_token=True,
    responses={200: ("the entries, with their offers", StaffWaitlist),
               401: _E401, 403: _E403, 422: _E422},
)
@staff_only(*EVERY_ROLE)
def staff_waitlist(query: StaffWaitlistQuery):
    staff: StaffUser = g.staff
    service = None
    if query.service is not None:
        service = db.session.scalars(select(Service).where(Service.slug == query.service)).first()
        if service is None:
            raise ApiError(422, "unknown_service", f"there is no service {query.service!r}",
                           "service")
    entries = waitlist.waiting_entries(service)
    if staff.role == StaffRole.THERAPIST:
        # A therapist sees those waiting for them, or for anyone offering what they offer.
        offered = {offered.id for offered in staff.therapist.services}
        entries = [
            entry for entry in entries
            if entry.therapist_id == staff.therapist_id
            or (entry.therapist_id is None and entry.service_id in offered)
        ]
    zone = clinic_zone()
    return jsonify([StaffWaitlistEntryOut.of_entry(entry, zone) for entry in entries])
