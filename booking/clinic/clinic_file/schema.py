"""What a clinic file may say, as pydantic models shaped like the file: [clinic], [[services]],
[[therapists]] with their hours and time off.

Unknown keys are refused at every level (extra="forbid"). Each value is checked by one type
here, whose message says what is wrong and shows the value as written; problems.py puts the
file's name and the key path in front. Checks that span keys (a slug used twice, a service a
therapist offers that the file does not have, notice longer than the booking window) are
validators on the model that holds both keys, and still name the one key at fault.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Callable, Hashable
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from booking.models.clinic import (
    AFTERCARE_ADVICE,
    DISCIPLINES,
    FEED_DETAILS,
    LONGEST_BUFFER_MINUTES,
    LONGEST_VISIT_MINUTES,
    ServiceKind,
)
from booking.rules import weekly_hours
from booking.rules.availability import TimeOff, WorkingHours
from booking.rules.durations import parse_duration
from booking.rules.shown_values import is_control, shown

SERVICE_KINDS = tuple(kind.value for kind in ServiceKind)
WEEKDAYS = weekly_hours.WEEKDAYS

# Limits that match the columns, or that no real clinic comes near: a value past them is a typo.
NAME_MAX = 200
EMAIL_MAX = 254
PHONE_MAX = 40
ADDRESS_MAX = 300
DESCRIPTION_MAX = 300
SLUG_MAX = 64
TIMEZONE_MAX = 64
HOURS_IN_A_YEAR = 365 * 24
MAX_ADVANCE_DAYS_LIMIT = 730
# A weekly series longer than a year of weekly visits is no series a patient books online.
MAX_SERIES_VISITS_LIMIT = 52

SLOT_STEPS = tuple(step for step in range(1, 61) if 60 % step == 0)

# The error type of every message written here; problems.py shows its text as it is.
PROBLEM = "clinic_file"
# Validation context: the slugs of the file's services, for the therapists' `services`.
SERVICE_SLUGS = "service slugs"
# Validation context: the slugs of the file's [[forms]], for a service's `forms`.
FORM_SLUGS = "form slugs"

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LOCAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?")
_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})"
)
# Zone files that exist on disk but are not a place: a clinic must name where it is.
_NOT_A_PLACE = {"localtime", "posixrules", "Factory"}
_EMAIL = TypeAdapter(EmailStr)


def problem(message: str) -> PydanticCustomError:
    return PydanticCustomError(PROBLEM, message)


def problems_at(found: list[tuple[tuple[str | int, ...], str, Any]]) -> ValidationError:
    """Several problems (location below the value, message, value) raised as one.

    pydantic puts the location of the value being validated in front of each.
    """
    return ValidationError.from_exception_data(
        "clinic file",
        [
            InitErrorDetails(type=problem(message), loc=loc, input=value)
            for loc, message, value in found
        ],
    )


def raised_again(errors: list[dict], prefix: tuple[str | int, ...] = ()) -> list[InitErrorDetails]:
    """Errors caught from a nested validation, to raise again with more problems."""
    return [
        InitErrorDetails(
            type=problem(error["msg"]) if error["type"] == PROBLEM else error["type"],
            loc=(*prefix, *error["loc"]),
            input=error["input"],
            **({"ctx": error["ctx"]} if "ctx" in error else {}),
        )
        for error in errors
    ]


def did_you_mean(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


# --- One type per kind of value -------------------------------------------------------------


def _text(limit: int, *, required: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise problem(f"must be text in quotes (got {shown(value)})")
        # Names and addresses end up in mail headers and calendar lines: one line, nothing hidden.
        hidden = next((char for char in value if is_control(char)), None)
        if hidden is not None:
            raise problem(
                "must be one line of text without control characters "
                f"(found {shown(hidden)} in {shown(value)})"
            )
        if len(value) > limit:
            raise problem(f"is {len(value)} characters long; at most {limit} are allowed")
        if required and not value.strip():
            raise problem("must not be empty")
        return value

    return check


def one_line_text(limit: int, *, required: bool = False) -> Any:
    """The type of a one-line text key of at most limit characters."""
    return Annotated[str, PlainValidator(_text(limit, required=required))]


Name = one_line_text(NAME_MAX, required=True)

# The languages a clinic may offer its patients: those with a catalog in booking/translations
# (English is the source language).
LANGUAGES = ("en", "es", "ar")


def _languages(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise problem(f'must be a list of languages like ["en", "es"] (got {shown(value)})')
    if not value:
        raise problem("must name at least one language; the first is the default")
    for item in value:
        if item not in LANGUAGES:
            raise problem(
                f"{shown(item)} is not a language the booking pages are written in: "
                f"use {', '.join(LANGUAGES)}"
            )
    repeated = next((item for index, item in enumerate(value) if item in value[:index]), None)
    if repeated is not None:
        raise problem(f"{shown(repeated)} is listed twice")
    return tuple(value)


Languages = Annotated[tuple[str, ...], PlainValidator(_languages)]


def text_in_languages(limit: int, *, required: bool = False) -> Any:
    """A text key a patient reads: one string, or one per language
    (`name = { en = "Evaluation", es = "Evaluación" }`). ClinicSpec checks the languages
    against [clinic] languages."""
    plain = _text(limit, required=required)

    def check(value: Any) -> str | dict[str, str]:
        if not isinstance(value, dict):
            return plain(value)
        if not value:
            raise problem('must be text in quotes, or a table like { en = "...", es = "..." }')
        texts = {}
        for language, text in value.items():
            if language not in LANGUAGES:
                raise problem(f"{shown(language)} is not a language: use {', '.join(LANGUAGES)}")
            try:
                texts[language] = plain(text)
            except PydanticCustomError as error:
                raise problem(f"{language}: {error.message()}") from None
        return texts

    return Annotated[str | dict[str, str], PlainValidator(check)]
_slug_text = _text(SLUG_MAX, required=True)


def _slug(value: Any) -> str:
    text = _slug_text(value)
    if not _SLUG.fullmatch(text):
        raise problem(
            "must be lowercase letters, digits and single hyphens between them, "
            f'like "dry-needling" (got {shown(text)})'
        )
    return text


Slug = Annotated[str, PlainValidator(_slug)]


def _email(*, optional: bool) -> Callable[[Any], str]:
    as_text = _text(EMAIL_MAX, required=not optional)

    def check(value: Any) -> str:
        text = as_text(value)
        if optional and text == "":
            return text
        try:
            _EMAIL.validate_python(text)
        except ValidationError:
            raise problem(
                f'must be an email address like "frontdesk@clinic.example" (got {shown(text)})'
            ) from None
        return text  # as written: an export gives back what the clinic wrote

    return check


def _website(value: Any) -> str:
    text = _text(ADDRESS_MAX)(value)
    if text and (not text.startswith(("https://", "http://")) or " " in text):
        raise problem(f'must be a web address like "https://clinic.example" (got {shown(text)})')
    return text


@lru_cache(maxsize=1)
def _known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - _NOT_A_PLACE)


def _time_zone(value: Any) -> str:
    text = _text(TIMEZONE_MAX, required=True)(value)
    if text not in _known_time_zones():
        hint = did_you_mean(text, sorted(_known_time_zones()))
        raise problem(
            f'unknown time zone {shown(text)}: use an IANA name like "America/Detroit"{hint}'
        )
    return text


def _is_whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not 1


def whole_number(low: int, high: int) -> Any:
    """The type of a whole-number key from low to high."""

    def check(value: Any) -> int:
        if not _is_whole_number(value):
            raise problem(f"must be a whole number (got {shown(value)})")
        if value < 0:
            raise problem(f"must not be negative (got {value})")
        if value < low:
            raise problem(f"must be at least {low} (got {value})")
        if value > high:
            raise problem(f"must be at most {high} (got {value})")
        return value

    return Annotated[int, PlainValidator(check)]


def _slot_step(value: Any) -> int:
    if not _is_whole_number(value):
        raise problem(f"must be a whole number of minutes (got {shown(value)})")
    if value not in SLOT_STEPS:
        steps = ", ".join(str(step) for step in SLOT_STEPS[:-1])
        raise problem(
            f"must be a number of minutes that divides an hour evenly: {steps} or 60 (got {value})"
        )
    return value


def _yes_or_no(value: Any) -> bool:
    if not isinstance(value, bool):
        raise problem(f"must be true or false (got {shown(value)})")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise problem(f"must be one of {', '.join(choices)} (got {shown(value)})")
        return value

    return check


def one_of(choices: tuple[str, ...]) -> Any:
    """The type of a key that is one of a few words."""
    return Annotated[str, PlainValidator(_choice(choices))]


def _listed_twice(item: Any, earlier: int, _earlier_item: Any) -> str:
    return f"{shown(item)} is listed twice (also at [{earlier}])"


def _list_of(
    read_item: Callable[[Any], Any],
    example: str,
    *,
    same: Callable[[Any], Hashable] = lambda item: item,
    repeated: Callable[[Any, int, Any], str] = _listed_twice,
) -> Callable[[Any], tuple]:
    """A check for a list: every item read, every bad one and every repeat reported at once."""

    def check(value: Any) -> tuple:
        # A tuple: the same list given from Python, as in ServiceSpec(reminders=("48h",)).
        if not isinstance(value, list | tuple):
            raise problem(f"must be a list, like {example} (got {shown(value)})")
        found = []
        items: list[Any] = []
        first_index: dict[Hashable, int] = {}
        for index, item in enumerate(value):
            try:
                items.append(read_item(item))
            except (PydanticCustomError, ValueError) as error:
                message = error.message() if isinstance(error, PydanticCustomError) else str(error)
                found.append(((index,), message, item))
                continue
            key = same(items[-1])
            if key in first_index:
                earlier = first_index[key]
                found.append(((index,), repeated(item, earlier, value[earlier]), item))
            else:
                first_index[key] = index
        if found:
            raise problems_at(found)
        return tuple(items)

    return check


def _the_same_moment(item: Any, earlier: int, earlier_item: Any) -> str:
    # "1h" and "60m" are the same moment: the patient would get the same message twice.
    return f"{shown(item)} is the same moment as [{earlier}] ({shown(earlier_item)})"


def _duration_as_written(item: Any) -> str:
    parse_duration(item)  # raises DurationError, a ValueError, with the message
    return item


# Kept as written ("48h"): the file speaks durations; the database keeps timedeltas.
Durations = Annotated[
    tuple[str, ...],
    PlainValidator(
        _list_of(
            _duration_as_written,
            '["48h", "2h"]',
            same=parse_duration,
            repeated=_the_same_moment,
        )
    ),
]
Disciplines = Annotated[
    tuple[str, ...], PlainValidator(_list_of(_choice(DISCIPLINES), f'["{DISCIPLINES[0]}"]'))
]


def _services_offered(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    known = [slug for slug in (info.context or {}).get(SERVICE_SLUGS, ()) if isinstance(slug, str)]

    def offered(item: Any) -> str:
        if not isinstance(item, str):
            raise problem(f"must be a service slug in quotes (got {shown(item)})")
        if info.context is not None and item not in known:
            raise problem(f"no service {shown(item)} in this file{did_you_mean(item, known)}")
        return item

    return _list_of(offered, '["schedule-a-call"]')(value)


ServicesOffered = Annotated[tuple[str, ...], PlainValidator(_services_offered)]


def _forms_asked(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    known = [slug for slug in (info.context or {}).get(FORM_SLUGS, ()) if isinstance(slug, str)]

    def asked(item: Any) -> str:
        if not isinstance(item, str):
            raise problem(f"must be a form slug in quotes (got {shown(item)})")
        if info.context is not None and item not in known:
            raise problem(f"no form {shown(item)} in this file{did_you_mean(item, known)}")
        return item

    return _list_of(asked, '["dry-needling-screening"]')(value)


FormsAsked = Annotated[tuple[str, ...], PlainValidator(_forms_asked)]


def _weekly_hours(value: Any) -> tuple[WorkingHours, ...]:
    if not isinstance(value, dict):
        raise problem(
            f'must be a table of weekdays, written hours.mon = ["08:00-12:00"] (got {shown(value)})'
        )
    found = []
    windows: list[WorkingHours] = []
    for day, written in value.items():
        if day not in WEEKDAYS:
            hint = did_you_mean(day[:3].lower(), WEEKDAYS)
            found.append(((day,), f"unknown weekday{hint}; use {', '.join(WEEKDAYS)}", written))
        elif not isinstance(written, list):
            example = '["08:00-12:00", "13:00-17:00"]'
            found.append(
                ((day,), f"must be a list, like {example} (got {shown(written)})", written)
            )
        else:
            try:
                windows.extend(weekly_hours.day_windows(WEEKDAYS.index(day), written))
            except weekly_hours.DayHoursError as error:
                found.extend(
                    ((day, each.index), each.message, written[each.index])
                    for each in error.problems
                )
    if found:
        raise problems_at(found)
    return tuple(weekly_hours.in_week_order(windows))


WeeklyHours = Annotated[tuple[WorkingHours, ...], PlainValidator(_weekly_hours)]


def _local_datetime(value: Any) -> datetime:
    """A clinic wall-clock moment: "2026-12-24T00:00" (seconds optional), never an offset."""
    no_offset = "must be clinic wall-clock time, without a time zone offset"
    example = 'like "2026-12-24T00:00"'
    # An unquoted TOML date-time arrives already parsed.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise problem(f"{no_offset} (got {value.isoformat()})")
        if value.microsecond:
            raise problem(f"must be whole seconds (got {value.isoformat()})")
        return value
    if isinstance(value, date):
        raise problem(f"must be a date and a time, {example} (got {value.isoformat()})")
    if isinstance(value, str) and _WITH_OFFSET.fullmatch(value):
        raise problem(f"{no_offset} (got {shown(value)})")
    if not isinstance(value, str) or not _LOCAL_DATETIME.fullmatch(value):
        raise problem(f"must be a date and a time, {example} (got {shown(value)})")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise problem(f"{shown(value)} is not a real date and time") from None


def local_datetime_text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")


class TimeOffEntry(BaseModel):
    """One table of a therapist's time_off list, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Annotated[datetime, PlainValidator(_local_datetime)]
    end: Annotated[datetime, PlainValidator(_local_datetime)]
    reason: one_line_text(NAME_MAX) = ""

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> TimeOffEntry:
        if self.end <= self.start:
            message = f"must be after start ({local_datetime_text(self.start)})"
            raise problems_at([(("end",), message, self.end)])
        return self


def _time_off(value: Any) -> tuple[TimeOff, ...]:
    example = '[{ start = "2026-12-24T00:00", end = "2026-12-27T00:00", reason = "Holiday" }]'
    if not isinstance(value, list):
        raise problem(f"must be a list, like {example} (got {shown(value)})")
    errors: list[InitErrorDetails] = []
    periods: list[TimeOff] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            message = f"must be a table {{ start = ..., end = ... }} (got {shown(item)})"
            errors.append(InitErrorDetails(type=problem(message), loc=(index,), input=item))
            continue
        try:
            entry = TimeOffEntry.model_validate(item)
        except ValidationError as error:
            errors.extend(raised_again(error.errors(), (index,)))
            continue
        periods.append(TimeOff(entry.start, entry.end, entry.reason))
    if errors:
        raise ValidationError.from_exception_data("clinic file", errors)
    return tuple(sorted(periods, key=lambda period: (period.start, period.end, period.reason)))


TimeOffList = Annotated[tuple[TimeOff, ...], PlainValidator(_time_off)]


def _tables_with_unique_slugs(key: str) -> Callable:
    """The [[services]] or [[therapists]] tables: a list of tables, no slug used twice."""

    def check(value: Any, handler: Callable) -> Any:
        if isinstance(value, dict):
            raise problem(f"must be a list of tables: write [[{key}]], not [{key}]")
        if not isinstance(value, list):
            raise problem(f"must be a list of tables, [[{key}]] (got {shown(value)})")
        errors: list[InitErrorDetails] = []
        try:
            tables = handler(value)
        except ValidationError as error:
            errors.extend(raised_again(error.errors()))
            tables = None
        first_use: dict[str, int] = {}
        for index, table in enumerate(value):
            slug = table.get("slug") if isinstance(table, dict) else None
            if not isinstance(slug, str):
                continue
            if slug in first_use:
                message = f"{shown(slug)} is already used by {key}[{first_use[slug]}]"
                errors.append(
                    InitErrorDetails(type=problem(message), loc=(index, "slug"), input=slug)
                )
            else:
                first_use[slug] = index
        if errors:
            raise ValidationError.from_exception_data("clinic file", errors)
        return tables

    return WrapValidator(check)


# --- The file -------------------------------------------------------------------------------

_FORBID = ConfigDict(extra="forbid", frozen=True)


class ClinicDetails(BaseModel):
    """The [clinic] table: who the clinic is and how its calendar runs."""

    model_config = _FORBID

    name: Name
    timezone: Annotated[str, PlainValidator(_time_zone)]
    email: Annotated[str, PlainValidator(_email(optional=False))]
    phone: one_line_text(PHONE_MAX, required=True)
    address: one_line_text(ADDRESS_MAX) = ""
    website: Annotated[str, PlainValidator(_website)] = ""
    slot_step_minutes: Annotated[int, PlainValidator(_slot_step)] = 15
    feed_details: one_of(FEED_DETAILS) = FEED_DETAILS[0]
    # Patient pages and mail; the first is the default, and what a text is not given in.
    languages: Languages = ("en",)


class ServiceSpec(BaseModel):
    """One [[services]] table: what patients can book, and how."""

    model_config = _FORBID

    slug: Slug
    name: text_in_languages(NAME_MAX, required=True)
    description: text_in_languages(DESCRIPTION_MAX) = ""
    kind: one_of(SERVICE_KINDS)
    duration_minutes: whole_number(1, LONGEST_VISIT_MINUTES)
    buffer_after_minutes: whole_number(0, LONGEST_BUFFER_MINUTES) = 0
    min_notice_hours: whole_number(0, HOURS_IN_A_YEAR) = 0
    max_advance_days: whole_number(1, MAX_ADVANCE_DAYS_LIMIT) = 60
    reminders: Durations = ()
    aftercare: Durations = ()
    aftercare_advice: one_of(AFTERCARE_ADVICE) = AFTERCARE_ADVICE[0]
    requires_evaluation: Annotated[bool, PlainValidator(_yes_or_no)] = False
    # > 0: patients may book a weekly series online, up to this many visits.
    max_series_visits: whole_number(0, MAX_SERIES_VISITS_LIMIT) = 0
    requires_clearance: Annotated[bool, PlainValidator(_yes_or_no)] = False
    forms: FormsAsked = ()  # form slugs, completed before the first visit

    @model_validator(mode="after")
    def _bookable_at_all(self) -> ServiceSpec:
        if timedelta(hours=self.min_notice_hours) >= timedelta(days=self.max_advance_days):
            message = (
                f"{self.min_notice_hours} hours of notice reaches past max_advance_days "
                f"({self.max_advance_days} days): nothing could ever be booked online"
            )
            raise problems_at([(("min_notice_hours",), message, self.min_notice_hours)])
        return self


class TherapistSpec(BaseModel):
    """One [[therapists]] table: who sees patients, for what, and when."""

    model_config = _FORBID

    slug: Slug
    name: Name
    email: Annotated[str, PlainValidator(_email(optional=True))] = ""
    disciplines: Disciplines = ()
    services: ServicesOffered = ()  # service slugs
    hours: WeeklyHours = ()  # sorted by weekday, then start
    time_off: TimeOffList = ()  # sorted by start, end, reason


QUESTION_TYPES = ("yes_no", "text")
YES_NO = ("yes", "no")
CONSENT_MAX = 20_000
_QUESTION_KEY = re.compile(r"[a-z][a-z0-9_]*")


def _question_key(value: Any) -> str:
    text = _text(SLUG_MAX, required=True)(value)
    if not _QUESTION_KEY.fullmatch(text):
        raise problem(
            'must be lowercase letters, digits and underscores, starting with a letter, like '
            f'"blood_thinners" (got {shown(text)})'
        )
    return text


def _consent(value: Any) -> str:
    # The consent is paragraphs: line breaks are its own; nothing else hidden.
    if not isinstance(value, str):
        raise problem(f"must be text in quotes (got {shown(value)})")
    hidden = next((char for char in value if is_control(char) and char not in "\n\t"), None)
    if hidden is not None:
        raise problem(f"must be text without control characters (found {shown(hidden)})")
    if len(value) > CONSENT_MAX:
        raise problem(f"is {len(value)} characters long; at most {CONSENT_MAX} are allowed")
    if not value.strip():
        raise problem("must not be empty: it is what the patient signs")
    return value


class FormQuestion(BaseModel):
    """One question of a form: `review_if` ("yes" or "no", yes_no questions only) is the answer
    that has a therapist go over the form before treatment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, PlainValidator(_question_key)]
    text: one_line_text(DESCRIPTION_MAX, required=True)
    type: one_of(QUESTION_TYPES)
    review_if: one_of(YES_NO) | None = None

    @model_validator(mode="after")
    def _review_if_answerable(self) -> FormQuestion:
        if self.review_if is not None and self.type != "yes_no":
            message = "only a yes_no question has review_if (its answer, yes or no)"
            raise problems_at([(("review_if",), message, self.review_if)])
        return self


def _questions(value: Any, handler: Callable) -> Any:
    if not isinstance(value, list | tuple):
        raise problem(
            'must be a list of tables, like [{ key = "pregnant", text = "...", type = "yes_no" }]'
        )
    errors: list[InitErrorDetails] = []
    try:
        questions = handler(value)
    except ValidationError as error:
        errors.extend(raised_again(error.errors()))
        questions = None
    first_use: dict[str, int] = {}
    for index, item in enumerate(value):
        key = item.get("key") if isinstance(item, dict) else getattr(item, "key", None)
        if not isinstance(key, str):
            continue
        if key in first_use:
            message = f"{shown(key)} is already the key of question [{first_use[key]}]"
            errors.append(InitErrorDetails(type=problem(message), loc=(index, "key"), input=key))
        else:
            first_use[key] = index
    if errors:
        raise ValidationError.from_exception_data("clinic file", errors)
    return questions


class FormSpec(BaseModel):
    """One [[forms]] table: a health screening and consent form, as the patient reads it.

    `version` is stored with every signed form: a changed text needs a new version, so that
    patients who signed the old one are asked again."""

    model_config = _FORBID

    slug: Slug
    title: Name
    version: one_line_text(SLUG_MAX, required=True)
    consent: Annotated[str, PlainValidator(_consent)]
    questions: Annotated[tuple[FormQuestion, ...], WrapValidator(_questions)] = ()


class ClinicSpec(BaseModel):
    """A whole clinic file. Validate with the services' slugs in the context (SERVICE_SLUGS),
    so that a therapist cannot offer a service the file does not have, and the forms' slugs
    (FORM_SLUGS), so that a service cannot ask for a form the file does not have."""

    model_config = _FORBID

    clinic: ClinicDetails
    services: Annotated[tuple[ServiceSpec, ...], _tables_with_unique_slugs("services")] = ()
    therapists: Annotated[tuple[TherapistSpec, ...], _tables_with_unique_slugs("therapists")] = ()
    forms: Annotated[tuple[FormSpec, ...], _tables_with_unique_slugs("forms")] = ()

    @model_validator(mode="after")
    def _texts_in_the_clinics_languages(self) -> ClinicSpec:
        """A text given per language is in the clinic's languages, and in its first one: that is
        what a patient reads when their own language is missing."""
        offered = self.clinic.languages
        found = []
        for index, service in enumerate(self.services):
            for key in ("name", "description"):
                texts = getattr(service, key)
                if not isinstance(texts, dict):
                    continue
                unknown = [language for language in texts if language not in offered]
                if unknown:
                    found.append(((("services", index, key)), (
                        f"{shown(unknown[0])} is not one of the clinic's languages "
                        f"({', '.join(offered)})"), texts))
                elif offered[0] not in texts:
                    found.append(((("services", index, key)), (
                        f"must have the clinic's first language ({offered[0]}): it is shown "
                        "where a translation is missing"), texts))
        if found:
            raise problems_at(found)
        return self


# Where each model sits in the file, by the keys leading to it: for the "known keys" hint.
MODELS_BY_PLACE: dict[tuple[str, ...], type[BaseModel]] = {
    (): ClinicSpec,
    ("clinic",): ClinicDetails,
    ("services",): ServiceSpec,
    ("therapists",): TherapistSpec,
    ("therapists", "time_off"): TimeOffEntry,
    ("forms",): FormSpec,
    ("forms", "questions"): FormQuestion,
}
