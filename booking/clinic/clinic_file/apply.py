"""Loading a checked clinic file: make the database say what it says, and report each change.

The models' fields drive the writing: a field of the file is a column of the same name,
except the few named here that become something else (durations, rows of hours and time off,
the services a therapist offers).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from booking.clinic.clinic_file.schema import (
    ClinicDetails,
    ClinicSpec,
    FormSpec,
    ServiceSpec,
    TherapistSpec,
    local_datetime_text,
)
from booking.clinic.clinic_file.toml_values import toml_value
from booking.extensions import db
from booking.models import Clinic, ClinicForm, Service, Therapist
from booking.models import TimeOff as TimeOffRow
from booking.models import WorkingHours as WorkingHoursRow
from booking.rules import availability, weekly_hours
from booking.rules.durations import duration_text, parse_duration


def apply_clinic(spec: ClinicSpec) -> list[str]:
    """Make the database say what spec says, and return what changed, one line per change.

    Rows are matched by slug. Nothing is written that is already so, so loading the same file
    twice changes nothing, not even a timestamp. Services and therapists missing from the file
    are retired (active = False), never deleted: appointments refer to them. Appointments are
    never touched. Does not commit: the caller commits once, or rolls back.
    """
    changes = _apply_clinic_details(spec.clinic)
    _apply_forms(spec.forms, changes)
    services = _apply_services(spec.services, spec.clinic.languages[0], changes)
    _apply_therapists(spec.therapists, services, changes)
    return changes


# How a field's value in the file becomes its column's value, where the two differ.
_SERVICE_COLUMNS: dict[str, Callable[[Any], Any]] = {
    "reminders": lambda written: [parse_duration(each) for each in written],
    "aftercare": lambda written: [parse_duration(each) for each in written],
    "forms": list,
}
_LONG_FORM_FIELDS = ("consent", "questions")
_FORM_COLUMNS: dict[str, Callable[[Any], Any]] = {
    "questions": lambda questions: [
        question.model_dump(exclude_none=True) for question in questions
    ],
}
_THERAPIST_COLUMNS: dict[str, Callable[[Any], Any]] = {"disciplines": list}
_CLINIC_COLUMNS: dict[str, Callable[[Any], Any]] = {"languages": list}
# Texts a patient reads, given as one string or one per language.
_TEXTS_IN_LANGUAGES = ("name", "description")
# Written by their own steps below: relations, not columns.
_THERAPIST_RELATIONS = ("services", "hours", "time_off")


def _columns(
    spec: BaseModel, converted: dict[str, Callable[[Any], Any]], leave_out: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        field: converted.get(field, _same)(getattr(spec, field))
        for field in type(spec).model_fields
        if field not in leave_out
    }


def _same(value: Any) -> Any:
    return value


def _apply_clinic_details(details: ClinicDetails) -> list[str]:
    wanted = _columns(details, _CLINIC_COLUMNS)
    clinic = db.session.scalars(select(Clinic).order_by(Clinic.id).limit(1)).first()
    if clinic is None:
        db.session.add(Clinic(**wanted))
        return [f"clinic: created {toml_value(details.name)}"]
    return [f"clinic: {change}" for change in _update_fields(clinic, wanted)]


def _apply_services(
    specs: tuple[ServiceSpec, ...], first_language: str, changes: list[str]
) -> dict[str, Service]:
    existing = {service.slug: service for service in db.session.scalars(select(Service))}
    for position, spec in enumerate(specs):
        wanted = _columns(spec, _SERVICE_COLUMNS, ("slug", *_TEXTS_IN_LANGUAGES))
        wanted |= _texts_columns(spec, first_language) | {"position": position}
        service = existing.get(spec.slug)
        if service is None:
            service = Service(slug=spec.slug, active=True, **wanted)
            db.session.add(service)
            existing[spec.slug] = service
            changes.append(f"service {spec.slug}: added")
            continue
        if not service.active:
            service.active = True
            changes.append(f"service {spec.slug}: offered again")
        changes.extend(
            f"service {spec.slug}: {change}" for change in _update_fields(service, wanted)
        )
    in_file = {spec.slug for spec in specs}
    for slug, service in sorted(existing.items()):  # sorted: the same report on every database
        if slug not in in_file and service.active:
            service.active = False
            changes.append(f"service {slug}: retired (not in the file; its appointments are kept)")
    return existing


def _texts_columns(spec: ServiceSpec, first_language: str) -> dict[str, Any]:
    """name and description in the clinic's first language, the others in `translations`."""
    columns: dict[str, Any] = {}
    translations: dict[str, dict[str, str]] = {}
    for key in _TEXTS_IN_LANGUAGES:
        texts = getattr(spec, key)
        if not isinstance(texts, dict):
            columns[key] = texts
            continue
        columns[key] = texts[first_language]
        others = {language: text for language, text in texts.items() if language != first_language}
        if others:
            translations[key] = others
    return columns | {"translations": translations}


def _apply_forms(specs: tuple[FormSpec, ...], changes: list[str]) -> None:
    """Forms by slug, as services are: one missing from the file is retired, never deleted,
    since signed answers name it. A changed text is reported by its fields; the answers of
    patients are not touched (a new version asks them again)."""
    existing = {form.slug: form for form in db.session.scalars(select(ClinicForm))}
    for position, spec in enumerate(specs):
        wanted = _columns(spec, _FORM_COLUMNS, ("slug",)) | {"position": position}
        form = existing.get(spec.slug)
        if form is None:
            db.session.add(ClinicForm(slug=spec.slug, active=True, **wanted))
            changes.append(f"form {spec.slug}: added")
            continue
        if not form.active:
            form.active = True
            changes.append(f"form {spec.slug}: asked again")
        for field, value in wanted.items():
            if getattr(form, field) != value:
                setattr(form, field, value)
                # The consent and the questions are long: named, not quoted.
                said = "changed" if field in _LONG_FORM_FIELDS else f"now {_as_written(value)}"
                changes.append(f"form {spec.slug}: {field} {said}")
    in_file = {spec.slug for spec in specs}
    for slug, form in sorted(existing.items()):
        if slug not in in_file and form.active:
            form.active = False
            changes.append(f"form {slug}: retired (not in the file; signed forms are kept)")


def _apply_therapists(
    specs: tuple[TherapistSpec, ...], services: dict[str, Service], changes: list[str]
) -> None:
    existing = {therapist.slug: therapist for therapist in db.session.scalars(select(Therapist))}
    for position, spec in enumerate(specs):
        wanted = _columns(spec, _THERAPIST_COLUMNS, ("slug", *_THERAPIST_RELATIONS))
        wanted["position"] = position
        therapist = existing.get(spec.slug)
        if therapist is None:
            therapist = Therapist(slug=spec.slug, active=True, **wanted)
            therapist.services = [services[slug] for slug in spec.services]
            therapist.hours = _working_hours_rows(spec.hours)
            therapist.time_off = _time_off_rows(spec.time_off)
            db.session.add(therapist)
            changes.append(f"therapist {spec.slug}: added")
            continue
        if not therapist.active:
            therapist.active = True
            changes.append(f"therapist {spec.slug}: seeing patients again")
        found = _update_fields(therapist, wanted)
        found.extend(_update_services_offered(therapist, spec, services))
        found.extend(_update_hours(therapist, spec))
        found.extend(_update_time_off(therapist, spec))
        changes.extend(f"therapist {spec.slug}: {change}" for change in found)
    in_file = {spec.slug for spec in specs}
    for slug, therapist in sorted(existing.items()):  # sorted: the same report on every database
        if slug not in in_file and therapist.active:
            therapist.active = False
            changes.append(
                f"therapist {slug}: retired (not in the file; their appointments are kept)"
            )


def _update_fields(row: Any, wanted: dict[str, Any]) -> list[str]:
    """Set each field that differs, and say how. Equal fields are not written at all."""
    changed = []
    for field, value in wanted.items():
        current = getattr(row, field)
        if current != value:
            setattr(row, field, value)
            changed.append(f"{field} {_as_written(current)} -> {_as_written(value)}")
    return changed


def _as_written(value: Any) -> str:
    """A column's value as the clinic file writes it: durations as "48h"."""
    if isinstance(value, list) and value and all(isinstance(each, timedelta) for each in value):
        return toml_value([duration_text(each) for each in value])
    return toml_value(value)


def _update_services_offered(
    therapist: Therapist, spec: TherapistSpec, services: dict[str, Service]
) -> list[str]:
    current = [service.slug for service in therapist.services]
    if set(current) == set(spec.services):
        return []
    therapist.services = [services[slug] for slug in spec.services]
    return [f"services {toml_value(current)} -> {toml_value(list(spec.services))}"]


def _update_hours(therapist: Therapist, spec: TherapistSpec) -> list[str]:
    current = weekly_hours.in_week_order(
        availability.WorkingHours(row.weekday, row.start_time, row.end_time)
        for row in therapist.hours
    )
    if tuple(current) == spec.hours:
        return []
    therapist.hours = _working_hours_rows(spec.hours)
    return [f"hours now {_hours_summary(spec.hours)} (were {_hours_summary(current)})"]


def _update_time_off(therapist: Therapist, spec: TherapistSpec) -> list[str]:
    current = sorted(
        (
            availability.TimeOff(row.starts_local, row.ends_local, row.reason)
            for row in therapist.time_off
        ),
        key=lambda period: (period.start, period.end, period.reason),
    )
    if tuple(current) == spec.time_off:
        return []
    therapist.time_off = _time_off_rows(spec.time_off)
    return [f"time off now {_time_off_summary(spec.time_off)} (was {_time_off_summary(current)})"]


def _working_hours_rows(windows: tuple[availability.WorkingHours, ...]) -> list[WorkingHoursRow]:
    return [
        WorkingHoursRow(weekday=window.weekday, start_time=window.start, end_time=window.end)
        for window in windows
    ]


def _time_off_rows(periods: tuple[availability.TimeOff, ...]) -> list[TimeOffRow]:
    return [
        TimeOffRow(starts_local=period.start, ends_local=period.end, reason=period.reason)
        for period in periods
    ]


def _hours_summary(windows) -> str:
    return weekly_hours.hours_summary(windows) or "none"


def _time_off_summary(periods) -> str:
    if not periods:
        return "none"
    return "; ".join(
        f"{local_datetime_text(period.start)} to {local_datetime_text(period.end)}"
        + (f" ({period.reason})" if period.reason else "")
        for period in periods
    )
