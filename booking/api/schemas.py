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
from booking.rules.waitlist import WEEKDAYS


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


WeekdayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PartOfDay = Literal["morning", "afternoon", "evening"]


class WaitlistRequest(_Input):
    """Joining the waitlist: a service, perhaps one therapist, the days and times that suit."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    service: Slug
    therapist: Slug | None = Field(None, description="omit for any therapist")
    available_from: Annotated[Day, Field(alias="from", description="first day, clinic time")]
    until: Annotated[Day, Field(description="last day, inclusive; the entry ends after it")]
    weekdays: list[WeekdayName] = Field(default_factory=list, max_length=7,
                                        description="empty: any day")
    parts_of_day: list[PartOfDay] = Field(
        default_factory=list, max_length=3,
        description="morning: starts before 12:00; afternoon: 12:00 to 17:00; evening: from "
        "17:00 (clinic time); empty: any",
    )
    patient: PatientDetails

    @field_validator("until")
    @classmethod
    def _not_before_from(cls, until: date, info: ValidationInfo) -> date:
        start = info.data.get("available_from")
        if start is not None and until < start:
            raise ValueError("is before from")
        return until


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


class WaitlistEntryOut(BaseModel):
    id: int
    status: Literal["waiting", "booked", "left", "removed", "ended"]
    service: str
    therapist: str | None
    available_from: str = Field(serialization_alias="from")
    until: str
    weekdays: list[str]
    parts_of_day: list[str]
    created_at: str
    manage_token: str | None = None

    @classmethod
    def fields_of(cls, entry) -> dict:
        return {
            "id": entry.id,
            "status": entry.status,
            "service": entry.service.slug,
            "therapist": entry.therapist.slug if entry.therapist else None,
            "available_from": entry.available_from.isoformat(),
            "until": entry.until.isoformat(),
            "weekdays": [WEEKDAYS[day] for day in entry.weekdays],
            "parts_of_day": list(entry.parts_of_day),
            "created_at": entry.created_at.isoformat(),
        }

    @classmethod
    def of(cls, entry, *, with_token: bool = False) -> dict:
        """The entry as its patient sees it; the token only in the answer to joining."""
        shape = cls(**cls.fields_of(entry),
                    manage_token=entry.manage_token if with_token else None)
        return shape.model_dump(mode="json", by_alias=True, exclude_none=not with_token)


class WaitlistPatientOut(BaseModel):
    name: str
    email: str
    phone: str
    date_of_birth: date | None
    guardian_name: str


class WaitlistOfferOut(BaseModel):
    start: str
    therapist: str
    status: Literal["sent", "expired", "claimed", "taken"]
    sent_at: str | None
    expires_at: str | None


class StaffWaitlistEntryOut(WaitlistEntryOut):
    patient: WaitlistPatientOut
    offers: list[WaitlistOfferOut]

    @classmethod
    def of_entry(cls, entry, zone: ZoneInfo) -> dict:
        """The entry with the patient's details and its offers, for staff."""
        def instant(value):
            return value.astimezone(zone).isoformat() if value else None

        return cls(
            **cls.fields_of(entry),
            patient=WaitlistPatientOut(
                name=entry.patient_name, email=entry.patient_email, phone=entry.patient_phone,
                date_of_birth=entry.patient_date_of_birth,
                guardian_name=entry.patient_guardian_name,
            ),
            offers=[
                WaitlistOfferOut(
                    start=instant(offer.start_at), therapist=offer.therapist.slug,
                    status=offer.status, sent_at=instant(offer.sent_at),
                    expires_at=instant(offer.expires_at),
                )
                for offer in entry.offers
            ],
        ).model_dump(mode="json", by_alias=True, exclude={"manage_token"})


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


class StaffWaitlist(RootModel[list[StaffWaitlistEntryOut]]):
    pass
