"""The OpenAPI 3.1 document, built from the declared operations and their pydantic models."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from booking.api.operations import OPERATIONS, Operation
from booking.api.schemas import ErrorOut

_REF = "#/components/schemas/{model}"

# Answers any operation can give besides its own, in the same error shape: the views raise
# none of them themselves, so they are declared here once (see views.http_error_as_json).
_BODY_ERRORS = {
    400: "malformed_json: the body is not valid JSON",
    413: "payload_too_large: the body is larger than the limit",
    415: "unsupported_media_type: the body is not sent as application/json",
}
_RATE_LIMITED = {429: "rate_limited: too many requests from this client; see Retry-After"}
_UNAVAILABLE = {503: "service_unavailable: the database is unreachable, or no clinic is set up"}


def openapi_document(version: str) -> dict:
    models: set[tuple[type[BaseModel], str]] = {(ErrorOut, "serialization")}
    for op in OPERATIONS:
        if op.body:
            models.add((op.body, "validation"))
        for _, model in op.responses.values():
            if model:
                models.add((model, "serialization"))
    refs, definitions = models_json_schema(
        sorted(models, key=lambda item: (item[0].__name__, item[1])), ref_template=_REF
    )
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Clinic booking API",
            "version": version,
            "description": (
                "Book, see, reschedule and cancel visits. Times are ISO 8601 with an offset. "
                "Every error is {\"error\": {\"code\", \"message\", \"field\"}}."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "manageToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the appointment's manage_token",
                },
                "staffToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a staff login's personal token (`flask users token`)",
                },
            },
        },
    }


def _operation(op: Operation, refs: dict) -> dict:
    document: dict = {"operationId": op.operation_id, "summary": op.summary, "parameters": []}
    for name in _path_parameters(op.path):
        document["parameters"].append(
            {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
        )
    if op.query:
        schema = op.query.model_json_schema(ref_template=_REF)
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            document["parameters"].append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": _query_schema(prop),
                    **({"description": prop["description"]} if "description" in prop else {}),
                }
            )
    for header in op.headers:
        document["parameters"].append(
            {
                "name": header,
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    if op.body:
        document["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    if op.manage_token:
        document["security"] = [{"manageToken": []}]
    if op.staff_token:
        document["security"] = [{"staffToken": []}]
    document["responses"] = {}
    answers = dict(op.responses)
    for extra, applies in (
        (_BODY_ERRORS, op.body is not None),
        (_RATE_LIMITED, op.rate_limited),
        (_UNAVAILABLE, op.reads_database),
    ):
        if applies:
            answers.update({status: (text, None) for status, text in extra.items()
                            if status not in answers})
    for status, (description, model) in sorted(answers.items()):
        model = model or (ErrorOut if status >= 400 else None)
        answer: dict = {"description": description}
        if model is not None:
            answer["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        document["responses"][str(status)] = answer
    return document


def _query_schema(prop: dict) -> dict:
    # A query string cannot say null: an optional parameter is left out, not sent as null.
    schema = {key: value for key, value in prop.items() if key not in ("description", "default")}
    choices = [choice for choice in schema.pop("anyOf", []) if choice != {"type": "null"}]
    if len(choices) == 1:
        schema.update(choices[0])
    elif choices:
        schema["anyOf"] = choices
    return schema


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
