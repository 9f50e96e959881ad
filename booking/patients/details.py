"""Who a visit is for, checked once: the field types of a patient and `PatientDetails`.

The JSON API, the patient's pages, the back office and the demo commands all build a
patient's details through this model, so a phone, a date of birth or a note is accepted or
refused by the same rule wherever it is typed. Each surface words the refusal for its readers
(see form_errors); the rule itself lives here.

Some rules depend on the clinic and the visit: "today" is the clinic's today, the languages are
the clinic's, and a call needs a phone to call. They are read from the validation context
(`details_context`); without one, from the clinic loaded in the database.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from booking.clinic.reference import ServiceFacts, reference_data, zone_named
from booking.models import Service, ServiceKind, utc_now

NAME_MAX = 200
EMAIL_MAX = 254
PHONE_MAX = 40
PHONE_MIN_DIGITS = 7
NOTES_MAX = 2000
OLDEST_PATIENT_YEARS = 120
# Under this age a patient is a child: the email and phone are a guardian's, who is named.
ADULT_AGE = 18
# The clinic file may not name its languages: its pages and mail are then in English.
DEFAULT_LANGUAGES = ("en",)

# Names go into mail headers and calendar files: one line, no control characters.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\ud800-\udfff]")
# A note may run over lines and hold tabs; no other control characters (PostgreSQL cannot
# store NUL), and no lone surrogates (they cannot be written as UTF-8).
_NOT_PLAIN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_PHONE = re.compile(r"^[0-9+().\- ]*$")


def _problem(kind: str, message: str, **values: Any) -> PydanticCustomError:
    """A refusal of one kind (`required`, `phone`, `future`...), which forms may reword."""
    return PydanticCustomError(kind, message, values or None)


# --- the clinic's part in the rules --------------------------------------------------------


def details_context(
    service: ServiceFacts | Service | None = None, *, at_the_desk: bool = False
) -> dict:
    """What the rules need from the clinic (and the service booked, when known).

    `at_the_desk`: staff are booking, and a phone may stand in for the email (a walk-in).
    """
    clinic = reference_data().clinic
    return {
        "zone": zone_named(clinic.timezone),
        "languages": clinic.languages or DEFAULT_LANGUAGES,
        "service_kind": service.kind if service is not None else None,
        "email_optional_with_phone": at_the_desk,
    }


def _context(info: ValidationInfo) -> dict:
    if info.context:
        return info.context
    return details_context()


def clinic_today(zone: ZoneInfo) -> date:
    return utc_now().astimezone(zone).date()


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


# --- field types ---------------------------------------------------------------------------


def _text(value: object) -> object:
    if value is None:
        return ""
    return value


def _person_name(value: str) -> str:
    if _NOT_ONE_LINE.search(value):
        raise _problem("one_line", "must be one line, without control characters")
    value = value.strip()
    if len(value) > NAME_MAX:
        raise _problem("too_long", "must be at most {max} characters", max=NAME_MAX)
    return value


def _required_name(value: str) -> str:
    if not value:
        raise _problem("required", "must not be empty")
    return value


def _email(value: str) -> str:
    # Empty is refused by the patient's model, which knows when a phone may stand in for it.
    if _NOT_ONE_LINE.search(value):
        raise _problem("email", "is not a valid email address")
    value = value.strip()
    if not value:
        return value
    if len(value) > EMAIL_MAX:
        raise _problem("email", "is not a valid email address")
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise _problem("email", "is not a valid email address") from None
    return value


def _phone(value: str) -> str:
    value = value.strip()
    digits = sum(character.isdigit() for character in value)
    if value and (not _PHONE.match(value) or digits < PHONE_MIN_DIGITS or len(value) > PHONE_MAX):
        raise _problem(
            "phone", "must be a phone number of at least {digits} digits, like +1 586 555 0100",
            digits=PHONE_MIN_DIGITS,
        )
    return value


def _date_text(value: object) -> object:
    # Numbers would be read as Unix timestamps: a date is text (or a date) only.
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _problem("date", "must be a date like 2019-04-23")


def _notes(value: str) -> str:
    if _NOT_PLAIN_TEXT.search(value):
        raise _problem(
            "control_characters", "must not contain control characters other than line breaks"
        )
    value = value.strip()
    if len(value) > NOTES_MAX:
        raise _problem("too_long", "must be at most {max} characters", max=NOTES_MAX)
    return value


PersonName = Annotated[
    str,
    BeforeValidator(_text),
    AfterValidator(_person_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": NAME_MAX}),
]
Email = Annotated[
    str,
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": EMAIL_MAX}),
]
Phone = Annotated[
    str,
    BeforeValidator(_text),
    AfterValidator(_phone),
    WithJsonSchema({
        "type": "string", "maxLength": PHONE_MAX, "pattern": r"^[0-9+().\- ]*$",
        "description": f"at least {PHONE_MIN_DIGITS} digits; required for a call",
    }),
]
DateOfBirth = Annotated[
    date | None,
    BeforeValidator(_date_text),
    WithJsonSchema({"type": "string", "format": "date", "description": "YYYY-MM-DD"}),
]
Notes = Annotated[
    str,
    BeforeValidator(_text),
    AfterValidator(_notes),
    WithJsonSchema({"type": "string", "maxLength": NOTES_MAX}),
]
Language = Annotated[
    str,
    BeforeValidator(_text),
    WithJsonSchema({
        "type": "string", "maxLength": 16,
        "description": "one of the clinic's languages; default the first",
    }),
]


# --- the patient ---------------------------------------------------------------------------


class PatientDetails(BaseModel):
    """Who the visit is for, as given with one booking.

    For a child (under 18), `email` and `phone` are the guardian's and `guardian_name` is
    required. A phone is required when the service is a call: the clinic calls that number.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[PersonName, AfterValidator(_required_name)]
    email: Email
    phone: Phone = Field("", validate_default=True)
    date_of_birth: DateOfBirth = None
    guardian_name: PersonName = ""
    language: Language = Field("", validate_default=True)

    @field_validator("phone")
    @classmethod
    def _a_phone_for_a_call(cls, phone: str, info: ValidationInfo) -> str:
        if not phone and _context(info).get("service_kind") == ServiceKind.CALL:
            raise _problem("required", "is required for a call: the clinic calls this number")
        return phone

    @field_validator("date_of_birth")
    @classmethod
    def _a_plausible_birth(cls, born: date | None, info: ValidationInfo) -> date | None:
        if born is None:
            return None
        today = clinic_today(_context(info)["zone"])
        if born > today:
            raise _problem("future", "cannot be in the future")
        if born.year < today.year - OLDEST_PATIENT_YEARS:
            raise _problem("too_old", "is more than {years} years ago: check the year",
                           years=OLDEST_PATIENT_YEARS)
        return born

    @field_validator("language")
    @classmethod
    def _a_clinic_language(cls, language: str, info: ValidationInfo) -> str:
        languages = _context(info)["languages"]
        if not language:
            return languages[0]
        if language not in languages:
            raise _problem("language", "must be one of the clinic's languages: {languages}",
                           languages=", ".join(languages))
        return language

    @model_validator(mode="after")
    def _an_email_or_at_the_desk_a_phone(self, info: ValidationInfo) -> PatientDetails:
        # The front desk may book a walk-in who has no email: the phone reaches them, and no
        # mail is sent for the visit. Everywhere else the email is where the booking goes.
        if self.email:
            return self
        if _context(info).get("email_optional_with_phone"):
            if self.phone:
                return self
            raise _field_problem("email", "required", "is required unless a phone is given")
        raise _field_problem("email", "required", "must not be empty")

    @model_validator(mode="after")
    def _a_guardian_for_a_child(self, info: ValidationInfo) -> PatientDetails:
        if self.date_of_birth is None or self.guardian_name:
            return self
        if age_on(self.date_of_birth, clinic_today(_context(info)["zone"])) < ADULT_AGE:
            raise _guardian_required()
        return self

    @classmethod
    def on_record(cls, patient) -> PatientDetails:
        """A known patient's details as the clinic holds them.

        Not checked again: they were checked when written, and a rule added since must not
        stop the front desk from booking someone the clinic already knows.
        """
        return cls.model_construct(
            name=patient.name, email=patient.email, phone=patient.phone or "",
            date_of_birth=patient.date_of_birth, guardian_name=patient.guardian_name or "",
            language=details_context()["languages"][0],
        )


def _field_problem(field: str, kind: str, message: str) -> ValidationError:
    # Raised from the model's check, for the field to fix.
    return ValidationError.from_exception_data(
        "PatientDetails",
        [{"type": PydanticCustomError(kind, message), "loc": (field,), "input": ""}],
    )


def _guardian_required() -> ValidationError:
    # Raised from the model's check, but the field to fix is the guardian's name.
    return ValidationError.from_exception_data(
        "PatientDetails",
        [{
            "type": PydanticCustomError(
                "required", "is required for a child (under {age}): their guardian's name",
                {"age": ADULT_AGE},
            ),
            "loc": ("guardian_name",),
            "input": "",
        }],
    )


class BookingDetails(BaseModel):
    """What a patient gives with a booking: who the visit is for, and a note for the clinic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient: PatientDetails
    notes: Notes = ""
