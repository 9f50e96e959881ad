"""The clinic's calendar: every therapist's day side by side (a therapist sees their own
column), and one therapist's week."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, render_template, request

from booking.clinic.reference import clinic_zone
from booking.desk import access, queries
from booking.desk.access import EVERYONE, allowed
from booking.desk.calendar_grid import grid_of, week_days
from booking.desk.clearances import day_evaluations_to_clear
from booking.desk.pages import today
from booking.patients.health_forms import forms_of_visits
from booking.rules.calendar_range import OUT_OF_RANGE, is_within_calendar
from booking.rules.health_forms import NEEDS_REVIEW

calendar = Blueprint("calendar", __name__)


@calendar.get("/")
@allowed(*EVERYONE)
def day():
    shown = _day_asked()
    therapists = queries.active_therapists(access.own_therapist_id())
    grid = grid_of(queries.calendar_columns(therapists, [shown], clinic_zone()))
    return render_template(
        "desk/day.html", grid=grid, shown=shown, today=today(),
        needs_review=_forms_to_review(grid), **_neighbours(shown, 1),
        **day_evaluations_to_clear(shown),
    )


def _forms_to_review(grid) -> set[int]:
    """The day's visits with a health form a therapist must go over before treatment."""
    visits = [
        block.visit for column in grid.columns for block in column.blocks
        if block.kind == "visit"
    ]
    return {
        visit_id
        for visit_id, forms in forms_of_visits(visits).items()
        if any(each.status == NEEDS_REVIEW for each in forms)
    }


@calendar.get("/therapists/<slug>/week")
@allowed(*EVERYONE)
def week(slug: str):
    therapist = access.therapist_in_reach(slug)
    shown = _day_asked()
    days = week_days(shown)
    grid = grid_of(queries.calendar_columns([therapist], days, clinic_zone()))
    return render_template(
        "desk/week.html",
        grid=grid,
        therapist=therapist,
        days=days,
        shown=shown,
        today=today(),
        **_neighbours(shown, 7),
    )


def _day_asked() -> date:
    written = request.args.get("day", "").strip()
    if not written:
        return today()
    try:
        asked = date.fromisoformat(written)
    except ValueError:
        abort(400, description="day: must be a date like 2026-12-01")
    if not is_within_calendar(asked):
        abort(400, description=f"day: {OUT_OF_RANGE}")
    return asked


def _neighbours(shown: date, step: int) -> dict:
    return {
        "previous": (shown - timedelta(days=step)).isoformat(),
        "following": (shown + timedelta(days=step)).isoformat(),
    }
