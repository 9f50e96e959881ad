"""A therapist's hours and time off: the schedule page, weekly hours written as in the clinic
file, time off added and removed. A change never moves a visit; the visits it strands are
listed on the page until staff move or cancel them (booking/scheduling/therapist_hours.py)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from booking import scheduling
from booking.clinic.reference import clinic_zone
from booking.desk import access
from booking.desk.access import DESK, EVERYONE, allowed
from booking.desk.forms import PostOnlyForm, TimeOffForm, WeeklyHoursForm
from booking.desk.pages import require_form_token
from booking.extensions import db
from booking.models import Therapist, TimeOff, utc_now
from booking.scheduling import therapist_hours
from booking.web.requests import writing

hours = Blueprint("hours", __name__)


@hours.get("/therapists/<slug>/schedule")
@allowed(*EVERYONE)
def schedule(slug: str):
    therapist = access.therapist_in_reach(slug)
    return _schedule_page(therapist)


def _schedule_page(therapist: Therapist, *, hours_form=None, time_off_form=None, status=200):
    if hours_form is None:
        hours_form = WeeklyHoursForm(formdata=None)
        for weekday, field in enumerate(hours_form.day_fields()):
            field.data = ", ".join(
                f"{row.start_time:%H:%M}-{row.end_time:%H:%M}"
                for row in therapist.hours
                if row.weekday == weekday
            )
    now_local = utc_now().astimezone(clinic_zone()).replace(tzinfo=None)
    stranded = therapist_hours.stranded_visits(therapist)
    return render_template(
        "desk/schedule.html",
        therapist=therapist,
        hours_form=hours_form,
        time_off_form=time_off_form or TimeOffForm(formdata=None),
        remove_form=PostOnlyForm(formdata=None),
        time_off=[row for row in therapist.time_off if row.ends_local > now_local],
        stranded=stranded,
        courses=scheduling.places_in_series(visit.id for visit in stranded),
        can_change=not access.is_therapist(),
    ), status


@hours.post("/therapists/<slug>/hours")
@allowed(*DESK)
@writing
def weekly_hours(slug: str):
    therapist = access.therapist_in_reach(slug)
    form = WeeklyHoursForm()
    if not form.validate_on_submit():
        return _schedule_page(therapist, hours_form=form, status=422)
    weekly, refused = {}, False
    for weekday, field in enumerate(form.day_fields()):
        try:
            weekly[weekday] = therapist_hours.parse_day_hours(weekday, field.data or "", field.name)
        except therapist_hours.ScheduleError as error:
            field.errors = [*field.errors, error.message]
            refused = True
    if refused:
        return _schedule_page(therapist, hours_form=form, status=422)
    stranded = therapist_hours.set_weekly_hours(therapist, weekly, by=current_user.actor)
    flash(_saved_message("Hours saved", stranded))
    return redirect(url_for(".schedule", slug=slug), 303)


@hours.post("/therapists/<slug>/time-off")
@allowed(*DESK)
@writing
def add_time_off(slug: str):
    therapist = access.therapist_in_reach(slug)
    form = TimeOffForm()
    if not form.validate_on_submit():
        return _schedule_page(therapist, time_off_form=form, status=422)
    stranded = therapist_hours.add_time_off(
        therapist,
        form.starts.data,
        form.ends.data,
        (form.reason.data or "").strip(),
        by=current_user.actor,
    )
    flash(_saved_message("Time off added", stranded))
    return redirect(url_for(".schedule", slug=slug), 303)


@hours.post("/therapists/<slug>/time-off/<int:time_off_id>/remove")
@allowed(*DESK)
@writing
def remove_time_off(slug: str, time_off_id: int):
    therapist = access.therapist_in_reach(slug)
    row = db.session.get(TimeOff, time_off_id)
    if row is None or row.therapist_id != therapist.id:
        abort(404)
    require_form_token()
    therapist_hours.remove_time_off(row, by=current_user.actor)
    flash("Time off removed.")
    return redirect(url_for(".schedule", slug=slug), 303)


def _saved_message(done: str, stranded: list) -> str:
    if not stranded:
        return f"{done}."
    return (
        f"{done}. {len(stranded)} booked visit(s) now fall outside the hours or in time off: "
        "they are listed below, still booked; move or cancel each one."
    )
