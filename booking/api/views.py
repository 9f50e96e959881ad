"""The API's routes: parse (the operation's models), look up or act through scheduling, answer.

Errors leave as {"error": {"code", "message", "field"}} with a 4xx status.
"""

from __future__ import annotations

from contextlib import suppress

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
    CancelRequest,
    FormSignedOut,
    RescheduleRequest,
    SeriesAppointmentOut,
    SeriesErrorOut,
    SeriesOut,
    SeriesPreviewOut,
    SeriesRequest,
    ServiceList,
    ServiceOut,
    TherapistList,
    TherapistOut,
    TherapistQuery,
    VisitFormList,
    VisitFormOut,
    WaitlistEntryOut,
    WaitlistRequest,
)
from booking.api.slot_answers import slots_json
from booking.clinic.reference import (
    ClinicNotConfigured,
    ServiceFacts,
    TherapistFacts,
    clinic_zone,
    current_clinic,
    reference_data,
    zone_named,
)
from booking.extensions import limiter
from booking.models import Appointment, AppointmentSeries, WaitlistEntry, utc_now
from booking.patients import health_forms
from booking.patients.details import details_context
from booking.patients.manage_links import (
    appointment_for_token,
    manage_token_for,
    series_for_token,
    series_token_for,
)
from booking.scheduling import idempotency, waitlist
from booking.web.requests import forget_transaction, reading, show_problems_with, writing

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
@reading
def list_services():
    services = [service for service in reference_data().services if service.active]
    return jsonify([_service_out(service).model_dump(mode="json") for service in services])


@operation(
    api, "/therapists", "GET", summary="The therapists, optionally those offering one service",
    query=TherapistQuery, responses={200: ("therapists", TherapistList), 422: _E422},
    decorators=_READ,
)
@reading
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
@reading
def availability(query: AvailabilityQuery):
    service = scheduling.offered_service(query.service)
    zone = zone_named(query.tz) if query.tz else clinic_zone()
    starts = scheduling.free_starts(
        service, query.start, query.end, therapist_slug=query.therapist, local_zone=zone
    )
    slots = slots_json(starts, service.duration_minutes, zone)
    answer = {"service": service.slug, "timezone": zone.key, "slots": slots}
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


def _booking_context(body: dict) -> dict:
    """The patient's rules for the service named in the body (a call needs a phone)."""
    slug = body.get("service")
    service = None
    if isinstance(slug, str):
        with suppress(scheduling.UnknownService):
            service = scheduling.offered_service(slug)
    return details_context(service)


@operation(
    api, "/appointments", "POST", summary="Book a visit", body=AppointmentRequest,
    headers=("Idempotency-Key",), body_context=_booking_context,
    responses={
        201: ("booked", AppointmentOut),
        409: _E409,
        422: ("invalid input, evaluation_required or clearance_required", None),
    },
    decorators=_BOOK,
)
@writing
def book(body: AppointmentRequest):
    service = scheduling.offered_service(body.service)
    claimed = _claim_idempotency_key("POST /appointments", body)
    if isinstance(claimed, idempotency.StoredAnswer):
        # Nothing is booked again; what the claim did (forgetting expired keys) may stay.
        return jsonify(claimed.body), claimed.status
    appointment = scheduling.book_appointment(
        service, body.start, body.patient, therapist_slug=body.therapist, notes=body.notes,
        booked_by="api",
    )
    answer = _appointment_out(appointment)
    if claimed is not None:
        idempotency.record(claimed, 201, answer)
    return jsonify(answer), 201


@operation(
    api, "/appointments/series", "POST", summary="Book a weekly series of visits, or preview it",
    body=SeriesRequest, headers=("Idempotency-Key",), body_context=_booking_context,
    responses={
        200: ("preview: each visit free or not, and the nearest alternatives", SeriesPreviewOut),
        201: ("every visit booked", SeriesOut),
        409: ("slot_unavailable: some visits are not free; `conflicts` names them all, and "
              "nothing is booked", SeriesErrorOut),
        422: ("invalid input, evaluation_required, or series_not_offered", None),
    },
    decorators=_BOOK,
)
def book_series(body: SeriesRequest):
    if body.preview:  # books nothing: no write lock
        return _preview_series(body)
    return _book_series(body)


def _preview_series(body: SeriesRequest):
    service = scheduling.bookable_service(body.service)
    plan = scheduling.preview_series(
        service, body.start, scheduling.weekday_numbers(body.repeat.weekdays, body.start),
        body.repeat.count, body.patient, therapist_slug=body.therapist,
    )
    return jsonify(_series_preview_out(plan))


@writing
def _book_series(body: SeriesRequest):
    service = scheduling.bookable_service(body.service)
    claimed = _claim_idempotency_key("POST /appointments/series", body)
    if isinstance(claimed, idempotency.StoredAnswer):
        return jsonify(claimed.body), claimed.status
    try:
        booked = scheduling.book_series(
            service,
            body.start,
            scheduling.weekday_numbers(body.repeat.weekdays, body.start),
            body.repeat.count,
            body.patient,
            therapist_slug=body.therapist,
            notes=body.notes,
            booked_by="api",
        )
    except scheduling.SeriesUnavailable as refused:
        return jsonify(_series_refused_out(refused)), 409
    answer = _series_out(booked.series, booked.appointments)
    if claimed is not None:
        idempotency.record(claimed, 201, answer)
    return jsonify(answer), 201


@operation(
    api, "/appointments/series/<int:series_id>", "GET",
    summary="The appointments of a series (the series' manage token)",
    manage_token=True,
    responses={200: ("the series", SeriesOut), 404: ("no series with that id and token", None)},
    decorators=_MANAGE,
)
def show_series(series_id: int):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    series = None
    if scheme.lower() == "bearer" and token.strip():
        series = series_for_token(token.strip(), series_id)
    if series is None:
        raise ApiError(404, "not_found", "no series with that id and token")
    return jsonify(_series_out(series, scheduling.series_visits(series)))


@operation(
    api, "/appointments/<int:appointment_id>", "GET", summary="One appointment",
    manage_token=True, responses={200: ("the appointment", AppointmentOut), 404: _E404},
    decorators=_MANAGE,
)
def show_appointment(appointment_id: int):
    return jsonify(_appointment_out(_appointment_for_bearer(appointment_id)))


@operation(
    api, "/appointments/<int:appointment_id>/cancel", "POST",
    summary="Cancel a visit, or it and every later visit of its series",
    manage_token=True, body=CancelRequest, body_required=False,
    responses={200: ("cancelled", AppointmentOut), 404: _E404,
               409: ("the visit has started or is over", None), 422: _E422},
    decorators=_MANAGE,
)
@writing
def cancel(appointment_id: int, body: CancelRequest):
    appointment = _appointment_for_bearer(appointment_id)
    if body.scope == "following":
        scheduling.cancel_following(appointment, cancelled_by="patient")
    else:
        scheduling.cancel_appointment(appointment, cancelled_by="patient")
    return jsonify(_appointment_out(appointment))


@operation(
    api, "/appointments/<int:appointment_id>/reschedule", "POST", summary="Move a visit",
    manage_token=True, body=RescheduleRequest,
    responses={200: ("moved", AppointmentOut), 404: _E404, 409: _E409, 422: _E422},
    decorators=_MANAGE,
)
@writing
def reschedule(appointment_id: int, body: RescheduleRequest):
    appointment = _appointment_for_bearer(appointment_id)
    scheduling.reschedule_appointment(
        appointment, body.start, therapist_slug=body.therapist, changed_by="patient"
    )
    return jsonify(_appointment_out(appointment))


@operation(
    api, "/appointments/<int:appointment_id>/forms", "GET",
    summary="The visit's health forms and where each stands (never the answers)",
    manage_token=True, responses={200: ("the forms", VisitFormList), 404: _E404},
    decorators=_MANAGE,
)
def visit_forms(appointment_id: int):
    appointment = _appointment_for_bearer(appointment_id)
    return jsonify([
        _visit_form_out(each).model_dump(mode="json")
        for each in health_forms.visit_forms(appointment)
    ])


def _signature_context(_body: dict) -> dict:
    """The questions of the form named in the path, and whether the visit is a child's: a
    wrong token or a form the visit does not ask for is a 404 before the body is read."""
    appointment, form = _visit_form_for_request()
    return health_forms.signature_context(appointment, form.form)


@operation(
    api, "/appointments/<int:appointment_id>/forms/<form>", "POST",
    summary="Complete a health form: an answer per question, signed by typed full name",
    manage_token=True, body=health_forms.FormSignature, body_context=_signature_context,
    responses={201: ("signed", FormSignedOut), 404: _E404,
               409: ("the visit is cancelled", None), 422: _E422},
    decorators=_MANAGE,
)
@writing
def sign_form(appointment_id: int, form: str, body: health_forms.FormSignature):
    appointment, visit_form = _visit_form_for_request()
    try:
        signed = health_forms.sign_form(appointment, visit_form.form, body, utc_now())
    except health_forms.FormNotOpen:
        raise ApiError(409, "appointment_cancelled", "the visit is cancelled") from None
    return jsonify(FormSignedOut(status=signed.status).model_dump(mode="json")), 201


def _visit_form_for_request() -> tuple[Appointment, health_forms.VisitForm]:
    args = request.view_args or {}
    appointment = _appointment_for_bearer(args["appointment_id"])
    visit_form = health_forms.visit_form(appointment, args["form"])
    if visit_form is None:
        raise ApiError(404, "not_found", "this visit asks for no form of that name", "form")
    return appointment, visit_form


def _visit_form_out(each: health_forms.VisitForm) -> VisitFormOut:
    return VisitFormOut(
        form=each.form.slug,
        title=each.form.title,
        version=each.form.version,
        status=each.status,
        questions=[
            {"key": question["key"], "text": question["text"], "type": question["type"]}
            for question in each.form.questions
        ],
        consent=each.form.consent,
    )


# --- the waitlist --------------------------------------------------------------------------

_E404_ENTRY = ("no waitlist entry with that id and token", None)


@operation(
    api, "/waitlist", "POST", summary="Join the waitlist for a service",
    body=WaitlistRequest, body_context=_booking_context,
    responses={201: ("waiting", WaitlistEntryOut), 422: _E422}, decorators=_BOOK,
)
@writing
def join_waitlist(body: WaitlistRequest):
    entry = waitlist.join_waitlist(
        scheduling.bookable_service(body.service), body.patient, body.available_from,
        body.until, therapist_slug=body.therapist, weekdays=body.weekdays,
        parts_of_day=body.parts_of_day, added_by="api",
    )
    return jsonify(WaitlistEntryOut.of(entry, with_token=True)), 201


@operation(
    api, "/waitlist/<int:entry_id>", "GET", summary="One waitlist entry", manage_token=True,
    responses={200: ("the entry", WaitlistEntryOut), 404: _E404_ENTRY}, decorators=_MANAGE,
)
def show_waitlist_entry(entry_id: int):
    return jsonify(WaitlistEntryOut.of(_entry_for_bearer(entry_id)))


@operation(
    api, "/waitlist/<int:entry_id>", "DELETE", summary="Leave the waitlist", manage_token=True,
    responses={200: ("left", WaitlistEntryOut), 404: _E404_ENTRY}, decorators=_MANAGE,
)
@writing
def leave_waitlist(entry_id: int):
    entry = waitlist.leave_waitlist(_entry_for_bearer(entry_id), by="api")
    return jsonify(WaitlistEntryOut.of(entry))


@operation(
    api, "/offers/<token>/claim", "POST", summary="Claim a time offered from the waitlist",
    responses={
        201: ("booked", AppointmentOut),
        404: ("no such offer", None),
        409: ("offer_taken: the time went to another patient first", None),
        410: ("offer_expired", None),
        422: ("evaluation_required", None),
    },
    decorators=_BOOK,
)
@writing
def claim_offer(token: str):
    offer = waitlist.offer_for_token(token)
    if offer is None:
        raise ApiError(404, "not_found", "no such offer")
    appointment = waitlist.claim_offer(offer)
    return jsonify(_appointment_out(appointment)), 201


def _entry_for_bearer(entry_id: int) -> WaitlistEntry:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    entry = None
    if scheme.lower() == "bearer" and token.strip():
        entry = waitlist.entry_for_token(entry_id, token.strip())
    if entry is None:
        raise ApiError(404, "not_found", _E404_ENTRY[0])
    return entry


def _appointment_for_bearer(appointment_id: int) -> Appointment:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(*_NOT_FOUND)
    appointment = appointment_for_token(token.strip(), appointment_id)
    if appointment is None:
        raise ApiError(*_NOT_FOUND)
    return appointment


def _claim_idempotency_key(scope: str, body) -> idempotency.IdempotencyKey | None:
    """The Idempotency-Key claimed for this body (inside the writing request's transaction),
    or the first answer given under it (a StoredAnswer), or None without a key."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255:
        raise ApiError(422, "validation_error", "Idempotency-Key: at most 255 characters",
                       "Idempotency-Key")
    if not key:
        return None
    try:
        return idempotency.claim(
            scope, key, idempotency.fingerprint(body.model_dump(mode="json"))
        )
    except idempotency.IdempotencyKeyReused:
        raise ApiError(
            422, "idempotency_key_reused",
            "this Idempotency-Key was used with a different request", "Idempotency-Key",
        ) from None


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
    zone = clinic_zone()
    # The service from the kept reference data: the visit's row need not be loaded for it.
    service = reference_data().service_with_id(appointment.service_id) or appointment.service
    return AppointmentOut(
        id=appointment.id,
        status=appointment.status,
        service=service.slug,
        therapist=appointment.therapist.slug,
        start=appointment.start_at.astimezone(zone).isoformat(),
        end=appointment.end_at.astimezone(zone).isoformat(),
        timezone=zone.key,
        patient=appointment.patient.name,
        manage_token=manage_token_for(appointment),
    ).model_dump(mode="json")


def _slot_out(slot, zone) -> dict:
    return {
        "start": slot.start.astimezone(zone).isoformat(),
        "end": slot.end.astimezone(zone).isoformat(),
        "therapist": slot.therapist,
    }


def _series_preview_out(plan: scheduling.SeriesPlan) -> dict:
    zone = zone_named(current_clinic().timezone)
    visits = []
    for visit in plan.visits:
        shown = {**_slot_out(visit, zone), "free": visit.free}
        if not visit.free:
            shown["reason"] = visit.reason
        shown["alternatives"] = [_slot_out(slot, zone) for slot in visit.alternatives]
        visits.append(shown)
    return SeriesPreviewOut.model_validate({"visits": visits}).model_dump(
        mode="json", exclude_none=True
    )


def _series_refused_out(refused: scheduling.SeriesUnavailable) -> dict:
    zone = zone_named(current_clinic().timezone)
    return SeriesErrorOut.model_validate(
        {
            "error": {
                "code": refused.code,
                "message": refused.message,
                "field": refused.field,
                "conflicts": [
                    {
                        "start": visit.start.astimezone(zone).isoformat(),
                        "reason": visit.reason,
                        "alternatives": [
                            _slot_out(slot, zone) for slot in visit.alternatives
                        ],
                    }
                    for visit in refused.plan.conflicts
                ],
            }
        }
    ).model_dump(mode="json")


def _series_out(series: AppointmentSeries, appointments: list[Appointment]) -> dict:
    zone = zone_named(current_clinic().timezone)
    return SeriesOut(
        series_id=series.id,
        manage_token=series_token_for(series),
        appointments=[
            SeriesAppointmentOut(
                id=appointment.id,
                status=appointment.status,
                service=appointment.service.slug,
                therapist=appointment.therapist.slug,
                start=appointment.start_at.astimezone(zone).isoformat(),
                end=appointment.end_at.astimezone(zone).isoformat(),
            )
            for appointment in appointments
        ],
    ).model_dump(mode="json")


# --- errors --------------------------------------------------------------------------------


@api.errorhandler(ApiError)
def _api_error(error: ApiError):
    # Refused input of a writing operation: the write lock it took first is let go.
    forget_transaction()
    return error.response()


@api.errorhandler(scheduling.SchedulingError)
def _scheduling_error(error: scheduling.SchedulingError):
    return ApiError(error.status, error.code, error.message, error.field,
                    reason=getattr(error, "reason", None)).response()


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
