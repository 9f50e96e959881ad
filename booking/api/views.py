"""The API's routes: parse (the operation's models), look up or act through scheduling, answer.

Errors leave as {"error": {"code", "message", "field"}} with a 4xx status.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from booking import scheduling
from booking.api.openapi import openapi_document
from booking.api.operations import ApiError, operation
from booking.api.schemas import (
    AppointmentOut,
    AppointmentRequest,
    AvailabilityOut,
    AvailabilityQuery,
    RescheduleRequest,
    ServiceList,
    ServiceOut,
    TherapistList,
    TherapistOut,
    TherapistQuery,
)
from booking.clinic.reference import (
    ClinicNotConfigured,
    ServiceFacts,
    TherapistFacts,
    clinic_zone,
    current_clinic,
    reference_data,
    zone_named,
)
from booking.database import hold_write_lock
from booking.extensions import db, limiter
from booking.models import Appointment
from booking.patients.manage_links import appointment_for_token, manage_token_for
from booking.scheduling import idempotency
from booking.web.requests import show_problems_with

api = Blueprint("api", __name__)

_NOT_FOUND = (404, "not_found", "no appointment with that id and token")


def _limit(setting: str):
    return limiter.limit(lambda: current_app.config[setting])


_READ = (_limit("RATE_LIMIT_READ"),)
_BOOK = (_limit("RATE_LIMIT_BOOKING"),)
_MANAGE = (_limit("RATE_LIMIT_MANAGE"),)

_E422 = ("invalid input; `field` names it", None)
_E409 = ("the slot is not offered: taken, outside hours, too soon or too far ahead", None)
_E404 = ("no appointment with that id and token", None)


# --- reading -------------------------------------------------------------------------------


@operation(
    api, "/services", "GET", summary="The services a patient can book",
    responses={200: ("services", ServiceList)}, decorators=_READ,
)
def list_services():
    services = [service for service in reference_data().services if service.active]
    return jsonify([_service_out(service).model_dump(mode="json") for service in services])


@operation(
    api, "/therapists", "GET", summary="The therapists, optionally those offering one service",
    query=TherapistQuery, responses={200: ("therapists", TherapistList), 422: _E422},
    decorators=_READ,
)
def list_therapists(query: TherapistQuery):
    if query.service is not None:
        therapists = scheduling.therapists_offering(scheduling.offered_service(query.service))
    else:
        therapists = [therapist for therapist in reference_data().therapists if therapist.active]
    return jsonify([_therapist_out(therapist).model_dump(mode="json") for therapist in therapists])


@operation(
    api, "/availability", "GET", summary="Free slots for a service over at most 62 days",
    query=AvailabilityQuery, responses={200: ("free slots", AvailabilityOut), 422: _E422},
    decorators=_READ,
)
def availability(query: AvailabilityQuery):
    service = scheduling.offered_service(query.service)
    zone = zone_named(query.tz) if query.tz else clinic_zone()
    slots = scheduling.free_slots(
        service, query.start, query.end, therapist_slug=query.therapist, local_zone=zone
    )
    # Therapists share start times and a slot's end is often the next one's start: each
    # instant is rendered once (rendering was a fifth of the cost of a week's answer).
    rendered: dict[datetime, str] = {}

    def local_time(instant: datetime) -> str:
        text = rendered.get(instant)
        if text is None:
            text = rendered[instant] = instant.astimezone(zone).isoformat()
        return text

    answer = {
        "service": service.slug,
        "timezone": zone.key,
        "slots": [
            {
                "start": local_time(slot.start),
                "end": local_time(slot.end),
                "therapist": slot.therapist,
            }
            for slot in slots
        ],
    }
    # orjson: a month's answer (thousands of slots) took the standard encoder longer than
    # the free slots took to find; the bytes are the same (compact, ASCII).
    return current_app.response_class(orjson.dumps(answer), mimetype="application/json")


@operation(
    api, "/openapi.json", "GET", summary="This document", responses={200: ("OpenAPI", None)},
    reads_database=False,
)
def openapi():
    return jsonify(openapi_document(version="1"))


# --- appointments --------------------------------------------------------------------------


@operation(
    api, "/appointments", "POST", summary="Book a visit", body=AppointmentRequest,
    headers=("Idempotency-Key",),
    responses={
        201: ("booked", AppointmentOut),
        409: _E409,
        422: ("invalid input, or evaluation_required", None),
    },
    decorators=_BOOK,
)
def book(body: AppointmentRequest):
    service = scheduling.bookable_service(body.service)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255:
        raise ApiError(422, "validation_error", "Idempotency-Key: at most 255 characters",
                       "Idempotency-Key")
    hold_write_lock()
    claimed = None
    if key:
        try:
            claimed = idempotency.claim(
                "POST /appointments", key, idempotency.fingerprint(body.model_dump(mode="json"))
            )
        except idempotency.IdempotencyKeyReused:
            raise ApiError(
                422, "idempotency_key_reused",
                "this Idempotency-Key was used with a different request", "Idempotency-Key",
            ) from None
        if isinstance(claimed, idempotency.StoredAnswer):
            db.session.rollback()
            return jsonify(claimed.body), claimed.status
    appointment = scheduling.book_appointment(
        service,
        body.start,
        scheduling.PatientDetails(
            name=body.patient.name,
            email=str(body.patient.email),
            phone=body.patient.phone,
            date_of_birth=body.patient.date_of_birth,
            guardian_name=body.patient.guardian_name or "",
        ),
        therapist_slug=body.therapist,
        notes=body.notes,
        booked_by="api",
    )
    answer = _appointment_out(appointment)
    if claimed is not None:
        idempotency.record(claimed, 201, answer)
    db.session.commit()
    return jsonify(answer), 201


@operation(
    api, "/appointments/<int:appointment_id>", "GET", summary="One appointment",
    manage_token=True, responses={200: ("the appointment", AppointmentOut), 404: _E404},
    decorators=_MANAGE,
)
def show_appointment(appointment_id: int):
    return jsonify(_appointment_out(_appointment_for_bearer(appointment_id)))


@operation(
    api, "/appointments/<int:appointment_id>/cancel", "POST", summary="Cancel a visit",
    manage_token=True,
    responses={200: ("cancelled", AppointmentOut), 404: _E404,
               409: ("the visit has started or is over", None)},
    decorators=_MANAGE,
)
def cancel(appointment_id: int):
    appointment = _appointment_for_bearer(appointment_id)
    scheduling.cancel_appointment(appointment, cancelled_by="patient")
    answer = _appointment_out(appointment)
    db.session.commit()
    return jsonify(answer)


@operation(
    api, "/appointments/<int:appointment_id>/reschedule", "POST", summary="Move a visit",
    manage_token=True, body=RescheduleRequest,
    responses={200: ("moved", AppointmentOut), 404: _E404, 409: _E409, 422: _E422},
    decorators=_MANAGE,
)
def reschedule(appointment_id: int, body: RescheduleRequest):
    appointment = _appointment_for_bearer(appointment_id)
    scheduling.reschedule_appointment(
        appointment, body.start, therapist_slug=body.therapist, changed_by="patient"
    )
    answer = _appointment_out(appointment)
    db.session.commit()
    return jsonify(answer)


def _appointment_for_bearer(appointment_id: int) -> Appointment:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(*_NOT_FOUND)
    appointment = appointment_for_token(token.strip(), appointment_id)
    if appointment is None:
        raise ApiError(*_NOT_FOUND)
    return appointment


# --- shapes --------------------------------------------------------------------------------


def _service_out(service: ServiceFacts) -> ServiceOut:
    return ServiceOut.model_validate(service, from_attributes=True)


def _therapist_out(therapist: TherapistFacts) -> TherapistOut:
    return TherapistOut(
        slug=therapist.slug,
        name=therapist.name,
        disciplines=list(therapist.disciplines),
        services=[
            service.slug for service in reference_data().services
            if service.active and therapist.offers(service)
        ],
    )


def _appointment_out(appointment: Appointment) -> dict:
    zone = zone_named(current_clinic().timezone)
    return AppointmentOut(
        id=appointment.id,
        status=appointment.status,
        service=appointment.service.slug,
        therapist=appointment.therapist.slug,
        start=appointment.start_at.astimezone(zone).isoformat(),
        end=appointment.end_at.astimezone(zone).isoformat(),
        timezone=zone.key,
        patient=appointment.patient.name,
        manage_token=manage_token_for(appointment),
    ).model_dump(mode="json")


# --- errors --------------------------------------------------------------------------------


@api.errorhandler(ApiError)
def _api_error(error: ApiError):
    db.session.rollback()
    return error.response()


@api.errorhandler(scheduling.SchedulingError)
def _scheduling_error(error: scheduling.SchedulingError):
    db.session.rollback()
    return ApiError(error.status, error.code, error.message, error.field).response()


@api.errorhandler(ClinicNotConfigured)
def _no_clinic(error: ClinicNotConfigured):
    return ApiError(503, "clinic_not_configured", str(error)).response()


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def http_error_as_json(error: HTTPException):
    """Routing and framework errors under /api/ in the contract's shape; elsewhere unchanged."""
    if not request.path.startswith("/api/"):
        return error
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    message = {
        413: "the request body is too large",
        429: "too many requests; please slow down",
    }.get(status, error.description or error.name)
    response = ApiError(status, code, message).response()[0]
    response.status_code = status
    if status == 429 and getattr(error, "retry_after", None):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


@api.record_once
def _register_app_handlers(state):
    show_problems_with(
        api.name,
        lambda status, _title, _message: ApiError(
            status, "service_unavailable", "please try again in a moment"
        ).response(),
    )
    state.app.register_error_handler(HTTPException, http_error_as_json)
