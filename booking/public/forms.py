"""The patient's forms: who the visit is for and how to reach them, and the manage actions.

Every form is a FlaskForm, so each carries a CSRF token; each message names its field.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from flask import request
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    RadioField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp, ValidationError

from booking.models import utc_now
from booking.public.problems import PageProblem
from booking.scheduling import PatientDetails

VISIT_FOR_ME = "me"
VISIT_FOR_CHILD = "child"
_PHONE = re.compile(r"^\+?[0-9 ().\-]{7,40}$")
OLDEST_PATIENT_YEARS = 120


# Names go into mail headers and calendar files: one line, no control characters. A note may
# have line breaks and tabs, but no other control characters.
def _one_line(message: str) -> Regexp:
    return Regexp(r"^[^\x00-\x1f\x7f\u2028\u2029]*\Z", message=message)


_PLAIN_TEXT = Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*\Z",
                     message="Remove the control characters from your note.")


def parse_start(text: str | None) -> datetime | None:
    """A slot's start as the pages send it (ISO 8601 with an offset), or None."""
    try:
        start = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return start if start.utcoffset() is not None else None


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
        return date.fromisoformat(text)
    except ValueError:
        raise PageProblem(400, f"Choose another {name}",
                          f"{name.capitalize()}: use a date like 2026-12-01.",
                          field=name) from None


class _Phone:
    def __call__(self, form, field):
        digits = sum(character.isdigit() for character in field.data or "")
        if not _PHONE.match(field.data or "") or digits < 7:
            raise ValidationError("Enter a phone number, like +1 586 555 0100.")


class VisitDetailsForm(FlaskForm):
    """The person booking, and the child when the visit is for one."""

    start = HiddenField()
    therapist = HiddenField()
    visit_for = RadioField(
        "Who is the visit for?",
        choices=[
            SelectChoice(VISIT_FOR_ME, "Me"),
            SelectChoice(VISIT_FOR_CHILD, "A child in my care"),
        ],
        default=VISIT_FOR_ME,
        validators=[DataRequired("Choose who the visit is for.")],
    )
    name = StringField(
        "Your full name",
        validators=[DataRequired("Enter your full name."), Length(max=200),
                    _one_line("Write your name on one line, without control characters.")],
        render_kw={"autocomplete": "name"},
    )
    email = EmailField(
        "Your email",
        validators=[
            DataRequired("Enter your email address."),
            Email("Enter an email address like name@example.com."),
            Length(max=254),
        ],
        render_kw={"autocomplete": "email"},
    )
    phone = TelField(
        "Your phone",
        validators=[DataRequired("Enter a phone number."), _Phone()],
        render_kw={"autocomplete": "tel"},
    )
    child_name = StringField("Child's full name", validators=[
        Length(max=200),
        _one_line("Write your child's name on one line, without control characters."),
    ])
    # A text field read by date_of_birth(): an unreadable date is an error only for a child.
    child_date_of_birth = StringField(
        "Child's date of birth", render_kw={"type": "date", "autocomplete": "off"}
    )
    note = TextAreaField(
        "Anything we should know? (optional)",
        validators=[Optional(), Length(max=2000), _PLAIN_TEXT],
    )
    # The honeypot: hidden from people by the style sheet, filled in by form-filling bots.
    website = StringField("Leave this field empty", render_kw={"autocomplete": "off",
                                                                "tabindex": "-1"})

    @property
    def is_for_child(self) -> bool:
        return self.visit_for.data == VISIT_FOR_CHILD

    @property
    def is_from_a_bot(self) -> bool:
        return bool((self.website.data or "").strip())

    def validate_child_name(self, field):
        if self.is_for_child and not (field.data or "").strip():
            raise ValidationError("Enter your child's full name.")

    def validate_child_date_of_birth(self, field):
        if not self.is_for_child:
            return
        text = (field.data or "").strip()
        if not text:
            raise ValidationError("Enter your child's date of birth.")
        born = self.date_of_birth()
        if born is None:
            raise ValidationError("Enter the date of birth like 2019-04-23.")
        # A day's grace: the patient's today may be ahead of UTC's.
        today = utc_now().date() + timedelta(days=1)
        if born > today:
            raise ValidationError("The date of birth cannot be in the future.")
        if born.year < today.year - OLDEST_PATIENT_YEARS:
            raise ValidationError("Check the year of the date of birth.")

    def date_of_birth(self) -> date | None:
        try:
            return date.fromisoformat((self.child_date_of_birth.data or "").strip())
        except ValueError:
            return None

    def patient_details(self) -> PatientDetails:
        if self.is_for_child:
            return PatientDetails(
                name=self.child_name.data.strip(),
                email=self.email.data.strip(),
                phone=self.phone.data.strip(),
                date_of_birth=self.date_of_birth(),
                guardian_name=self.name.data.strip(),
            )
        return PatientDetails(
            name=self.name.data.strip(), email=self.email.data.strip(),
            phone=self.phone.data.strip(),
        )


class CancelVisitForm(FlaskForm):
    """The confirmation step before a visit is cancelled."""


class RescheduleVisitForm(FlaskForm):
    start = HiddenField()
