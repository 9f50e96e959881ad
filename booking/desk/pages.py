"""What every back-office page shares: the `desk` blueprint the areas nest under, the helpers
its templates call, its answers to a missing clinic, a page out of reach and a database out of
reach, and no copy of a page kept in a browser's cache."""

from __future__ import annotations

from contextlib import suppress
from datetime import date, datetime

from flask import Blueprint, abort, g, render_template
from flask_login import current_user, login_required

from booking.clinic.reference import ClinicNotConfigured, clinic_zone, current_clinic
from booking.desk.access import current_role
from booking.desk.forms import PostOnlyForm
from booking.models import StaffRole, utc_now
from booking.rules.clinical import ClearanceDecision
from booking.web.requests import show_problems_with

desk = Blueprint("desk", __name__)


def today() -> date:
    """The clinic's date now."""
    return utc_now().astimezone(clinic_zone()).date()


def require_form_token() -> None:
    """A form that is only a button still carries its CSRF token: 400 without it."""
    if not PostOnlyForm().validate_on_submit():
        abort(400, description="the form is missing its security token")


# How the desk words the clearance decision in force for a patient (None: none recorded).
CLEARANCE_WORDS = {
    ClearanceDecision.CLEARED: "cleared",
    ClearanceDecision.NOT_CLEARED: "not cleared",
    None: "no decision yet",
}


@desk.app_template_filter("clearance_words")
def clearance_words(decision: str | None) -> str:
    return CLEARANCE_WORDS[decision or None]


def message_page(title: str, message: str, status: int):
    return render_template("desk/message.html", title=title, message=message), status


@desk.context_processor
def _page_helpers():
    def local(instant: datetime) -> datetime:
        return instant.astimezone(clinic_zone())

    clinic = role = None
    # A page about a problem reads nothing from the database: the database may be the problem.
    if not g.get("showing_problem"):
        with suppress(ClinicNotConfigured):
            clinic = current_clinic()
        if current_user.is_authenticated:
            role = current_role()
    return {
        "local": local,
        "clinic": clinic,
        "logout_form": PostOnlyForm(),
        "audit_detail": _audit_detail,
        "StaffRole": StaffRole,
        "role": role,
    }


def _audit_detail(value) -> str:
    """An audit entry's detail for people: nested values flattened, instants in clinic time."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_audit_detail(item)}" for key, item in value.items())
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        with suppress(ValueError):
            instant = datetime.fromisoformat(value)
            if instant.tzinfo is not None:
                return f"{instant.astimezone(clinic_zone()):%Y-%m-%d %H:%M}"
    return str(value)


@desk.after_request
def _not_kept(response):
    # Patient data: no copy in a shared computer's browser cache or in a proxy.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@desk.errorhandler(ClinicNotConfigured)
def _no_clinic(_error):
    return message_page("No clinic loaded yet",
                        "Load the clinic file first: flask clinic load FILE.", 503)


@desk.errorhandler(400)
def _bad_request(error):
    # The description names the field at fault ("day: must be a date like ...").
    return message_page("That request could not be read", error.description, 400)


@desk.errorhandler(403)
def _forbidden(_error):
    return message_page("Not yours to see",
                        "This page belongs to another part of the clinic.", 403)


@desk.errorhandler(404)
def _not_found(_error):
    return message_page("No such page", "There is nothing at this address.", 404)


@desk.route("/<path:unknown>", methods=["GET", "POST"])
@login_required
def no_such_page(unknown: str):
    """An address under /desk that matches no page, by any method: a 404 in the desk's look
    (routing's own 404 would not know it belongs to the desk)."""
    abort(404)


def _problem_page(status: int, title: str, message: str):
    g.showing_problem = True
    return message_page(title, message, status)


show_problems_with(desk.name, _problem_page)
