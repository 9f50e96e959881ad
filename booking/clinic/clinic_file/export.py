"""Exporting: the clinic in the database as clinic-file text, every key written out.

The database is read into the file's own shape and checked by the same models as a file
being loaded; the text is then written by walking the models' fields, so a key added to
the schema is exported with nothing more to do.
"""

from __future__ import annotations

from typing import Any

import tomli_w
from pydantic import BaseModel
from sqlalchemy import select

from booking.clinic.clinic_file.schema import (
    FORM_SLUGS,
    SERVICE_SLUGS,
    ClinicDetails,
    ClinicSpec,
    FormQuestion,
    FormSpec,
    ServiceSpec,
    TherapistSpec,
    local_datetime_text,
)
from booking.clinic.clinic_file.toml_values import toml_value
from booking.extensions import db
from booking.models import Clinic, ClinicForm, Service, Therapist
from booking.rules import availability, weekly_hours
from booking.rules.durations import duration_text


def export_clinic() -> str:
    """The clinic in the database as clinic-file text: active services and therapists only."""
    return clinic_file_text(current_clinic_spec())


def current_clinic_spec() -> ClinicSpec:
    """What the database says, as a ClinicSpec. Raises LookupError before any clinic is loaded."""
    clinic = db.session.scalars(select(Clinic).order_by(Clinic.id).limit(1)).first()
    if clinic is None:
        raise LookupError("no clinic has been loaded yet: load a clinic file first")
    services = db.session.scalars(
        select(Service).where(Service.active).order_by(Service.position, Service.id)
    ).all()
    therapists = db.session.scalars(
        select(Therapist).where(Therapist.active).order_by(Therapist.position, Therapist.id)
    ).all()
    forms = db.session.scalars(
        select(ClinicForm).where(ClinicForm.active).order_by(ClinicForm.position, ClinicForm.id)
    ).all()
    document = {
        "clinic": _columns_of(clinic, ClinicDetails) | {"languages": list(clinic.languages)},
        "services": [_service_table(service, clinic.languages[0]) for service in services],
        "therapists": [_therapist_table(therapist) for therapist in therapists],
        "forms": [_columns_of(form, FormSpec) for form in forms],
    }
    context = {
        SERVICE_SLUGS: [service.slug for service in services],
        FORM_SLUGS: [form.slug for form in forms],
    }
    return ClinicSpec.model_validate(document, context=context)


def _columns_of(row: Any, model: type[BaseModel]) -> dict[str, Any]:
    """The row's values of the model's fields: a field of the file is a column of the same name.

    The few that are not (durations, relations) are replaced by the caller."""
    return {field: getattr(row, field) for field in model.model_fields}


def _service_table(service: Service, first_language: str) -> dict[str, Any]:
    texts = {
        key: {first_language: getattr(service, key), **service.translations[key]}
        for key in ("name", "description")
        if (service.translations or {}).get(key)
    }
    return _columns_of(service, ServiceSpec) | texts | {
        "reminders": [duration_text(each) for each in service.reminders],
        "aftercare": [duration_text(each) for each in service.aftercare],
    }


def _therapist_table(therapist: Therapist) -> dict[str, Any]:
    offered = sorted(
        (service for service in therapist.services if service.active),
        key=lambda service: (service.position, service.id),
    )
    windows = [
        availability.WorkingHours(row.weekday, row.start_time, row.end_time)
        for row in therapist.hours
    ]
    return _columns_of(therapist, TherapistSpec) | {
        "services": [service.slug for service in offered],
        "hours": weekly_hours.windows_by_day(windows),
        "time_off": [
            {"start": row.starts_local, "end": row.ends_local, "reason": row.reason}
            for row in therapist.time_off
        ],
    }


def clinic_file_text(spec: ClinicSpec) -> str:
    """spec as clinic-file TOML, every key written out, defaults included, so it documents itself.

    Deterministic: the same spec always gives the same bytes.
    """
    lines = [
        "# The clinic file: docs/clinic-file.md explains every key.",
        "# Load it with: flask --app wsgi clinic load FILE",
        "",
        "[clinic]",
        *_key_lines(spec.clinic),
    ]
    for service in spec.services:
        lines += ["", "[[services]]", *_key_lines(service)]
    for therapist in spec.therapists:
        lines += ["", "[[therapists]]", *_key_lines(therapist)]
    for form in spec.forms:
        lines += ["", "[[forms]]", *_key_lines(form)]
    return "\n".join(lines) + "\n"


def _key_lines(table: BaseModel) -> list[str]:
    lines = []
    for field in type(table).model_fields:
        value = getattr(table, field)
        written_as = _WRITTEN_AS.get(field)
        if isinstance(value, dict):  # a text per language, as an inline table
            pairs = ", ".join(f"{key} = {toml_value(text)}" for key, text in value.items())
            lines.append(f"{field} = {{ {pairs} }}")
            continue
        lines += written_as(value) if written_as else [f"{field} = {toml_value(value)}"]
    return lines


def _hours_lines(windows: tuple[availability.WorkingHours, ...]) -> list[str]:
    if not windows:
        return ["hours = {}"]
    return [
        f"hours.{day} = {toml_value(spans)}"
        for day, spans in weekly_hours.windows_by_day(windows).items()
    ]


def _time_off_lines(periods: tuple[availability.TimeOff, ...]) -> list[str]:
    tables = [
        f"{{ start = {toml_value(local_datetime_text(period.start))}, "
        f"end = {toml_value(local_datetime_text(period.end))}, "
        f"reason = {toml_value(period.reason)} }}"
        for period in periods
    ]
    if not tables:
        return ["time_off = []"]
    if len(tables) == 1:
        return [f"time_off = [ {tables[0]} ]"]
    return ["time_off = [", *(f"    {table}," for table in tables), "]"]


def _consent_lines(consent: str) -> list[str]:
    # Paragraphs as the clinic writes them: a multi-line string, not one line of \n escapes.
    written = tomli_w.dumps({"consent": consent}, multiline_strings=True)
    return written.removesuffix("\n").split("\n")


def _questions_lines(questions: tuple[FormQuestion, ...]) -> list[str]:
    if not questions:
        return ["questions = []"]
    tables = []
    for question in questions:
        pairs = [
            f"{field} = {toml_value(value)}"
            for field, value in question.model_dump().items()
            if value is not None
        ]
        tables.append("{ " + ", ".join(pairs) + " }")
    return ["questions = [", *(f"    {table}," for table in tables), "]"]


# A therapist's hours and time off are written as the clinic writes them by hand: a dotted key
# per weekday, and inline tables; a form's consent as paragraphs and its questions one per
# line; every other value is one TOML value.
def _written_when_used(field: str):
    """A key added later is written only when used: a clinic without it exports as before."""
    return lambda value: [f"{field} = {toml_value(value)}"] if value else []


_WRITTEN_AS = {
    "hours": _hours_lines,
    "time_off": _time_off_lines,
    "max_series_visits": _written_when_used("max_series_visits"),
    "consent": _consent_lines,
    "questions": _questions_lines,
}
