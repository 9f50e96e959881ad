"""GET /feeds/<token>.ics: a therapist's calendar feed, or the clinic-wide one (CONTRACT 5).

Parse, check the token, answer 304 when the subscriber's copy is current (from the feed's
version alone), else build the feed. A wrong or revoked token is a plain 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request
from werkzeug.http import http_date

from booking.calendars.feed_tokens import feed_owner_for_token
from booking.clinic.reference import ClinicNotConfigured, current_clinic
from booking.feeds.content import FeedVersion, build_feed, feed_version
from booking.models import utc_now

feeds = Blueprint("feeds", __name__)

# Patient initials are in it: no shared cache may keep it, and every use asks us first
# (cheap: an unchanged feed is a 304).
CACHE_CONTROL = "private, no-cache"


@feeds.get("/feeds/<token>.ics")
def calendar_feed(token: str):
    if len(token) > 64:
        abort(404)
    try:
        clinic = current_clinic()  # first: the token check then finds it in the session
    except ClinicNotConfigured:
        abort(404)
    owner = feed_owner_for_token(token)
    if owner is None:
        abort(404)
    now = utc_now()
    version = feed_version(owner, clinic, now)
    headers = {
        "ETag": f'"{version.etag}"',
        "Last-Modified": http_date(version.last_modified),
        "Cache-Control": CACHE_CONTROL,
    }
    if _subscriber_is_current(version):
        return Response(status=304, headers=headers)
    body = build_feed(owner, clinic, now)
    return Response(
        body,
        headers={**headers, "Content-Disposition": 'inline; filename="calendar.ics"'},
        content_type="text/calendar; charset=utf-8",
    )


def _subscriber_is_current(version: FeedVersion) -> bool:
    # RFC 9110 13.2.2: If-None-Match, when sent, decides alone; If-Modified-Since otherwise.
    if request.if_none_match:
        return request.if_none_match.contains_weak(version.etag)
    since = request.if_modified_since
    return since is not None and version.last_modified <= since
