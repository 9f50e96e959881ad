"""The health screening and consent forms under the manage link,
/manage/<token>/forms/<form>: the patient (or, for a child, the guardian) answers the questions,
reads the consent and signs by typing their full name.

What is typed is checked by the one model of a signed form (booking.patients.health_forms), as
the API checks it; this page only says it in the patient's words. The answers are never shown
back: whoever holds a forwarded link sees the form's status, not the patient's health.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from pydantic import ValidationError
from wtforms import BooleanField, StringField

from booking.clinic.reference import current_clinic, zone_named
from booking.models import Appointment, utc_now
from booking.patients import health_forms
from booking.public.manage import MANAGE_ACTION_LIMIT, appointment_for_link
from booking.public.problems import PageProblem
from booking.public.week_of_times import google_calendar_link
from booking.rules.health_forms import NEEDS_REVIEW
from booking.web.requests import writing

health_form_pages = Blueprint("health_forms", __name__, url_prefix="/manage")

ANSWER_PREFIX = "answer-"


class SignatureForm(FlaskForm):
    """The signature part of the page; the answers are one field per question of the form,
    named answer-<key>, read with the rest by the signed form's model."""

    signed_by = StringField(render_kw={"autocomplete": "name"})
    signer_is_guardian = BooleanField()


def _visit_and_form(token: str, slug: str) -> tuple[Appointment, health_forms.VisitForm]:
    appointment = appointment_for_link(token)
    visit_form = health_forms.visit_form(appointment, slug)
    if visit_form is None:
        abort(404)
    return appointment, visit_form


@health_form_pages.route("/<token>/forms/<form>", methods=["GET", "POST"])
@MANAGE_ACTION_LIMIT
def health_form(token: str, form: str):
    if request.method == "POST":
        return _sign(token, form)
    appointment, visit_form = _visit_and_form(token, form)
    return _page(token, appointment, visit_form, SignatureForm(), answers={}, errors={})


@writing
def _sign(token: str, slug: str):
    signature_form = SignatureForm()
    # The security token first: a forged request learns nothing, not even whether the visit
    # asks for this form.
    if not signature_form.validate_on_submit():
        raise PageProblem(
            400, _("Please send the form again"),
            _("The page was open too long to be sent safely. Go back and send it again."),
            back_url=url_for(".health_form", token=token, form=slug),
        )
    appointment, visit_form = _visit_and_form(token, slug)
    answers = {
        question["key"]: request.form.get(ANSWER_PREFIX + question["key"], "")
        for question in visit_form.form.questions
    }
    if not appointment.is_live:
        raise PageProblem(
            409, _("This visit is cancelled"),
            _("There is no form to complete for a cancelled visit."),
            back_url=url_for("public.manage.show", token=token),
        )
    try:
        signature = health_forms.FormSignature.model_validate(
            {
                "answers": answers,
                "signed_by": signature_form.signed_by.data or "",
                "signer_is_guardian": bool(signature_form.signer_is_guardian.data),
            },
            context=health_forms.signature_context(appointment, visit_form.form),
        )
    except ValidationError as error:
        errors = _errors_in_words(error)
        return _page(token, appointment, visit_form, signature_form, answers, errors), 400
    signed = health_forms.sign_form(appointment, visit_form.form, signature, utc_now())
    if signed.status == NEEDS_REVIEW:
        flash(_("Thank you: your form is signed. Some answers need a word with your therapist, "
                "who will go over them with you before any treatment."))
    else:
        flash(_("Thank you: your form is complete."))
    return redirect(url_for("public.manage.show", token=token), 303)


def _errors_in_words(error: ValidationError) -> dict[str, str]:
    """Each problem on the place of the page it is about: "answer-<key>", "signed_by" or
    "signer_is_guardian"."""
    errors: dict[str, str] = {}
    for problem in error.errors(include_url=False):
        place = problem["loc"]
        if place[:1] == ("answers",) and len(place) > 1:
            name = ANSWER_PREFIX + str(place[1])
            message = (_("Answer yes or no.") if problem["type"] in ("required", "yes_no")
                       else _("Write your answer in at most 2000 characters, on plain lines."))
        elif place[:1] == ("signer_is_guardian",):
            name = "signer_is_guardian"
            message = _("Confirm that you are the child's parent or guardian.")
        else:
            name = "signed_by"
            message = (_("Type your full name to sign.") if problem["type"] == "required"
                       else _("Write your name on one line, in at most 200 characters."))
        errors.setdefault(name, message)
    return errors


def _page(token, appointment, visit_form, signature_form, answers, errors):
    consent = [part.strip() for part in visit_form.form.consent.split("\n\n") if part.strip()]
    clinic = current_clinic()
    # The summary says which question each "Answer yes or no." is about.
    asked = {ANSWER_PREFIX + question["key"]: question["text"]
             for question in visit_form.form.questions}
    summary = [(name, f"{asked[name]} {message}" if name in asked else message)
               for name, message in errors.items()]
    return render_template(
        "public/health_form.html",
        clinic=clinic,
        zone=zone_named(clinic.timezone),
        google_link=google_calendar_link(appointment, clinic),
        token=token,
        appointment=appointment,
        visit_form=visit_form,
        questions=visit_form.form.questions,
        consent=consent,
        for_child=bool(appointment.patient_guardian_name),
        signature_form=signature_form,
        answers=answers,
        errors=errors,
        summary=summary,
        answer_prefix=ANSWER_PREFIX,
    )
