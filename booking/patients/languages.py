"""The patient's language: which one a page or a message to a patient is written in.

Patient pages and everything sent to a patient go through gettext (Flask-Babel); the back
office stays English. The clinic file's `languages` says which are offered, the first being
the default.
"""

from __future__ import annotations

from flask import has_request_context, request

from booking.clinic.reference import ClinicNotConfigured, current_clinic

STAFF_LANGUAGE = "en"


def clinic_languages() -> list[str]:
    try:
        offered = list(getattr(current_clinic(), "languages", None) or [])
    except ClinicNotConfigured:
        offered = []
    return offered or [STAFF_LANGUAGE]


def page_language() -> str:
    """Flask-Babel's choice for a request: the back office and the API in English, a patient
    page in the clinic's default language."""
    if not has_request_context() or request.blueprint is None:
        return STAFF_LANGUAGE
    if not request.blueprint.startswith("public"):
        return STAFF_LANGUAGE
    return clinic_languages()[0]
