"""The front desk's call lists: visits to follow up after a patient was found not cleared for
them (nothing is cancelled on its own), and patients to call back the same day after a
check-in that says "worse" or a soreness of 7 or more. Each item is marked done once called.

The lists name the patient, the number given with the visit and the visit: never a clearance
note or a check-in answer.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from booking.desk.access import DESK, allowed
from booking.desk.forms import PostOnlyForm
from booking.desk.pages import require_form_token
from booking.extensions import db
from booking.models import CallListItem, CallListKind
from booking.scheduling.call_lists import mark_done, open_items
from booking.web.requests import writing

call_lists = Blueprint("call_lists", __name__)

_PAGES = {
    CallListKind.FOLLOW_UP: (
        "follow_ups", "Follow-up list",
        "Visits booked for a service the patient has since been found not cleared for. "
        "Call the patient to talk about their options; cancel or change the visit from its page.",
    ),
    CallListKind.CALL_BACK: (
        "call_backs", "Call-back list",
        "Patients whose check-in after dry needling asks for a call today. Their therapist "
        "sees the answers.",
    ),
}


@call_lists.get("/follow-ups")
@allowed(*DESK)
def follow_ups():
    return _list_page(CallListKind.FOLLOW_UP)


@call_lists.get("/call-backs")
@allowed(*DESK)
def call_backs():
    return _list_page(CallListKind.CALL_BACK)


def _list_page(kind: CallListKind):
    _view, title, explanation = _PAGES[kind]
    return render_template(
        "desk/call_list.html", title=title, explanation=explanation, items=open_items(kind),
        done_form=PostOnlyForm(formdata=None),
    )


@call_lists.post("/call-lists/<int:item_id>/done")
@allowed(*DESK)
@writing
def done(item_id: int):
    require_form_token()
    item = db.session.get(CallListItem, item_id)
    if item is None:
        abort(404)
    mark_done(item, by=current_user.actor)
    flash(f"Marked done: {item.appointment.patient.name}.")
    view, _title, _explanation = _PAGES[CallListKind(item.kind)]
    return redirect(url_for(f".{view}"), 303)
