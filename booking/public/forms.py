"""The patient's forms: who the visit is for and how to reach them, and the manage actions.

Every form is a FlaskForm, so each carries a CSRF token; each message names its field.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from pydantic import ValidationError
from wtforms import (
    EmailField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.widgets import CheckboxInput, ListWidget

from booking.models import Service, ServiceKind
from booking.patients.details import BookingDetails, PatientDetails, details_context
from booking.patients.form_errors import show_on_form
from booking.patients.languages import current_language, weekday_name
from booking.public.problems import PageProblem
from booking.rules.calendar_range import is_within_calendar
from booking.rules.series import WEEKDAYS

VISIT_FOR_ME = "me"
VISIT_FOR_CHILD = "child"


def parse_start(text: str | None) -> datetime | None:
    """A slot's start as the pages send it (ISO 8601 with an offset), or None."""
    try:
        start = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    if start.utcoffset() is None or not is_within_calendar(start):
        return None
    return start


def week_from_query() -> date | None:
    """The `week` query value: the first day of the week of times to show (YYYY-MM-DD)."""
    return _date_in_query("week")


def day_from_query() -> date | None:
    """The `day` query value: the day of that week whose times a phone shows (YYYY-MM-DD)."""
    return _date_in_query("day")


def _date_in_query(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        asked = date.fromisoformat(text)
    except ValueError:
        asked = None
    if asked is None or not is_within_calendar(asked):
        raise PageProblem(400, _("Choose another %(name)s", name=name),
                          _("%(name)s: use a date like 2026-12-01.", name=name.capitalize()),
                          field=name)
    return asked


class VisitDetailsForm(FlaskForm):
    """The person booking, and the child when the visit is for one.

    What is typed is checked by the patient model (booking.patients.details), as the API and
    the back office check it; this form only says it in the patient's words.
    """

    start = HiddenField()
    therapist = HiddenField()
    visit_for = RadioField(
        _l("Who is the visit for?"),
        choices=[
            SelectChoice(VISIT_FOR_ME, _l("Me")),
            SelectChoice(VISIT_FOR_CHILD, _l("A child in my care")),
        ],
        default=VISIT_FOR_ME,
        validators=[DataRequired(_l("Choose who the visit is for."))],
    )
    name = StringField(_l("Your full name"), render_kw={"autocomplete": "name"})
    email = EmailField(_l("Your email"), render_kw={"autocomplete": "email"})
    phone = TelField(_l("Your phone"), render_kw={"autocomplete": "tel"})
    child_name = StringField(_l("Child's full name"))
    child_date_of_birth = StringField(
        _l("Child's date of birth"),
        render_kw={"type": "date", "autocomplete": "off",
                   # What static/booking.js says where the browser has no date box.
                   "data-typed-hint": _l("Type it as year-month-day, for example 2019-04-23.")},
    )
    note = TextAreaField(_l("Anything we should know? (optional)"))
    # The honeypot: hidden from people by the style sheet, filled in by form-filling bots.
    website = StringField(_l("Leave this field empty"), render_kw={"autocomplete": "off",
                                                                "tabindex": "-1"})

    def __init__(self, *args, service: Service, **kwargs):
        super().__init__(*args, **kwargs)
        self.service = service
        self.details: BookingDetails | None = None
        if service.kind != ServiceKind.CALL:
            self.phone.label.text = _("Your phone (optional)")

    @property
    def is_for_child(self) -> bool:
        return self.visit_for.data == VISIT_FOR_CHILD

    @property
    def is_from_a_bot(self) -> bool:
        return bool((self.website.data or "").strip())

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        # The model takes a patient without a birth date, and needs a guardian's name only for
        # a child by that date; this page asks for both whenever the visit is for a child.
        for field, missing in ((self.child_date_of_birth, _("Enter your child's date of birth.")),
                               (self.name, _("Enter your full name."))):
            if self.is_for_child and not (field.data or "").strip():
                field.errors = [*field.errors, missing]
                valid = False
        try:
            self.details = BookingDetails.model_validate(
                {"patient": self._patient_data(), "notes": self.note.data or ""},
                context=details_context(self.service),
            )
        except ValidationError as error:
            show_on_form(error, self._fields_of_the_model(), self._wording())
            return False
        return valid

    @property
    def patient_details(self) -> PatientDetails:
        """Who the visit is for, once the form is valid."""
        return self.details.patient

    @property
    def notes(self) -> str:
        return self.details.notes

    def _patient_data(self) -> dict:
        # The booking keeps the language the page was read in: its mail is written in it.
        contact = {"email": self.email.data or "", "phone": self.phone.data or "",
                   "language": current_language()}
        if self.is_for_child:
            return {"name": self.child_name.data or "", "guardian_name": self.name.data or "",
                    "date_of_birth": self.child_date_of_birth.data or None, **contact}
        return {"name": self.name.data or "", **contact}

    def _fields_of_the_model(self) -> dict:
        fields = {"patient.email": self.email, "patient.phone": self.phone, "notes": self.note}
        if self.is_for_child:
            return {"patient.name": self.child_name, "patient.guardian_name": self.name,
                    "patient.date_of_birth": self.child_date_of_birth, **fields}
        return {"patient.name": self.name, **fields}

    def _wording(self) -> dict:
        yours = {
            "required": _("Enter your full name."),
            "one_line": _("Write your name on one line, without control characters."),
            "too_long": _("Write your name in at most 200 characters."),
        }
        childs = {
            "required": _("Enter your child's full name."),
            "one_line": _("Write your child's name on one line, without control characters."),
            "too_long": _("Write your child's name in at most 200 characters."),
        }
        person, guardian = (childs, yours) if self.is_for_child else (yours, {})
        return {
            **{f"patient.name:{kind}": text for kind, text in person.items()},
            **{f"patient.guardian_name:{kind}": text for kind, text in guardian.items()},
            "patient.email:required": _("Enter your email address."),
            "patient.email": _("Enter an email address like name@example.com."),
            "patient.phone:required": _("Enter a phone number: we call you on it for this visit."),
            "patient.phone": _("Enter a phone number, like +1 586 555 0100."),
            "patient.date_of_birth:future": _("The date of birth cannot be in the future."),
            "patient.date_of_birth:too_old": _("Check the year of the date of birth."),
            "patient.date_of_birth": _("Enter the date of birth like 2019-04-23."),
            "notes:control_characters": _("Remove the control characters from your note."),
            "notes": _("Write your note in at most 2000 characters."),
        }


class WeeklyVisitsForm(VisitDetailsForm):
    """The visit details, and "repeat weekly": the weekdays and how many visits (a service
    with `max_series_visits`). Scheduling has the last word on the series; this form only
    says in the patient's words what cannot be asked for.

    The visits moved to an alternative come as `visit-N` (N from 1) holding the chosen start;
    `previewed` is the pattern the patient last saw, so a choice made for one pattern is never
    applied to another; `booking_key` makes a form sent twice book once.
    """

    weekdays = SelectMultipleField(
        _l("On which days of the week?"),
        choices=[SelectChoice(name, name) for name in WEEKDAYS],
        option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False),
        validate_choice=False,
    )
    count = SelectField(_l("How many visits, this one included?"), validate_choice=False)
    previewed = HiddenField()
    booking_key = HiddenField()

    def __init__(self, *args, service: Service, series: bool = False, **kwargs):
        super().__init__(*args, service=service, **kwargs)
        self.asks_for_series = series  # False: a single visit, whatever the weekly fields say
        self.weekdays.choices = [
            SelectChoice(name, weekday_name(number)) for number, name in enumerate(WEEKDAYS)
        ]
        self.count.choices = [
            SelectChoice(str(number), str(number))
            for number in range(2, service.max_series_visits + 1)
        ]
        self.moved: dict[int, datetime] = {}

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not self.asks_for_series:
            return valid
        if any(name not in WEEKDAYS for name in self.weekdays.data or []):
            self.weekdays.errors = [_("Weekdays: choose days from the list.")]
            valid = False
        if self.visit_count is None:
            self.count.errors = [_("Number of visits: choose from 2 to %(max)s.",
                                   max=self.service.max_series_visits)]
            valid = False
        return valid

    @property
    def visit_count(self) -> int | None:
        text = (self.count.data or "").strip()
        if not text.isdigit() or not 2 <= int(text) <= self.service.max_series_visits:
            return None
        return int(text)

    def weekday_numbers(self, first: datetime, zone) -> list[int]:
        """The weekdays chosen (0 = Monday); none chosen: the first visit's."""
        chosen = sorted({WEEKDAYS.index(name) for name in self.weekdays.data or []
                         if name in WEEKDAYS})
        return chosen or [first.astimezone(zone).weekday()]

    def moved_visits(self) -> dict[int, datetime]:
        """The alternatives chosen, by visit index from 0; PageProblem names a bad one."""
        moved = {}
        for name, text in request.form.items():
            if not name.startswith("visit-") or not text.strip():
                continue
            number = name.removeprefix("visit-")
            start = parse_start(text)
            count = self.visit_count or 0
            if not number.isdigit() or not 1 <= int(number) <= count or start is None:
                raise PageProblem(
                    400, _("Choose another time"),
                    _("%(field)s: choose one of the times offered for that visit.", field=name),
                    field=name,
                )
            moved[int(number) - 1] = start
        return moved


class CancelVisitForm(FlaskForm):
    """The confirmation step before a visit is cancelled."""


class CheckInForm(FlaskForm):
    """The check-in after dry needling: its answers are read by patients/check_in.py; the form
    only carries the CSRF token, so that a link followed by a mail scanner records nothing."""


class RescheduleVisitForm(FlaskForm):
    start = HiddenField()
