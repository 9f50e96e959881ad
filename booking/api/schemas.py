"""The JSON API's shapes. The same models validate requests and write the OpenAPI document."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from booking.patients.details import Notes, PatientDetails
from booking.rules.calendar_range import within_calendar


def _known_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone, e.g. America/Detroit") from None
    return value


def _iso_text(value: object) -> object:
    # Numbers would be read as Unix timestamps; the API speaks ISO 8601 text only.
    if not isinstance(value, str | date):
        raise ValueError("must be ISO 8601 text")
    return value


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(within_calendar),
    Field(description="ISO 8601 with an offset, e.g. 2026-12-01T09:00:00-05:00"),
]
Day = Annotated[
    date, BeforeValidator(_iso_text), AfterValidator(within_calendar),
    Field(description="YYYY-MM-DD"),
]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_time_zone)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppointmentRequest(_Input):
    service: Slug
    start: Instant
    therapist: Slug | None = Field(None, description="omit for the first free therapist")
    patient: PatientDetails
    notes: Notes = ""


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class RepeatInput(_Input):
    weekdays: list[Weekday] = Field(
        default_factory=list, max_length=7,
        description="the weekdays of the visits; default the weekday of `start`",
    )
    count: int = Field(
        ge=2, le=52, description="how many visits, at most the service's max_series_visits"
    )


class SeriesRequest(AppointmentRequest):
    """A weekly series: the first visit at `start`, the others on `repeat.weekdays` at the
    same wall-clock time in the clinic zone."""

    repeat: RepeatInput
    preview: bool = Field(False, description="true: say which visits are free; book nothing")


class CancelRequest(_Input):
    scope: Literal["this", "following"] = Field(
        "this", description="following: this visit and every later one of its series"
    )


class RescheduleRequest(_Input):
    start: Instant
    therapist: Slug | None = None


class AvailabilityQuery(_Input):
    service: Slug
    start: Annotated[Day, Field(description="first day, inclusive, in `tz`")]
    end: Annotated[Day, Field(description="last day, inclusive, in `tz`")]
    therapist: Slug | None = None
    tz: TimeZoneName | None = Field(None, description="IANA zone; default the clinic's")

    @field_validator("end")
    @classmethod
    def _a_sensible_range(cls, end: date, info: ValidationInfo) -> date:
        start = info.data.get("start")
        if start is not None and end < start:
            raise ValueError("is before start")
        most = current_app.config["AVAILABILITY_MAX_DAYS"]
        if start is not None and (end - start).days + 1 > most:
            raise ValueError(f"at most {most} days after start, inclusive")
        return end


class TherapistQuery(_Input):
    service: Slug | None = None


# --- answers -------------------------------------------------------------------------------


class ServiceOut(BaseModel):
    slug: str
    name: str
    kind: Literal["call", "evaluation", "treatment"]
    description: str
    duration_minutes: int
    buffer_after_minutes: int
    min_notice_hours: int
    max_advance_days: int
    requires_evaluation: bool
    requires_clearance: bool


class TherapistOut(BaseModel):
    slug: str
    name: str
    disciplines: list[str]
    services: list[str]


class SlotOut(BaseModel):
    start: str
    end: str
    therapist: str


class AvailabilityOut(BaseModel):
    service: str
    timezone: str
    slots: list[SlotOut]


class AppointmentOut(BaseModel):
    id: int
    status: Literal["confirmed", "cancelled", "completed", "no_show"]
    service: str
    therapist: str
    start: str
    end: str
    timezone: str
    patient: str = Field(description="the patient's name")
    manage_token: str


SeriesReason = Literal["taken", "outside_hours", "time_off", "too_soon", "too_far", "off_grid"]


class PreviewVisitOut(BaseModel):
    start: str
    end: str
    therapist: str
    free: bool
    reason: SeriesReason | None = Field(None, description="only when not free")
    alternatives: list[SlotOut] = Field(
        description="up to 3 free times, nearest first, that day or the days next to it"
    )


class SeriesPreviewOut(BaseModel):
    visits: list[PreviewVisitOut]


class SeriesAppointmentOut(BaseModel):
    id: int
    status: Literal["confirmed", "cancelled", "completed", "no_show"]
    service: str
    therapist: str
    start: str
    end: str


class SeriesOut(BaseModel):
    series_id: int
    manage_token: str = Field(description="opens the series and each of its appointments")
    appointments: list[SeriesAppointmentOut]


class SeriesConflictOut(BaseModel):
    start: str
    reason: SeriesReason
    alternatives: list[SlotOut]


class SeriesErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    conflicts: list[SeriesConflictOut] = Field(description="every visit that is not free")


class SeriesErrorOut(BaseModel):
    error: SeriesErrorDetail


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    reason: str | None = Field(
        None, description="with slot_unavailable: taken, outside_hours, time_off, too_soon, "
        "too_far or off_grid"
    )


class ErrorOut(BaseModel):
    error: ErrorDetail


class HealthOut(BaseModel):
    database: str


class ServiceList(RootModel[list[ServiceOut]]):
    pass


class TherapistList(RootModel[list[TherapistOut]]):
    pass


class FormQuestionOut(BaseModel):
    key: str
    text: str
    type: Literal["yes_no", "text"]


class VisitFormOut(BaseModel):
    """One health form of a visit's service; the answers themselves are never sent back."""

    form: str
    title: str
    version: str
    status: Literal["missing", "complete", "needs_review"]
    questions: list[FormQuestionOut]
    consent: str


class VisitFormList(RootModel[list[VisitFormOut]]):
    pass


class FormSignedOut(BaseModel):
    status: Literal["complete", "needs_review"]
