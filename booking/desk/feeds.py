"""A therapist's calendar feed in the back office: its secret URL, and replacing it. Only the
therapist themself or an admin sees it; the URL is a secret even from the front desk."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from booking.calendars.feed_tokens import feed_url_for, rotate_feed_token
from booking.desk import access
from booking.desk.access import EVERYONE, allowed, current_role
from booking.desk.forms import PostOnlyForm
from booking.desk.pages import require_form_token
from booking.models import StaffRole, Therapist, audit
from booking.web.requests import writing

feeds = Blueprint("feeds", __name__)


def _feed_owner(slug: str) -> Therapist:
    if current_role() is StaffRole.FRONT_DESK:
        abort(403)
    return access.therapist_in_reach(slug)


@feeds.get("/therapists/<slug>/feed")
@allowed(*EVERYONE)
def feed(slug: str):
    therapist = _feed_owner(slug)
    return render_template(
        "desk/feed.html",
        therapist=therapist,
        feed_url=feed_url_for(therapist),
        rotate_form=PostOnlyForm(formdata=None),
    )


@feeds.post("/therapists/<slug>/feed/rotate")
@allowed(*EVERYONE)
@writing
def rotate_feed(slug: str):
    therapist = _feed_owner(slug)
    require_form_token()
    rotate_feed_token(therapist)
    audit.record("feed_rotated", actor=current_user.actor, therapist_id=therapist.id,
                 details={"therapist": therapist.slug})
    flash("A new feed URL: the old one has stopped working. Subscribe again with this one.")
    return redirect(url_for(".feed", slug=slug), 303)
