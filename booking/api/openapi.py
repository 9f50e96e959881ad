"""The OpenAPI 3.1 document, built from the declared operations and their pydantic models."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from booking.api.operations import OPERATIONS, Operation
from booking.api.schemas import ErrorOut

_REF = "#/components/schemas/{model}"


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
                }
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
                    "schema": {k: v for k, v in prop.items() if k != "description"},
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
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    if op.manage_token:
        document["security"] = [{"manageToken": []}]
    document["responses"] = {}
    for status, (description, model) in sorted(op.responses.items()):
        model = model or (ErrorOut if status >= 400 else None)
        answer: dict = {"description": description}
        if model is not None:
            answer["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        document["responses"][str(status)] = answer
    return document


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
