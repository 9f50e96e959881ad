"""The clinic file: one TOML file that says who the clinic is, what patients can book and who
works when. Read it into plain values (no database), write those into the database, and
export the database back as the same kind of file. docs/clinic-file.md describes every key.

Reading never stops at the first mistake: every problem is collected and reported at once,
one per line, each naming the file, the key and what is wrong, so the clinic fixes its file
in one go. Writing never commits: the caller commits once, so a file is loaded whole or not
at all.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import unicodedata
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import select

from booking.extensions import db
from booking.models import DISCIPLINES, Clinic, Service, ServiceKind, Therapist, TimeOff
from booking.models import WorkingHours as WorkingHoursRow
from booking.models.clinic import FEED_DETAILS

DEMO_CLINIC_FILE = Path(__file__).with_name("demo_clinic.toml")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = WorkingHours.weekday
SERVICE_KINDS = tuple(kind.value for kind in ServiceKind)

# Limits that match the columns, or that no real clinic comes near: a value past them is a typo.
NAME_MAX = 200
EMAIL_MAX = 254
PHONE_MAX = 40
ADDRESS_MAX = 300
DESCRIPTION_MAX = 300
SLUG_MAX = 64
TIMEZONE_MAX = 64
MINUTES_IN_A_DAY = 24 * 60
HOURS_IN_A_YEAR = 365 * 24
MAX_ADVANCE_DAYS_LIMIT = 730
# A weekly series longer than a year of weekly visits is no series a patient books online.
MAX_SERIES_VISITS_LIMIT = 52
DURATION_LIMIT = timedelta(days=365)

SLOT_STEPS = tuple(step for step in range(1, 61) if 60 % step == 0)

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DURATION = re.compile(r"([1-9][0-9]*)([mhd])")
_MINUTES_PER_UNIT = {"m": 1, "h": 60, "d": 24 * 60}
_WINDOW = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
_LOCAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?")
_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})"
)
_TOML_POSITION = re.compile(r"(.*) \((?:at line (\d+), column (\d+)|at end of document)\)", re.S)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

# Zone files that exist on disk but are not a place: a clinic must name where it is.
_NOT_A_PLACE = {"localtime", "posixrules", "Factory"}


# --- What a clinic file says, as plain values -------------------------------------------------


@dataclass(frozen=True, order=True)
class WorkingWindow:
    """One weekly window of a therapist's hours, clinic wall clock."""

    weekday: int  # 0 = Monday, as in the working_hours table
    start: time
    end: time


@dataclass(frozen=True)
class TimeOffSpec:
    """A period a therapist does not see patients, clinic wall clock (naive datetimes)."""

    start: datetime
    end: datetime
    reason: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    slug: str
    name: str
    kind: str
    duration_minutes: int
    buffer_after_minutes: int = 0
    min_notice_hours: int = 0
    max_advance_days: int = 60
    reminders: tuple[str, ...] = ()  # durations as written: "48h", "90m"
    aftercare: tuple[str, ...] = ()
    requires_evaluation: bool = False
    description: str = ""
    max_series_visits: int = 0  # > 0: a weekly series of up to this many visits, online


@dataclass(frozen=True)
class TherapistSpec:
    slug: str
    name: str
    email: str = ""
    disciplines: tuple[str, ...] = ()
    services: tuple[str, ...] = ()  # service slugs
    hours: tuple[WorkingWindow, ...] = ()  # sorted by weekday, then start
    time_off: tuple[TimeOffSpec, ...] = ()  # sorted by start, end, reason


@dataclass(frozen=True)
class ClinicSpec:
    name: str
    timezone: str
    email: str
    phone: str
    address: str = ""
    website: str = ""
    slot_step_minutes: int = 15
    feed_details: str = FEED_DETAILS[0]
    services: tuple[ServiceSpec, ...] = ()
    therapists: tuple[TherapistSpec, ...] = ()


@dataclass(frozen=True)
class Problem:
    where: str  # a key path such as "therapists[2].hours.mon[1]", or "line 4, column 7"
    what: str


class ClinicFileError(Exception):
    """A clinic file that cannot be loaded, with every problem found in it, one per line."""

    def __init__(self, filename: str, problems: list[Problem]):
        self.filename = filename
        self.problems = tuple(problems)
        lines = [
            f"{filename}: {problem.where}: {problem.what}"
            if problem.where
            else f"{filename}: {problem.what}"
            for problem in problems
        ]
        super().__init__("\n".join(lines))


# --- Reading --------------------------------------------------------------------------------


def read_clinic_file(path: str | Path) -> ClinicSpec:
    """The clinic file at path, read and checked. Raises ClinicFileError."""
    filename = str(path)
    try:
        # utf-8-sig: a file saved by Notepad starts with a byte-order mark; it means nothing.
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClinicFileError(
            filename, [Problem("", f"is not UTF-8 text (byte {exc.start} cannot be read)")]
        ) from None
    except OSError as exc:
        raise ClinicFileError(filename, [Problem("", f"cannot be read: {exc.strerror}")]) from None
    return parse_clinic_file(text, filename)


def parse_clinic_file(text: str, filename: str) -> ClinicSpec:
    """The clinic described by text, checked whole. Raises ClinicFileError listing every problem.

    filename only serves the messages.
    """
    try:
        document = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise ClinicFileError(filename, [_syntax_problem(exc)]) from None
    except RecursionError:
        # tomllib reads nested arrays and inline tables recursively: a hostile file nests
        # thousands deep. No clinic file nests more than three.
        raise ClinicFileError(
            filename, [Problem("", "nests arrays or tables too deeply to be a clinic file")]
        ) from None
    problems: list[Problem] = []
    spec = _clinic_spec(document, problems)
    if problems:
        raise ClinicFileError(filename, problems)
    return spec


def _syntax_problem(exc: tomllib.TOMLDecodeError) -> Problem:
    """tomllib's message ends with "(at line L, column C)"; lead with the place instead."""
    message = str(exc)
    match = _TOML_POSITION.fullmatch(message)
    if not match:
        return Problem("", f"is not valid TOML: {message}")
    reason, line, column = match.groups()
    where = f"line {line}, column {column}" if line else "end of file"
    return Problem(where, f"{reason[:1].lower()}{reason[1:]} (not valid TOML)")


_REQUIRED = object()


def _clinic_spec(document: dict, problems: list[Problem]) -> ClinicSpec:
    _refuse_unknown_keys(document, "", ("clinic", "services", "therapists"), problems)
    if "clinic" not in document:
        problems.append(
            Problem("clinic", "required table is missing; start the file with [clinic]")
        )
        clinic: dict = {}
    elif not isinstance(document["clinic"], dict):
        problems.append(
            Problem("clinic", f"must be a table, [clinic] (got {_shown(document['clinic'])})")
        )
        clinic = {}
    else:
        clinic = document["clinic"]
    _refuse_unknown_keys(clinic, "clinic", _CLINIC_KEYS, problems)

    def field(key: str, check: Callable, default: Any = _REQUIRED) -> Any:
        if not isinstance(document.get("clinic"), dict):
            return None  # already reported once; a line per missing key would be noise
        return _field(clinic, "clinic", key, check, problems, default)

    details = {
        "name": field("name", _name_check),
        "timezone": field("timezone", _check_timezone),
        "email": field("email", _email_check(optional=False)),
        "phone": field("phone", _text_check(PHONE_MAX, required=True)),
        "address": field("address", _text_check(ADDRESS_MAX), ""),
        "website": field("website", _check_website, ""),
        "slot_step_minutes": field("slot_step_minutes", _check_slot_step, 15),
        "feed_details": field("feed_details", _choice_check(FEED_DETAILS), FEED_DETAILS[0]),
    }
    service_tables = _array_of_tables(document, "services", problems)
    therapist_tables = _array_of_tables(document, "therapists", problems)
    services = tuple(
        _service_spec(table, f"services[{index}]", problems)
        for index, table in enumerate(service_tables)
    )
    _refuse_duplicate_slugs("services", service_tables, problems)
    service_slugs = [table.get("slug") for table in service_tables]
    therapists = tuple(
        _therapist_spec(table, f"therapists[{index}]", service_slugs, problems)
        for index, table in enumerate(therapist_tables)
    )
    _refuse_duplicate_slugs("therapists", therapist_tables, problems)
    return ClinicSpec(**details, services=services, therapists=therapists)


_CLINIC_KEYS = (
    "name",
    "timezone",
    "email",
    "phone",
    "address",
    "website",
    "slot_step_minutes",
    "feed_details",
)
_SERVICE_KEYS = (
    "slug",
    "name",
    "description",
    "kind",
    "duration_minutes",
    "buffer_after_minutes",
    "min_notice_hours",
    "max_advance_days",
    "reminders",
    "aftercare",
    "requires_evaluation",
    "max_series_visits",
)
_THERAPIST_KEYS = ("slug", "name", "email", "disciplines", "services", "hours", "time_off")
_TIME_OFF_KEYS = ("start", "end", "reason")


def _service_spec(table: dict, where: str, problems: list[Problem]) -> ServiceSpec:
    _refuse_unknown_keys(table, where, _SERVICE_KEYS, problems)

    def field(key: str, check: Callable, default: Any = _REQUIRED) -> Any:
        return _field(table, where, key, check, problems, default)

    spec = ServiceSpec(
        slug=field("slug", _check_slug),
        name=field("name", _name_check),
        description=field("description", _text_check(DESCRIPTION_MAX), ""),
        kind=field("kind", _choice_check(SERVICE_KINDS)),
        duration_minutes=field("duration_minutes", _whole_number_check(1, MINUTES_IN_A_DAY)),
        buffer_after_minutes=field(
            "buffer_after_minutes", _whole_number_check(0, MINUTES_IN_A_DAY), 0
        ),
        min_notice_hours=field("min_notice_hours", _whole_number_check(0, HOURS_IN_A_YEAR), 0),
        max_advance_days=field(
            "max_advance_days", _whole_number_check(1, MAX_ADVANCE_DAYS_LIMIT), 60
        ),
        reminders=field("reminders", _check_durations, ()),
        aftercare=field("aftercare", _check_durations, ()),
        requires_evaluation=field("requires_evaluation", _check_bool, False),
        max_series_visits=field(
            "max_series_visits", _whole_number_check(0, MAX_SERIES_VISITS_LIMIT), 0
        ),
    )
    if (
        isinstance(spec.min_notice_hours, int)
        and isinstance(spec.max_advance_days, int)
        and spec.min_notice_hours >= spec.max_advance_days * 24
    ):
        problems.append(
            Problem(
                f"{where}.min_notice_hours",
                f"{spec.min_notice_hours} hours of notice reaches past max_advance_days "
                f"({spec.max_advance_days} days): nothing could ever be booked online",
            )
        )
    return spec


def _therapist_spec(
    table: dict, where: str, service_slugs: list, problems: list[Problem]
) -> TherapistSpec:
    _refuse_unknown_keys(table, where, _THERAPIST_KEYS, problems)

    def field(key: str, check: Callable, default: Any = _REQUIRED) -> Any:
        return _field(table, where, key, check, problems, default)

    return TherapistSpec(
        slug=field("slug", _check_slug),
        name=field("name", _name_check),
        email=field("email", _email_check(optional=True), ""),
        disciplines=field("disciplines", _list_of_choices_check(DISCIPLINES), ()),
        services=field("services", _services_offered_check(service_slugs), ()),
        hours=field("hours", _check_hours, ()),
        time_off=field("time_off", _check_time_off, ()),
    )


# --- Checks. Each takes (value, key path, problems) and returns the value to keep, or None
# after noting a problem. None never escapes: the spec is discarded when there are problems.


def _field(
    table: dict, where: str, key: str, check: Callable, problems: list[Problem], default: Any
) -> Any:
    path = f"{where}.{key}" if where else key
    if key not in table:
        if default is _REQUIRED:
            problems.append(Problem(path, "required key is missing"))
            return None
        return default
    return check(table[key], path, problems)


def _refuse_unknown_keys(
    table: dict, where: str, known: tuple[str, ...], problems: list[Problem]
) -> None:
    for key in table:
        if key not in known:
            hint = _did_you_mean(key, known) or f"; known keys: {', '.join(known)}"
            problems.append(Problem(_key_path(where, key), f"unknown key{hint}"))


def _array_of_tables(document: dict, key: str, problems: list[Problem]) -> list[dict]:
    """The [[services]] or [[therapists]] tables; tables with the wrong shape are reported."""
    value = document.get(key, [])
    if isinstance(value, dict):
        problems.append(Problem(key, f"must be a list of tables: write [[{key}]], not [{key}]"))
        return []
    if not isinstance(value, list):
        problems.append(Problem(key, f"must be a list of tables, [[{key}]] (got {_shown(value)})"))
        return []
    tables = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            tables.append(item)
        else:
            problems.append(Problem(f"{key}[{index}]", f"must be a table (got {_shown(item)})"))
            tables.append({})
    return tables


def _refuse_duplicate_slugs(key: str, tables: list[dict], problems: list[Problem]) -> None:
    first_use: dict[str, int] = {}
    for index, table in enumerate(tables):
        slug = table.get("slug")
        if not isinstance(slug, str):
            continue
        if slug in first_use:
            problems.append(
                Problem(
                    f"{key}[{index}].slug",
                    f"{_shown(slug)} is already used by {key}[{first_use[slug]}]",
                )
            )
        else:
            first_use[slug] = index


def _check_text(
    value: Any, path: str, problems: list[Problem], *, limit: int, required: bool = False
) -> str | None:
    if not isinstance(value, str):
        problems.append(Problem(path, f"must be text in quotes (got {_shown(value)})"))
        return None
    # Names and addresses end up in mail headers and calendar lines: one line, nothing hidden.
    hidden = next((char for char in value if _is_control(char)), None)
    if hidden is not None:
        problems.append(
            Problem(
                path,
                "must be one line of text without control characters "
                f"(found {_shown(hidden)} in {_shown(value)})",
            )
        )
        return None
    if len(value) > limit:
        problems.append(
            Problem(path, f"is {len(value)} characters long; at most {limit} are allowed")
        )
        return None
    if required and not value.strip():
        problems.append(Problem(path, "must not be empty"))
        return None
    return value


def _text_check(limit: int, *, required: bool = False) -> Callable:
    def check(value: Any, path: str, problems: list[Problem]) -> str | None:
        return _check_text(value, path, problems, limit=limit, required=required)

    return check


_name_check = _text_check(NAME_MAX, required=True)


def _is_control(char: str) -> bool:
    # Cc: C0/C1 controls, tab, newline, DEL. Zl/Zp: Unicode line and paragraph separators.
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"}


def _check_slug(value: Any, path: str, problems: list[Problem]) -> str | None:
    text = _check_text(value, path, problems, limit=SLUG_MAX, required=True)
    if text is None:
        return None
    if not _SLUG.fullmatch(text):
        problems.append(
            Problem(
                path,
                "must be lowercase letters, digits and single hyphens between them, "
                f'like "dry-needling" (got {_shown(text)})',
            )
        )
        return None
    return text


def _email_check(*, optional: bool) -> Callable:
    def check(value: Any, path: str, problems: list[Problem]) -> str | None:
        text = _check_text(value, path, problems, limit=EMAIL_MAX, required=not optional)
        if text is None or (optional and text == ""):
            return text
        if not _looks_like_email(text):
            problems.append(
                Problem(
                    path,
                    'must be an email address like "frontdesk@clinic.example" '
                    f"(got {_shown(text)})",
                )
            )
            return None
        return text

    return check


def _looks_like_email(text: str) -> bool:
    """A plain check, not RFC 5322: one @, something before it, a dotted domain, no spaces."""
    if text.count("@") != 1 or any(char.isspace() for char in text):
        return False
    local, domain = text.split("@")
    labels = domain.split(".")
    return bool(local) and len(labels) >= 2 and all(labels)


def _check_website(value: Any, path: str, problems: list[Problem]) -> str | None:
    text = _check_text(value, path, problems, limit=ADDRESS_MAX)
    if text and (not text.startswith(("https://", "http://")) or " " in text):
        problems.append(
            Problem(
                path, f'must be a web address like "https://clinic.example" (got {_shown(text)})'
            )
        )
        return None
    return text


@lru_cache(maxsize=1)
def _known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - _NOT_A_PLACE)


def _check_timezone(value: Any, path: str, problems: list[Problem]) -> str | None:
    text = _check_text(value, path, problems, limit=TIMEZONE_MAX, required=True)
    if text is None:
        return None
    if text not in _known_time_zones():
        hint = _did_you_mean(text, sorted(_known_time_zones()))
        problems.append(
            Problem(
                path,
                f'unknown time zone {_shown(text)}: use an IANA name like "America/Detroit"{hint}',
            )
        )
        return None
    return text


def _is_whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not 1


def _check_whole_number(
    value: Any, path: str, problems: list[Problem], *, low: int, high: int
) -> int | None:
    if not _is_whole_number(value):
        problems.append(Problem(path, f"must be a whole number (got {_shown(value)})"))
        return None
    if value < 0:
        problems.append(Problem(path, f"must not be negative (got {value})"))
        return None
    if value < low:
        problems.append(Problem(path, f"must be at least {low} (got {value})"))
        return None
    if value > high:
        problems.append(Problem(path, f"must be at most {high} (got {value})"))
        return None
    return value


def _whole_number_check(low: int, high: int) -> Callable:
    def check(value: Any, path: str, problems: list[Problem]) -> int | None:
        return _check_whole_number(value, path, problems, low=low, high=high)

    return check


def _check_slot_step(value: Any, path: str, problems: list[Problem]) -> int | None:
    if not _is_whole_number(value):
        problems.append(Problem(path, f"must be a whole number of minutes (got {_shown(value)})"))
        return None
    if value not in SLOT_STEPS:
        steps = ", ".join(str(step) for step in SLOT_STEPS[:-1])
        problems.append(
            Problem(
                path,
                f"must be a number of minutes that divides an hour evenly: {steps} or 60 "
                f"(got {value})",
            )
        )
        return None
    return value


def _check_bool(value: Any, path: str, problems: list[Problem]) -> bool | None:
    if not isinstance(value, bool):
        problems.append(Problem(path, f"must be true or false (got {_shown(value)})"))
        return None
    return value


def _choice_check(choices: tuple[str, ...]) -> Callable:
    def check(value: Any, path: str, problems: list[Problem]) -> str | None:
        if not isinstance(value, str) or value not in choices:
            problems.append(
                Problem(path, f"must be one of {', '.join(choices)} (got {_shown(value)})")
            )
            return None
        return value

    return check


def _check_list(value: Any, path: str, problems: list[Problem], example: str) -> list | None:
    if not isinstance(value, list):
        problems.append(Problem(path, f"must be a list, like {example} (got {_shown(value)})"))
        return None
    return value


def _refuse_repeats(values: list, path: str, problems: list[Problem]) -> bool:
    """Note each item that repeats an earlier one; True when there were none."""
    first_index: dict[Any, int] = {}
    clean = True
    for index, item in enumerate(values):
        if item is None:
            continue
        if item in first_index:
            problems.append(
                Problem(
                    f"{path}[{index}]",
                    f"{_shown(item)} is listed twice (also at [{first_index[item]}])",
                )
            )
            clean = False
        else:
            first_index[item] = index
    return clean


def _list_of_choices_check(choices: tuple[str, ...]) -> Callable:
    item_check = _choice_check(choices)

    def check(value: Any, path: str, problems: list[Problem]) -> tuple[str, ...] | None:
        items = _check_list(value, path, problems, f'["{choices[0]}"]')
        if items is None:
            return None
        checked = [
            item_check(item, f"{path}[{index}]", problems) for index, item in enumerate(items)
        ]
        if not _refuse_repeats(checked, path, problems) or None in checked:
            return None
        return tuple(checked)

    return check


def _services_offered_check(service_slugs: list) -> Callable:
    known = [slug for slug in service_slugs if isinstance(slug, str)]

    def check(value: Any, path: str, problems: list[Problem]) -> tuple[str, ...] | None:
        items = _check_list(value, path, problems, '["schedule-a-call"]')
        if items is None:
            return None
        checked: list[str | None] = []
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            if not isinstance(item, str):
                problems.append(
                    Problem(item_path, f"must be a service slug in quotes (got {_shown(item)})")
                )
                checked.append(None)
            elif item not in known:
                problems.append(
                    Problem(
                        item_path,
                        f"no service {_shown(item)} in this file{_did_you_mean(item, known)}",
                    )
                )
                checked.append(None)
            else:
                checked.append(item)
        if not _refuse_repeats(checked, path, problems) or None in checked:
            return None
        return tuple(checked)

    return check


def parse_duration(text: str) -> timedelta:
    """A clinic-file duration ("15m", "2h", "2d") as a timedelta. Raises ValueError."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    amount, unit = match.groups()
    # Compared as an integer first: a huge amount would overflow timedelta.
    minutes = int(amount) * _MINUTES_PER_UNIT[unit]
    if minutes > DURATION_LIMIT // timedelta(minutes=1):
        raise ValueError(f"more than a year: {text!r}")
    return timedelta(minutes=minutes)


def _check_durations(value: Any, path: str, problems: list[Problem]) -> tuple[str, ...] | None:
    items = _check_list(value, path, problems, '["48h", "2h"]')
    if items is None:
        return None
    moments: list[timedelta | None] = []
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        if not isinstance(item, str) or not _DURATION.fullmatch(item):
            problems.append(
                Problem(
                    item_path,
                    "must be a duration: a whole number and one unit, m (minutes), h (hours) "
                    f'or d (days), like "15m", "2h", "2d" (got {_shown(item)})',
                )
            )
            moments.append(None)
        else:
            try:
                moments.append(parse_duration(item))
            except ValueError:
                problems.append(Problem(item_path, f"{_shown(item)} is more than a year"))
                moments.append(None)
    # "1h" and "60m" are the same moment: the patient would get the same message twice.
    first_index: dict[timedelta, int] = {}
    for index, moment in enumerate(moments):
        if moment is None:
            continue
        if moment in first_index:
            earlier = first_index[moment]
            problems.append(
                Problem(
                    f"{path}[{index}]",
                    f"{_shown(items[index])} is the same moment as [{earlier}] "
                    f"({_shown(items[earlier])})",
                )
            )
            moments[index] = None
        else:
            first_index[moment] = index
    if None in moments:
        return None
    return tuple(items)


def _check_hours(
    value: Any, path: str, problems: list[Problem]
) -> tuple[WorkingWindow, ...] | None:
    if not isinstance(value, dict):
        problems.append(
            Problem(
                path,
                'must be a table of weekdays, written hours.mon = ["08:00-12:00"] '
                f"(got {_shown(value)})",
            )
        )
        return None
    windows: list[WorkingWindow] = []
    clean = True
    for day, day_value in value.items():
        day_path = _key_path(path, day)
        if day not in WEEKDAYS:
            problems.append(
                Problem(
                    day_path,
                    f"unknown weekday{_did_you_mean(day[:3].lower(), WEEKDAYS)}; "
                    f"use {', '.join(WEEKDAYS)}",
                )
            )
            clean = False
            continue
        day_windows = _day_windows(WEEKDAYS.index(day), day_value, day_path, problems)
        if day_windows is None:
            clean = False
        else:
            windows.extend(day_windows)
    if not clean:
        return None
    return tuple(sorted(windows, key=lambda window: (window.weekday, window.start, window.end)))


def _day_windows(
    weekday: int, value: Any, path: str, problems: list[Problem]
) -> list[WorkingWindow] | None:
    items = _check_list(value, path, problems, '["08:00-12:00", "13:00-17:00"]')
    if items is None:
        return None
    parsed = [_window(item, f"{path}[{index}]", problems) for index, item in enumerate(items)]
    clean = None not in parsed
    # Compare each window, in time order, with the latest-ending one before it.
    order = sorted((index for index, span in enumerate(parsed) if span), key=parsed.__getitem__)
    reach: int | None = None  # index of the window ending latest so far
    for index in order:
        start, end = parsed[index]
        if reach is not None and start < parsed[reach][1]:
            earlier, later = sorted((reach, index))
            if parsed[earlier] == parsed[later]:
                reason = f"{_shown(items[later])} is listed twice (also at [{earlier}])"
            else:
                reason = f"{_shown(items[later])} overlaps {_shown(items[earlier])} ([{earlier}])"
            problems.append(Problem(f"{path}[{later}]", reason))
            clean = False
        if reach is None or end > parsed[reach][1]:
            reach = index
    if not clean:
        return None
    return [WorkingWindow(weekday, start, end) for start, end in parsed]


def _window(value: Any, path: str, problems: list[Problem]) -> tuple[time, time] | None:
    """ "08:00-12:00" as (start, end). The day ends at 23:59: a time column holds no 24:00."""
    match = _WINDOW.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        problems.append(
            Problem(path, f'must be a time window like "08:00-12:00" (got {_shown(value)})')
        )
        return None
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    for hour, minute, which in ((start_hour, start_minute, "start"), (end_hour, end_minute, "end")):
        if hour == 24 and minute == 0 and which == "end":
            problems.append(
                Problem(
                    path,
                    f'"24:00" is not a time of day; end the day at "23:59" (got {_shown(value)})',
                )
            )
            return None
        if hour > 23 or minute > 59:
            problems.append(
                Problem(
                    path,
                    f'"{hour:02d}:{minute:02d}" is not a time of day (00:00 to 23:59) '
                    f"(got {_shown(value)})",
                )
            )
            return None
    start, end = time(start_hour, start_minute), time(end_hour, end_minute)
    if end <= start:
        problems.append(Problem(path, f"must end after it starts (got {_shown(value)})"))
        return None
    return start, end


def _check_time_off(
    value: Any, path: str, problems: list[Problem]
) -> tuple[TimeOffSpec, ...] | None:
    example = '[{ start = "2026-12-24T00:00", end = "2026-12-27T00:00", reason = "Holiday" }]'
    items = _check_list(value, path, problems, example)
    if items is None:
        return None
    periods: list[TimeOffSpec | None] = []
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        if not isinstance(item, dict):
            problems.append(
                Problem(
                    item_path, f"must be a table {{ start = ..., end = ... }} (got {_shown(item)})"
                )
            )
            periods.append(None)
            continue
        _refuse_unknown_keys(item, item_path, _TIME_OFF_KEYS, problems)
        start = _field(item, item_path, "start", _check_local_datetime, problems, _REQUIRED)
        end = _field(item, item_path, "end", _check_local_datetime, problems, _REQUIRED)
        reason = _field(item, item_path, "reason", _text_check(NAME_MAX), problems, "")
        if start is not None and end is not None and end <= start:
            problems.append(
                Problem(f"{item_path}.end", f"must be after start ({_local_datetime_text(start)})")
            )
            end = None
        periods.append(None if None in (start, end, reason) else TimeOffSpec(start, end, reason))
    if None in periods:
        return None
    return tuple(sorted(periods, key=lambda period: (period.start, period.end, period.reason)))


def _check_local_datetime(value: Any, path: str, problems: list[Problem]) -> datetime | None:
    """A clinic wall-clock moment: "2026-12-24T00:00" (seconds optional), never an offset."""
    no_offset = "must be clinic wall-clock time, without a time zone offset"
    example = 'like "2026-12-24T00:00"'
    # An unquoted TOML date-time arrives already parsed.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            problems.append(Problem(path, f"{no_offset} (got {value.isoformat()})"))
            return None
        if value.microsecond:
            problems.append(Problem(path, f"must be whole seconds (got {value.isoformat()})"))
            return None
        return value
    if isinstance(value, date):
        problems.append(
            Problem(path, f"must be a date and a time, {example} (got {value.isoformat()})")
        )
        return None
    if isinstance(value, str) and _WITH_OFFSET.fullmatch(value):
        problems.append(Problem(path, f"{no_offset} (got {_shown(value)})"))
        return None
    if not isinstance(value, str) or not _LOCAL_DATETIME.fullmatch(value):
        problems.append(
            Problem(path, f"must be a date and a time, {example} (got {_shown(value)})")
        )
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        problems.append(Problem(path, f"{_shown(value)} is not a real date and time"))
        return None


# --- Message helpers --------------------------------------------------------------------------


def _shown(value: Any) -> str:
    """A value as it would read in the file, short, and on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        quoted = json.dumps(text, ensure_ascii=False)
        return "".join(f"\\u{ord(char):04x}" if _is_control(char) else char for char in quoted)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    return type(value).__name__


def _did_you_mean(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _key_path(where: str, key: str) -> str:
    shown = key if _BARE_KEY.fullmatch(key) else _shown(key)
    return f"{where}.{shown}" if where else shown


# --- Writing into the database ----------------------------------------------------------------


def apply_clinic(spec: ClinicSpec) -> list[str]:
    """Make the database say what spec says, and return what changed, one line per change.

    Rows are matched by slug. Nothing is written that is already so, so loading the same file
    twice changes nothing, not even a timestamp. Services and therapists missing from the file
    are retired (active = False), never deleted: appointments refer to them. Appointments are
    never touched. Does not commit: the caller commits once, or rolls back.
    """
    changes = _apply_clinic_details(spec)
    services = _apply_services(spec.services, changes)
    _apply_therapists(spec.therapists, services, changes)
    return changes


def _apply_clinic_details(spec: ClinicSpec) -> list[str]:
    wanted = {
        "name": spec.name,
        "timezone": spec.timezone,
        "email": spec.email,
        "phone": spec.phone,
        "address": spec.address,
        "website": spec.website,
        "slot_step_minutes": spec.slot_step_minutes,
        "feed_details": spec.feed_details,
    }
    clinic = db.session.scalars(select(Clinic).order_by(Clinic.id).limit(1)).first()
    if clinic is None:
        db.session.add(Clinic(**wanted))
        return [f"clinic: created {_shown(spec.name)}"]
    return [f"clinic: {change}" for change in _update_fields(clinic, wanted)]


def _apply_services(specs: tuple[ServiceSpec, ...], changes: list[str]) -> dict[str, Service]:
    existing = {service.slug: service for service in db.session.scalars(select(Service))}
    for position, spec in enumerate(specs):
        wanted = {
            "name": spec.name,
            "description": spec.description,
            "kind": spec.kind,
            "duration_minutes": spec.duration_minutes,
            "buffer_after_minutes": spec.buffer_after_minutes,
            "min_notice_hours": spec.min_notice_hours,
            "max_advance_days": spec.max_advance_days,
            "reminders": list(spec.reminders),
            "aftercare": list(spec.aftercare),
            "requires_evaluation": spec.requires_evaluation,
            "max_series_visits": spec.max_series_visits,
            "position": position,
        }
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


def _apply_therapists(
    specs: tuple[TherapistSpec, ...], services: dict[str, Service], changes: list[str]
) -> None:
    existing = {therapist.slug: therapist for therapist in db.session.scalars(select(Therapist))}
    for position, spec in enumerate(specs):
        wanted = {
            "name": spec.name,
            "email": spec.email,
            "disciplines": list(spec.disciplines),
            "position": position,
        }
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
            changed.append(f"{field} {_toml_value(current)} -> {_toml_value(value)}")
    return changed


def _update_services_offered(
    therapist: Therapist, spec: TherapistSpec, services: dict[str, Service]
) -> list[str]:
    current = [service.slug for service in therapist.services]
    if set(current) == set(spec.services):
        return []
    therapist.services = [services[slug] for slug in spec.services]
    return [f"services {_toml_value(current)} -> {_toml_value(list(spec.services))}"]


def _update_hours(therapist: Therapist, spec: TherapistSpec) -> list[str]:
    current = sorted(
        WorkingWindow(row.weekday, row.start_time, row.end_time) for row in therapist.hours
    )
    if tuple(current) == spec.hours:
        return []
    therapist.hours = _working_hours_rows(spec.hours)
    return [f"hours now {_hours_summary(spec.hours)} (were {_hours_summary(current)})"]


def _update_time_off(therapist: Therapist, spec: TherapistSpec) -> list[str]:
    current = sorted(
        (TimeOffSpec(row.starts_local, row.ends_local, row.reason) for row in therapist.time_off),
        key=lambda period: (period.start, period.end, period.reason),
    )
    if tuple(current) == spec.time_off:
        return []
    therapist.time_off = _time_off_rows(spec.time_off)
    return [f"time off now {_time_off_summary(spec.time_off)} (was {_time_off_summary(current)})"]


def _working_hours_rows(windows: tuple[WorkingWindow, ...]) -> list[WorkingHoursRow]:
    return [
        WorkingHoursRow(weekday=window.weekday, start_time=window.start, end_time=window.end)
        for window in windows
    ]


def _time_off_rows(periods: tuple[TimeOffSpec, ...]) -> list[TimeOff]:
    return [
        TimeOff(starts_local=period.start, ends_local=period.end, reason=period.reason)
        for period in periods
    ]


def _hours_summary(windows: tuple[WorkingWindow, ...] | list[WorkingWindow]) -> str:
    if not windows:
        return "none"
    by_day = _windows_by_day(windows)
    return "; ".join(f"{day} {', '.join(spans)}" for day, spans in by_day.items())


def _time_off_summary(periods: tuple[TimeOffSpec, ...] | list[TimeOffSpec]) -> str:
    if not periods:
        return "none"
    return "; ".join(
        f"{_local_datetime_text(period.start)} to {_local_datetime_text(period.end)}"
        + (f" ({period.reason})" if period.reason else "")
        for period in periods
    )


# --- Exporting --------------------------------------------------------------------------------


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
    return ClinicSpec(
        name=clinic.name,
        timezone=clinic.timezone,
        email=clinic.email,
        phone=clinic.phone,
        address=clinic.address,
        website=clinic.website,
        slot_step_minutes=clinic.slot_step_minutes,
        feed_details=clinic.feed_details,
        services=tuple(_service_spec_from_row(service) for service in services),
        therapists=tuple(_therapist_spec_from_row(therapist) for therapist in therapists),
    )


def _service_spec_from_row(service: Service) -> ServiceSpec:
    return ServiceSpec(
        slug=service.slug,
        name=service.name,
        description=service.description,
        kind=service.kind,
        duration_minutes=service.duration_minutes,
        buffer_after_minutes=service.buffer_after_minutes,
        min_notice_hours=service.min_notice_hours,
        max_advance_days=service.max_advance_days,
        reminders=tuple(service.reminders),
        aftercare=tuple(service.aftercare),
        requires_evaluation=service.requires_evaluation,
        max_series_visits=service.max_series_visits,
    )


def _therapist_spec_from_row(therapist: Therapist) -> TherapistSpec:
    offered = sorted(
        (service for service in therapist.services if service.active),
        key=lambda service: (service.position, service.id),
    )
    return TherapistSpec(
        slug=therapist.slug,
        name=therapist.name,
        email=therapist.email,
        disciplines=tuple(therapist.disciplines),
        services=tuple(service.slug for service in offered),
        hours=tuple(
            sorted(
                WorkingWindow(row.weekday, row.start_time, row.end_time) for row in therapist.hours
            )
        ),
        time_off=tuple(
            sorted(
                (
                    TimeOffSpec(row.starts_local, row.ends_local, row.reason)
                    for row in therapist.time_off
                ),
                key=lambda period: (period.start, period.end, period.reason),
            )
        ),
    )


def clinic_file_text(spec: ClinicSpec) -> str:
    """spec as clinic-file TOML, every key written out, defaults included, so it documents itself.

    Deterministic: the same spec always gives the same bytes.
    """
    lines = [
        "# The clinic file: docs/clinic-file.md explains every key.",
        "# Load it with: flask --app wsgi clinic load FILE",
        "",
        "[clinic]",
        f"name = {_toml_value(spec.name)}",
        f"timezone = {_toml_value(spec.timezone)}",
        f"email = {_toml_value(spec.email)}",
        f"phone = {_toml_value(spec.phone)}",
        f"address = {_toml_value(spec.address)}",
        f"website = {_toml_value(spec.website)}",
        f"slot_step_minutes = {_toml_value(spec.slot_step_minutes)}",
        f"feed_details = {_toml_value(spec.feed_details)}",
    ]
    for service in spec.services:
        lines += [
            "",
            "[[services]]",
            f"slug = {_toml_value(service.slug)}",
            f"name = {_toml_value(service.name)}",
            f"description = {_toml_value(service.description)}",
            f"kind = {_toml_value(service.kind)}",
            f"duration_minutes = {_toml_value(service.duration_minutes)}",
            f"buffer_after_minutes = {_toml_value(service.buffer_after_minutes)}",
            f"min_notice_hours = {_toml_value(service.min_notice_hours)}",
            f"max_advance_days = {_toml_value(service.max_advance_days)}",
            f"reminders = {_toml_value(list(service.reminders))}",
            f"aftercare = {_toml_value(list(service.aftercare))}",
            f"requires_evaluation = {_toml_value(service.requires_evaluation)}",
        ]
        # A key added later is written only when used, so a clinic without series exports
        # the same file as before.
        if service.max_series_visits:
            lines.append(f"max_series_visits = {_toml_value(service.max_series_visits)}")
    for therapist in spec.therapists:
        lines += [
            "",
            "[[therapists]]",
            f"slug = {_toml_value(therapist.slug)}",
            f"name = {_toml_value(therapist.name)}",
            f"email = {_toml_value(therapist.email)}",
            f"disciplines = {_toml_value(list(therapist.disciplines))}",
            f"services = {_toml_value(list(therapist.services))}",
        ]
        lines += _hours_lines(therapist.hours)
        lines += _time_off_lines(therapist.time_off)
    return "\n".join(lines) + "\n"


def _hours_lines(windows: tuple[WorkingWindow, ...]) -> list[str]:
    if not windows:
        return ["hours = {}"]
    return [
        f"hours.{day} = {_toml_value(spans)}" for day, spans in _windows_by_day(windows).items()
    ]


def _time_off_lines(periods: tuple[TimeOffSpec, ...]) -> list[str]:
    tables = [
        f"{{ start = {_toml_value(_local_datetime_text(period.start))}, "
        f"end = {_toml_value(_local_datetime_text(period.end))}, "
        f"reason = {_toml_value(period.reason)} }}"
        for period in periods
    ]
    if not tables:
        return ["time_off = []"]
    if len(tables) == 1:
        return [f"time_off = [ {tables[0]} ]"]
    return ["time_off = [", *(f"    {table}," for table in tables), "]"]


def _windows_by_day(
    windows: tuple[WorkingWindow, ...] | list[WorkingWindow],
) -> dict[str, list[str]]:
    """Weekday key -> ["08:00-12:00", ...], weekdays in week order, windows in time order."""
    by_day: dict[str, list[str]] = {}
    for window in sorted(windows, key=lambda window: (window.weekday, window.start, window.end)):
        span = f"{window.start:%H:%M}-{window.end:%H:%M}"
        by_day.setdefault(WEEKDAYS[window.weekday], []).append(span)
    return by_day


def _local_datetime_text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")


def _toml_value(value: Any) -> str:
    """value written as TOML; lists on one line. tomli_w does the string escaping."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").removesuffix("\n")
