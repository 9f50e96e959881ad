"""Patients as the back office sees them: the list with its search, a patient's page (their
visits, their evaluation and clearances, every message about them) and resending a message."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from booking import scheduling
from booking.desk import access, queries
from booking.desk.access import DESK, EVERYONE, allowed
from booking.desk.clearances import patient_clinical_record
from booking.desk.forms import PostOnlyForm
from booking.desk.pages import require_form_token
from booking.extensions import db
from booking.models import Notification, NotificationStatus, audit, utc_now
from booking.notifications import outbox
from booking.patients.health_forms import forms_of_visits
from booking.web.requests import writing

patients = Blueprint("patients", __name__)

RESENDABLE = (NotificationStatus.SENT, NotificationStatus.FAILED, NotificationStatus.DROPPED)


@patients.get("/patients")
@allowed(*DESK)
def patient_list():
    search = request.args.get("q", "").strip()
    return render_template(
        "desk/patients.html", search=search, patients=queries.find_patients(search)
    )


@patients.get("/patients/<int:patient_id>")
@allowed(*EVERYONE)
def patient(patient_id: int):
    person = access.patient_in_reach(patient_id)
    visits = queries.visits_of(person, access.own_therapist_id())
    now = utc_now()
    return render_template(
        "desk/patient.html",
        person=person,
        upcoming=sorted((v for v in visits if v.start_at > now), key=lambda v: v.start_at),
        past=[v for v in visits if v.start_at <= now],
        evaluated=scheduling.has_evaluation_before(person, now),
        clinical=patient_clinical_record(person, visits),
        notifications=queries.notifications_for([visit.id for visit in visits]),
        resendable=RESENDABLE,
        can_resend=not access.is_therapist(),
        resend_form=PostOnlyForm(formdata=None),
        health_forms=forms_of_visits(visits),
        courses=queries.courses_of(person, access.own_therapist_id()),
    )


@patients.post("/notifications/<int:notification_id>/resend")
@allowed(*DESK)
@writing
def resend(notification_id: int):
    notification = db.session.get(Notification, notification_id)
    # A waitlist offer's mail is not resent: a lapsed offer passes on to the next patient.
    if notification is None or notification.appointment is None:
        abort(404)
    require_form_token()
    patient_id = notification.appointment.patient_id
    if notification.status not in RESENDABLE:
        flash("That message is still waiting to be sent; it goes out as planned.")
        return redirect(url_for(".patient", patient_id=patient_id), 303)
    now = utc_now()
    outbox.plan_resend(notification, now)
    audit.record(
        "notification_resent",
        actor=current_user.actor,
        appointment_id=notification.appointment_id,
        therapist_id=notification.appointment.therapist_id,
        details={"kind": notification.kind},
        at=now,
    )
    flash(f"The {notification.kind} goes out again in a moment.")
    return redirect(url_for(".patient", patient_id=patient_id), 303)
