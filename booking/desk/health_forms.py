"""A visit's health forms in the back office: the answers, for therapists and admins only
(front desk sees whether a form is missing, complete or needs review, never an answer), and a
therapist marking a needs-review form as gone over with the patient."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from booking.desk import access
from booking.desk.access import allowed
from booking.desk.forms import PostOnlyForm
from booking.desk.pages import require_form_token
from booking.models import StaffRole, utc_now
from booking.patients import health_forms as forms
from booking.rules.health_forms import NEEDS_REVIEW
from booking.web.requests import writing

health_forms = Blueprint("health_forms", __name__)

# Who reads the answers: they are health data, for the people who treat.
READ_ANSWERS = (StaffRole.ADMIN, StaffRole.THERAPIST)


def _signed_form_of(appointment_id: int, slug: str):
    visit = access.appointment_in_reach(appointment_id)
    visit_form = forms.visit_form(visit, slug)
    if visit_form is None:
        abort(404)
    return visit, visit_form


@health_forms.get("/appointments/<int:appointment_id>/forms/<slug>")
@allowed(*READ_ANSWERS)
def answers(appointment_id: int, slug: str):
    visit, visit_form = _signed_form_of(appointment_id, slug)
    return render_template(
        "desk/health_form.html",
        visit=visit,
        visit_form=visit_form,
        review_form=PostOnlyForm(formdata=None),
        reviewable=visit_form.status == NEEDS_REVIEW,
    )


@health_forms.post("/appointments/<int:appointment_id>/forms/<slug>/reviewed")
@allowed(*READ_ANSWERS)
@writing
def reviewed(appointment_id: int, slug: str):
    require_form_token()
    visit, visit_form = _signed_form_of(appointment_id, slug)
    if visit_form.status != NEEDS_REVIEW:
        flash(f"{visit_form.form.title}: nothing to review.")
    else:
        forms.mark_reviewed(visit_form.signed, visit, actor=current_user.actor, now=utc_now())
        flash(f"{visit_form.form.title}: marked as reviewed with the patient.")
    return redirect(url_for("desk.appointments.appointment", appointment_id=visit.id), 303)
