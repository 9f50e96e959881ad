"""Declaring an API operation: its route, the models that validate its query and body, and
its answers. The declarations are the OpenAPI document's only source (see openapi.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ValidationError

from booking.clinic.reference import answer_from_kept_copy
from booking.database import hold_write_lock


class ApiError(Exception):
    """An error answer in the contract's shape: {"error": {"code", "message", "field"}}."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, *,
                 reason: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.reason = reason  # slot_unavailable only: why the time is not offered

    def response(self):
        detail = {"code": self.code, "message": self.message, "field": self.field}
        if self.reason is not None:
            detail["reason"] = self.reason
        return jsonify(error=detail), self.status


@dataclass
class Operation:
    method: str
    path: str  # OpenAPI style: /appointments/{appointment_id}
    operation_id: str
    summary: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    responses: dict[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    manage_token: bool = False
    staff_token: bool = False
    headers: tuple[str, ...] = ()
    rate_limited: bool = False
    reads_database: bool = True


OPERATIONS: list[Operation] = []


def operation(
    blueprint: Blueprint,
    rule: str,
    method: str,
    *,
    summary: str,
    responses: dict[int, tuple[str, type[BaseModel] | None]],
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    manage_token: bool = False,
    staff_token: bool = False,
    headers: tuple[str, ...] = (),
    decorators: tuple[Callable, ...] = (),
    reads_database: bool = True,
    body_context: Callable[[dict], dict] | None = None,
    authenticate: Callable[[], None] | None = None,
):
    """Route `view` and validate its input: it receives `query=` and/or `body=` as models.

    `body_context` gives the body's rules what they need beyond the body (the patient's
    rules, the clinic and the service booked). `authenticate` runs before the input is read:
    who asks is answered (401, 403) before what they sent (422).
    With body_required=False a request without a body gets the body model's defaults.
    """

    def register(view):
        OPERATIONS.append(
            Operation(
                method=method.lower(),
                # A nested blueprint (the staff API) carries its own prefix.
                path=_openapi_path((blueprint.url_prefix or "") + rule),
                operation_id=view.__name__,
                summary=summary,
                query=query,
                body=body,
                body_required=body_required,
                responses=responses,
                manage_token=manage_token,
                staff_token=staff_token,
                headers=headers,
                # The operations' only decorators are their rate limits.
                rate_limited=bool(decorators),
                reads_database=reads_database,
            )
        )

        writes = getattr(view, "takes_write_lock", False)

        def answer(kwargs):
            if writes:
                hold_write_lock()  # from the first statement, reading the input included
            if authenticate is not None:
                authenticate()
            if query is not None:
                kwargs["query"] = parse_model(query, _query_values(query))
            if body is not None:
                # An optional body left out is the model's defaults.
                sent = body_required or bool(request.get_data(cache=True))
                data = json_body() if sent else {}
                context = body_context(data) if body_context and isinstance(data, dict) else None
                kwargs["body"] = parse_model(body, data, context)
            return view(**kwargs)

        @wraps(view)
        def validated(**kwargs):
            if writes:
                # The kept reference data, checked by the write's own reads or before its
                # commit; a stale copy rolls the write back, and it is made again afresh.
                return answer_from_kept_copy(lambda: answer(dict(kwargs)))
            return answer(kwargs)

        routed = validated
        for decorate in decorators:
            routed = decorate(routed)
        blueprint.add_url_rule(rule, view.__name__, routed, methods=[method])
        return routed

    return register


def _openapi_path(rule: str) -> str:
    # Flask's <int:appointment_id> becomes OpenAPI's {appointment_id}.
    parts = []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].split(":")[-1] + "}"
        parts.append(part)
    return "/".join(parts)


def _query_values(model: type[BaseModel]) -> dict:
    values = {}
    for name in request.args:
        found = request.args.getlist(name)
        if len(found) > 1:
            raise ApiError(422, "validation_error", f"{name}: give it once", name)
        values[name] = found[0]
    return values


def json_body() -> object:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def parse_model(model: type[BaseModel], data: object, context: dict | None = None):
    if not isinstance(data, dict):
        raise ApiError(422, "validation_error", "the body must be a JSON object")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise ApiError(422, "validation_error", *_describe(first)) from None


_MESSAGES = {
    "timezone_aware": "must include a UTC offset, e.g. 2026-12-01T09:00:00-05:00",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
}


def _describe(problem: dict) -> tuple[str, str | None]:
    location = ".".join(str(part) for part in problem["loc"]) or None
    message = _MESSAGES.get(problem["type"]) or problem["msg"].removeprefix("Value error, ")
    return (f"{location}: {message}" if location else message), location
