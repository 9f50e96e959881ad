"""The back office's forms: each field named as staff see it, each carrying the CSRF token."""

from __future__ import annotations

import pydantic
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from booking.extensions import db
from booking.models import Patient, Service
from booking.patients.details import BookingDetails, PatientDetails, details_context
from booking.patients.form_errors import show_on_form
from booking.rules.calendar_range import OUT_OF_RANGE, is_within_calendar
from booking.rules.series import WEEKDAYS
from booking.scheduling import ATTENDANCE, UnknownService, bookable_service
from booking.web.record_ids import LARGEST_RECORD_ID


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as select options."""
    return [SelectChoice(value, label) for value, label in pairs]


# Names go into mail headers and calendar files: one line, no control characters.
def one_line(message: str) -> Regexp:
    return Regexp(r"^[^\x00-\x1f\x7f\u2028\u2029]*\Z", message=message)


WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")




def patient_on_record(written: str | None) -> Patient | None:
    """The patient a form or link names by id ("123"), or None when none is on record."""
    written = (written or "").strip()
    if not written.isdigit() or int(written) > LARGEST_RECORD_ID:
        return None
    return db.session.get(Patient, int(written))

class WithinCalendar:
    """The date lies in the days the clinic's calendar holds (booking/rules/calendar_range)."""

    def __call__(self, form, field):
        if field.data is not None and not is_within_calendar(field.data):
            raise ValidationError(OUT_OF_RANGE.capitalize() + ".")

class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])
    next = HiddenField()


class PostOnlyForm(FlaskForm):
    """A button and the CSRF token: log out, resend, rotate the feed."""


class BookingForm(FlaskForm):
    """A visit booked by staff: for a patient found above, or a new one (a walk-in).

    A new patient's details and the note are checked by the patient model, as the API and
    the patient's pages check them.
    """

    service = SelectField("Service", validators=[DataRequired()])
    therapist = SelectField("Therapist", validate_choice=True)
    day = DateField("Day", validators=[DataRequired(), WithinCalendar()])
    time = TimeField("Time", validators=[DataRequired()])
    patient_id = HiddenField()
    name = StringField("Patient's name")
    email = EmailField("Email (a guardian's for a child; may be left out when a phone is given)")
    phone = StringField("Phone")
    date_of_birth = StringField("Date of birth", render_kw={"type": "date"})
    guardian_name = StringField("Guardian (for a child)")
    notes = TextAreaField("Notes")
    override_reason = StringField(
        "Override reason (only to waive notice, booking window, the evaluation or the "
        "clearance rule)",
        validators=[Optional(), Length(max=500)],
    )

    details: BookingDetails | None = None  # once the form is valid

    _WORDING = {
        "patient.name:required": "Give the patient's name, or choose a patient found above.",
        "patient.email:required": "Give an email (the confirmation goes there), or a phone "
        "for a patient without email (no mail is sent then).",
        "patient.email": "Invalid email address.",
    }

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        known = self._known_patient()
        patient = PatientDetails.on_record(known) if known else {
            "name": self.name.data or "", "email": self.email.data or "",
            "phone": self.phone.data or "", "date_of_birth": self.date_of_birth.data or None,
            "guardian_name": self.guardian_name.data or "",
        }
        try:
            self.details = BookingDetails.model_validate(
                {"patient": patient, "notes": self.notes.data or ""},
                context=details_context(self._service(), at_the_desk=True),
            )
        except pydantic.ValidationError as error:
            show_on_form(error, {
                "patient.name": self.name, "patient.email": self.email,
                "patient.phone": self.phone, "patient.date_of_birth": self.date_of_birth,
                "patient.guardian_name": self.guardian_name, "notes": self.notes,
            }, self._WORDING)
            return False
        return valid

    @property
    def patient_details(self) -> PatientDetails:
        """Who the visit is for, once the form is valid."""
        return self.details.patient

    def validate_patient_id(self, field):
        if field.data and patient_on_record(field.data) is None:
            raise ValidationError("Choose a patient from the list.")

    def _known_patient(self) -> Patient | None:
        return patient_on_record(self.patient_id.data)

    def _service(self) -> Service | None:
        # The rules ask whether the visit is a call; an unknown service is refused above.
        try:
            return bookable_service(self.service.data or "")
        except UnknownService:
            return None


class MoveForm(FlaskForm):
    therapist = SelectField("Therapist", validators=[DataRequired()])
    day = DateField("Day", validators=[DataRequired(), WithinCalendar()])
    time = TimeField("Time", validators=[DataRequired()])
    override_reason = StringField(
        "Override reason (only to waive notice or the booking window)",
        validators=[Optional(), Length(max=500)],
    )


class CourseForm(BookingForm):
    """A course of weekly visits booked by staff: the booking form's patient and first visit,
    the weekdays, and the number of visits or the day of the last one; the patient's insurance
    authorisation when there is one."""

    therapist = SelectField("Therapist", validators=[DataRequired()])
    day = DateField("First visit", validators=[DataRequired(), WithinCalendar()])
    weekdays = SelectMultipleField(
        "Weekdays", choices=choices(zip(WEEKDAYS, WEEKDAY_NAMES, strict=True)),
        validators=[Optional()],
    )
    count = IntegerField("Number of visits", validators=[Optional(), NumberRange(min=2, max=99)])
    until = DateField("Or the last day of the course", validators=[Optional(), WithinCalendar()])
    authorised_visits = IntegerField(
        "Visits authorised by the insurer", validators=[Optional(), NumberRange(min=1, max=999)]
    )
    authorised_until = DateField(
        "Authorisation ends on", validators=[Optional(), WithinCalendar()]
    )
    override_reason = StringField(
        "Override reason (only to waive notice, booking window, the evaluation or the "
        "clearance rule)",
        validators=[Optional(), Length(max=500)],
    )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.count.data is None and self.until.data is None and not self.count.errors:
            self.count.errors = [
                *self.count.errors, "Give the number of visits, or the last day of the course."
            ]
            return False
        return valid

    def validate_until(self, field):
        if field.data is not None and self.day.data and field.data < self.day.data:
            raise ValidationError("Must be on or after the first visit.")


class MoveFollowingForm(FlaskForm):
    """Move a visit of a course and every later one: to another weekday and/or time. (The
    course's page holds four forms: each field has an id of its own.)"""

    # The visits to come are the choices shown; the one sent is checked against the course.
    visit = SelectField("From the visit", id="move-from", validators=[DataRequired()],
                        validate_choice=False)
    weekday = SelectField(
        "To the weekday", choices=choices(zip(WEEKDAYS, WEEKDAY_NAMES, strict=True)),
        id="move-weekday", validators=[DataRequired()],
    )
    time = TimeField("At", id="move-time", validators=[DataRequired()])
    override_reason = StringField(
        "Override reason (only to waive notice or the booking window)", id="move-override",
        validators=[Optional(), Length(max=500)],
    )


class CancelFollowingForm(FlaskForm):
    # The visits to come are the choices shown; the one sent is checked against the course.
    visit = SelectField("From the visit", id="cancel-from", validators=[DataRequired()],
                        validate_choice=False)
    reason = StringField(
        "Reason (the patient is told the visits are cancelled)", id="cancel-reason",
        validators=[DataRequired(), Length(max=500)],
    )


class AddVisitsForm(FlaskForm):
    count = IntegerField(
        "Visits to add", id="add-count", validators=[DataRequired(), NumberRange(min=1, max=99)]
    )
    override_reason = StringField(
        "Override reason (only to waive notice or the booking window)", id="add-override",
        validators=[Optional(), Length(max=500)],
    )


class AuthorisationForm(FlaskForm):
    authorised_visits = IntegerField(
        "Visits authorised by the insurer", id="authorisation-visits",
        validators=[Optional(), NumberRange(min=1, max=999)],
    )
    authorised_until = DateField(
        "Authorisation ends on", id="authorisation-until",
        validators=[Optional(), WithinCalendar()],
    )


class CancelForm(FlaskForm):
    reason = StringField(
        "Reason (the patient is told the visit is cancelled)",
        validators=[DataRequired(), Length(max=500)],
    )


class ClearanceForm(FlaskForm):
    """A therapist's decision after an evaluation: is the service (dry needling) right for the
    patient. `back_day` brings the day view back when the form was sent from it."""

    service = SelectField("Service", validators=[DataRequired()])
    decision = SelectField(
        "Decision",
        choices=choices([("cleared", "Cleared"), ("not_cleared", "Not cleared")]),
        validators=[DataRequired()],
    )
    note = TextAreaField(
        "Note (seen by therapists only)", validators=[Optional(), Length(max=2000)]
    )
    back_day = HiddenField()


class AttendanceForm(FlaskForm):
    outcome = SelectField(
        "Attendance",
        choices=choices((str(outcome), str(outcome)) for outcome in ATTENDANCE),
        validators=[DataRequired()],
    )


class UndoAttendanceForm(FlaskForm):
    reason = StringField(
        "Reason for undoing",
        validators=[DataRequired(), Length(max=200), one_line("Reason: one line")],
    )


class WeeklyHoursForm(FlaskForm):
    """One field per weekday, written as in the clinic file: 08:00-12:00, 13:00-17:00."""

    monday = StringField("Monday", validators=[Length(max=200)])
    tuesday = StringField("Tuesday", validators=[Length(max=200)])
    wednesday = StringField("Wednesday", validators=[Length(max=200)])
    thursday = StringField("Thursday", validators=[Length(max=200)])
    friday = StringField("Friday", validators=[Length(max=200)])
    saturday = StringField("Saturday", validators=[Length(max=200)])
    sunday = StringField("Sunday", validators=[Length(max=200)])

    def day_fields(self):
        return [getattr(self, name.lower()) for name in WEEKDAY_NAMES]


class TimeOffForm(FlaskForm):
    starts = DateTimeLocalField("From", format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    ends = DateTimeLocalField("Until", format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    reason = StringField("Reason", validators=[Optional(), Length(max=200)])

    def validate_ends(self, field):
        if self.starts.data and field.data and field.data <= self.starts.data:
            raise ValidationError("Must be after the start.")


class NewLoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField(
        "Role",
        choices=choices(
            [("front_desk", "Front desk"), ("therapist", "Therapist"), ("admin", "Admin")]
        ),
        validators=[DataRequired()],
    )
    therapist = SelectField("Therapist (for a therapist login)")
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class LoginActiveForm(FlaskForm):
    active = SelectField(
        "Active", choices=choices([("on", "on"), ("off", "off")]), validators=[DataRequired()]
    )


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search, changes nothing

    actor = StringField("Who", validators=[Optional(), Length(max=120)])
    action = SelectField("Action", validators=[Optional()])
    since = DateField("From", validators=[Optional(), WithinCalendar()])
    until = DateField("Until", validators=[Optional(), WithinCalendar()])


class BusyCalendarByUrlForm(FlaskForm):
    """A therapist's calendar kept elsewhere, by its ICS address (booking/desk/busy_calendars)."""

    name = StringField("Name", id="url-name", validators=[Optional(), Length(max=200),
        one_line("The calendar's name must be one line, without control characters.")])
    url = StringField(
        "Calendar address (ICS URL)", validators=[DataRequired(), Length(max=2000)]
    )


def _calendar_file_field() -> FileField:
    return FileField(
        "Calendar file (.ics)",
        validators=[FileRequired("choose an .ics file")],
        render_kw={"accept": ".ics,text/calendar"},
    )


class BusyCalendarUploadForm(FlaskForm):
    name = StringField("Name", id="upload-name", validators=[Optional(), Length(max=200),
        one_line("The calendar's name must be one line, without control characters.")])
    file = _calendar_file_field()


class BusyCalendarReplaceForm(FlaskForm):
    file = _calendar_file_field()
