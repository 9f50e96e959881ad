"""The patient's language: which one a page or a message to a patient is written in.

Patient pages and everything sent to a patient go through gettext (Flask-Babel); the back
office stays English. The clinic file's `languages` says which are offered, the first being
the default. A patient page is in, by order of preference: the language chosen with the
switcher (`?lang=`, then kept in the session), the language of the visit a manage link is
for, the browser's Accept-Language, the clinic's first. A message is in the language its
booking recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime

import flask_babel
from babel.dates import format_date, format_datetime, format_time, get_day_names
from babel.support import NullTranslations
from flask import has_request_context, request, session
from flask_babel import force_locale, get_locale, get_translations

from booking.clinic.reference import ClinicNotConfigured, reference_data

STAFF_LANGUAGE = "en"
# Each language's own name, as the switcher shows it (a speaker looks for their own word).
LANGUAGE_NAMES = {"en": "English", "es": "Español", "ar": "العربية"}
# As the back office (in English) names them.
LANGUAGE_NAMES_IN_ENGLISH = {"en": "English", "es": "Spanish", "ar": "Arabic"}
RIGHT_TO_LEFT = frozenset({"ar"})
_SESSION_KEY = "language"


def clinic_languages() -> list[str]:
    try:
        offered = list(reference_data().clinic.languages)
    except ClinicNotConfigured:
        offered = []
    return offered or [STAFF_LANGUAGE]


def page_language() -> str:
    """Flask-Babel's choice for a request: the back office and the API in English, a patient
    page in the patient's language."""
    if not has_request_context() or request.blueprint is None:
        return STAFF_LANGUAGE
    if not request.blueprint.startswith("public"):
        return STAFF_LANGUAGE
    offered = clinic_languages()
    chosen = request.args.get("lang", "")
    if chosen in offered:
        session[_SESSION_KEY] = chosen
        return chosen
    if session.get(_SESSION_KEY) in offered:
        return session[_SESSION_KEY]
    visit_language = _manage_link_language()
    if visit_language in offered:
        return visit_language
    return request.accept_languages.best_match(offered) or offered[0]


def _manage_link_language() -> str | None:
    """On a manage link's pages, the language the visit was booked in."""
    token = (request.view_args or {}).get("token")
    if not token or not request.blueprint.endswith("manage"):
        return None
    from booking.patients.manage_links import appointment_for_token, series_for_token

    appointment = appointment_for_token(token, only_to_read=True)
    if appointment is None:  # a series' link: the language its visits were booked in
        series = series_for_token(token)
        appointment = series.appointments[0] if series is not None and series.appointments \
            else None
    return appointment.patient_language if appointment is not None else None


def language_in_english(code: str) -> str:
    """'Spanish (es)': how the back office shows a patient's language."""
    return f"{LANGUAGE_NAMES_IN_ENGLISH.get(code, code)} ({code})"


def current_language() -> str:
    """The language being written in now: the page's, or a message's (`writing_in`)."""
    fixed = _written_in.get()
    if fixed is not None:
        return fixed[0]
    locale = get_locale()
    return locale.language if locale is not None else STAFF_LANGUAGE


# --- Words in a language fixed for a while: a message to a patient -------------------------
# Flask-Babel finds the context, the locale and its translations again at every gettext call,
# and a message makes some sixteen, besides asking its language for dates and names: 1.3 M
# instructions of the dispatcher's 8.8 M on a message. Inside `writing_in` they are found
# once: the same translations Flask-Babel would use under `force_locale`.
_written_in: ContextVar[tuple[str, NullTranslations] | None] = ContextVar(
    "written_in", default=None
)


@contextmanager
def writing_in(language: str) -> Iterator[None]:
    """Every word written inside (gettext, dates, a service's name) in `language`."""
    with force_locale(language):
        fixed = _written_in.set((language, get_translations()))
        try:
            yield
        finally:
            _written_in.reset(fixed)


def gettext(string: str, **variables) -> str:
    """Flask-Babel's gettext, in the language of `writing_in` when inside one."""
    fixed = _written_in.get()
    if fixed is None:
        return flask_babel.gettext(string, **variables)
    text = fixed[1].ugettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    """Flask-Babel's ngettext, in the language of `writing_in` when inside one."""
    fixed = _written_in.get()
    if fixed is None:
        return flask_babel.ngettext(singular, plural, num, **variables)
    variables.setdefault("num", num)
    return fixed[1].ungettext(singular, plural, num) % variables


def text_direction(language: str | None = None) -> str:
    return "rtl" if (language or current_language()) in RIGHT_TO_LEFT else "ltr"


def in_language(service, key: str, language: str | None = None) -> str:
    """A service's `name` or `description` in the language being written in; the clinic's
    first language (the column itself) where the clinic file gives no translation."""
    return _text_and_language(service, key, language)[0]


def language_of(service, key: str, language: str | None = None) -> str:
    """The language in_language's text is in: the page's, or the clinic's first."""
    return _text_and_language(service, key, language)[1]


def _text_and_language(service, key: str, language: str | None) -> tuple[str, str]:
    language = language or current_language()
    translated = (service.translations or {}).get(key, {}).get(language)
    if translated:
        return translated, language
    first = clinic_languages()[0]
    return getattr(service, key), first


# --- Dates and times in the patient's words --------------------------------------------------
# CLDR data through Babel; the patterns are the clinic's own choice per language: the clinic
# is in the US, so its Spanish is US Spanish (12-hour clock), and the English keeps the words
# it has always had.
_FORMAT_LOCALES = {"en": "en_US", "es": "es_US", "ar": "ar"}
_DAY_PATTERNS = {
    "en": "EEEE, MMMM d",  # Monday, December 7
    "es": "EEEE, d 'de' MMMM",  # lunes, 7 de diciembre
    "ar": "EEEE، d MMMM",  # الاثنين، 7 ديسمبر
}
_DAY_AND_TIME_PATTERNS = {
    "en": "EEEE d MMMM y 'at' h:mm a",  # Monday 7 December 2026 at 9:30 AM
    "es": "EEEE d 'de' MMMM 'de' y, h:mm a",  # lunes 7 de diciembre de 2026, 9:30 a.m.
    "ar": "EEEE d MMMM y، 'الساعة' h:mm a",  # الاثنين 7 ديسمبر 2026، الساعة 9:30 ص
}


def _locale(language: str | None) -> str:
    return _FORMAT_LOCALES.get(language or current_language(), "en_US")


def day_in_words(day: date, language: str | None = None) -> str:
    """'Monday, December 7' (the day as the clinic means it: a wall-clock date)."""
    language = language or current_language()
    pattern = _DAY_PATTERNS.get(language, _DAY_PATTERNS["en"])
    return format_date(day, pattern, locale=_locale(language))


def time_in_words(wall: datetime, language: str | None = None) -> str:
    """'9:30 AM', from a wall-clock time in the clinic's zone."""
    return format_time(wall, "h:mm a", tzinfo=wall.tzinfo, locale=_locale(language))


def day_and_time_in_words(wall: datetime, language: str | None = None) -> str:
    """'Monday 7 December 2026 at 9:30 AM', from a wall-clock time in the clinic's zone."""
    language = language or current_language()
    pattern = _DAY_AND_TIME_PATTERNS.get(language, _DAY_AND_TIME_PATTERNS["en"])
    return format_datetime(wall, pattern, tzinfo=wall.tzinfo, locale=_locale(language))


def weekday_short(day: date, language: str | None = None) -> str:
    """'Mon', 'lun', 'الاثنين': a day chip's label."""
    return format_date(day, "EEE", locale=_locale(language))


def weekday_name(number: int, language: str | None = None) -> str:
    """'Monday', 'lunes', 'الاثنين' for 0 (Monday) to 6 (Sunday)."""
    return get_day_names("wide", locale=_locale(language))[number]


def month_name(day: date, language: str | None = None) -> str:
    return format_date(day, "MMMM", locale=_locale(language))
