"""A refusal of the patient model shown on a form: each problem on the field it is about.

The model decides what is wrong; the form decides how to say it to its readers. A problem is
looked up in the form's wording by "field:kind" (e.g. "patient.phone:required"), then by
"field", and otherwise shown in the model's words ("must be a phone number ..."), which read
well after the field's label.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from wtforms import Field

MISSING_KINDS = {"missing", "required"}


def show_on_form(
    error: ValidationError,
    fields: Mapping[str, Field],
    wording: Mapping[str, str] | None = None,
) -> None:
    """Add each problem of `error` to the form field named for its place in the model.

    `fields` maps a model field ("phone", or "patient.phone" for a nested one) to the form's
    field; a problem with no field of its own is put on the first one.
    """
    wording = wording or {}
    for problem in error.errors(include_url=False):
        place = ".".join(str(part) for part in problem["loc"])
        field = fields.get(place) or next(iter(fields.values()))
        kind = "required" if problem["type"] in MISSING_KINDS else problem["type"]
        message = (
            wording.get(f"{place}:{kind}")
            or wording.get(place)
            or problem["msg"]
        )
        if message not in field.errors:
            field.errors = [*field.errors, message]
