"""The back office's busy calendars: a therapist's calendars kept elsewhere (a hospital rota, a
personal calendar) whose events block online booking. Listed with how their last refresh went;
added by address or upload, refreshed, replaced and removed by the front desk for any
therapist, or by the therapist for themself. booking/calendars/busy_calendars.py does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from booking.calendars import busy_calendars as busy_calendar_sources
from booking.calendars.busy_calendars import ExternalCalendarError
from booking.clinic.reference import clinic_zone
from booking.desk import access
from booking.desk.access import EVERYONE, allowed
from booking.desk.forms import (
    BusyCalendarByUrlForm,
    BusyCalendarReplaceForm,
    BusyCalendarUploadForm,
    PostOnlyForm,
)
from booking.desk.pages import require_form_token
from booking.extensions import csrf, db
from booking.models import ExternalBusyTime, ExternalCalendar, Therapist, audit, utc_now
from booking.web.requests import writing

# "How many busy times it adds" counts those starting within this many weeks from now.
COMING_WEEKS = 4
# An upload request may be this much bigger than the file itself: the multipart envelope,
# the name and the CSRF token.
FORM_ALLOWANCE = 64 * 1024
UPLOADED = "uploaded file"

busy_calendars = Blueprint("busy_calendars", __name__)


@dataclass(frozen=True)
class ListedCalendar:
    """One line of the list: the calendar, where it comes from, and what it blocks soon."""

    calendar: ExternalCalendar
    source: str  # the address's host only (the rest may be a secret), or "uploaded file"
    busy_ahead: int


def source_of(calendar: ExternalCalendar) -> str:
    if calendar.is_upload:
        return UPLOADED
    try:
        return urlsplit(calendar.url).hostname or "an address"
    except ValueError:
        return "an address"


def busy_times_ahead(therapist: Therapist, since: datetime, until: datetime) -> dict[int, int]:
    """Per calendar of the therapist: how many of its busy times start in [since, until)."""
    rows = db.session.execute(
        select(ExternalBusyTime.calendar_id, func.count())
        .where(
            ExternalBusyTime.therapist_id == therapist.id,
            ExternalBusyTime.start_at >= since,
            ExternalBusyTime.start_at < until,
        )
        .group_by(ExternalBusyTime.calendar_id)
    )
    return {calendar_id: count for calendar_id, count in rows}


def calendar_in_reach(therapist: Therapist, calendar_id: int) -> ExternalCalendar:
    """The therapist's calendar with this id. For a therapist anything else is a 403, as
    elsewhere in the back office, so guessing ids tells them nothing."""
    calendar = db.session.get(ExternalCalendar, calendar_id)
    if calendar is None or calendar.therapist_id != therapist.id:
        abort(403 if access.is_therapist() else 404)
    return calendar


def _upload_read_first(view):
    """The upload is read, under the calendar's size limit rather than the app's
    MAX_CONTENT_LENGTH (sized for JSON bodies), before the view's transaction takes the write
    lock: a slow upload keeps nobody else from writing. This is why these two views are exempt
    from the app-wide CSRF check, which would read the request first, under the smaller
    limit; their forms check the token themselves."""

    @wraps(view)
    def read_first(*args, **kwargs):
        request.max_content_length = (
            current_app.config["EXTERNAL_CALENDAR_MAX_BYTES"] + FORM_ALLOWANCE
        )
        g.upload_too_large = False
        try:
            request.files  # noqa: B018 (reads the body now, under this limit)
        except RequestEntityTooLarge:
            # Nothing of it is read. What reads the form next (the page's log-out button)
            # finds it empty rather than over the limit again.
            request.form = request.files = ImmutableMultiDict()
            g.upload_too_large = True
        return view(*args, **kwargs)

    return read_first


# --- the list ----------------------------------------------------------------------------


@busy_calendars.get("/therapists/<slug>/busy-calendars")
@allowed(*EVERYONE)
def calendar_list(slug: str):
    therapist = access.therapist_in_reach(slug)
    return _list_page(therapist)


def _list_page(therapist: Therapist, *, url_form=None, upload_form=None, status=200):
    now = utc_now()
    ahead = busy_times_ahead(therapist, now, now + timedelta(weeks=COMING_WEEKS))
    listed = [
        ListedCalendar(calendar, source_of(calendar), ahead.get(calendar.id, 0))
        for calendar in busy_calendar_sources.calendars_of(therapist)
    ]
    return render_template(
        "desk/busy_calendars.html",
        therapist=therapist,
        listed=listed,
        coming_weeks=COMING_WEEKS,
        url_form=url_form or BusyCalendarByUrlForm(formdata=None),
        upload_form=upload_form or BusyCalendarUploadForm(formdata=None),
        button_form=PostOnlyForm(formdata=None),
        **_limits(),
    ), status


def _limits() -> dict:
    config = current_app.config
    return {
        "size_limit": _size(config["EXTERNAL_CALENDAR_MAX_BYTES"]),
        "refresh_minutes": round(config["EXTERNAL_CALENDAR_REFRESH_SECONDS"] / 60),
    }


def _size(count: int) -> str:
    mib = 1024 * 1024
    return f"{count // mib} MiB" if count >= mib and count % mib == 0 else f"{count:,} bytes"


# --- adding --------------------------------------------------------------------------------


@busy_calendars.post("/therapists/<slug>/busy-calendars/by-url")
@allowed(*EVERYONE)
@writing
def add_by_url(slug: str):
    therapist = access.therapist_in_reach(slug)
    form = BusyCalendarByUrlForm()
    if not form.validate_on_submit():
        return _list_page(therapist, url_form=form, status=422)
    try:
        # Fetched once now, within EXTERNAL_CALENDAR_TIMEOUT_SECONDS: a wrong address is
        # said at once rather than at the first refresh.
        calendar = busy_calendar_sources.add_calendar_by_url(
            therapist, form.url.data, name=form.name.data or ""
        )
    except ExternalCalendarError as refused:
        _show_refusal(form, refused, default=form.url)
        return _list_page(therapist, url_form=form, status=refused.status)
    _record("busy_calendar_added", calendar)
    flash(f"Added {calendar.name}: {_blocks(calendar)}.")
    return redirect(url_for(".calendar_list", slug=slug), 303)


@busy_calendars.post("/therapists/<slug>/busy-calendars/upload")
@csrf.exempt  # the form checks its own token, once the request is read under the upload limit
@allowed(*EVERYONE)
@_upload_read_first
@writing
def add_upload(slug: str):
    therapist = access.therapist_in_reach(slug)
    form = _posted_upload(BusyCalendarUploadForm)
    if isinstance(form, int):
        refused = BusyCalendarUploadForm(formdata=None)
        refused.file.errors = [_too_large()]
        return _list_page(therapist, upload_form=refused, status=form)
    if not _validated(form):
        return _list_page(therapist, upload_form=form, status=422)
    try:
        calendar = busy_calendar_sources.add_calendar_upload(
            therapist,
            _file_bytes(form),
            name=form.name.data or _name_from_file(form.file.data.filename),
        )
    except ExternalCalendarError as refused:
        _show_refusal(form, refused, default=form.file)
        return _list_page(therapist, upload_form=form, status=refused.status)
    _record("busy_calendar_added", calendar)
    flash(f"Added {calendar.name}: {_blocks(calendar)}.")
    return redirect(url_for(".calendar_list", slug=slug), 303)


# --- one calendar --------------------------------------------------------------------------


@busy_calendars.post("/therapists/<slug>/busy-calendars/<int:calendar_id>/refresh")
@allowed(*EVERYONE)
@writing
def refresh(slug: str, calendar_id: int):
    therapist = access.therapist_in_reach(slug)
    calendar = calendar_in_reach(therapist, calendar_id)
    require_form_token()
    outcome = busy_calendar_sources.refresh_calendar(calendar)
    if outcome == "failed":
        flash(
            f"{calendar.name} could not be refreshed: {calendar.last_error}. "
            f"It keeps using the copy from {_when(calendar.succeeded_at)}."
        )
    elif outcome == "changed":
        flash(f"Refreshed {calendar.name}: it changed; {_blocks(calendar)}.")
    else:
        flash(f"Refreshed {calendar.name}: unchanged since the last copy.")
    return redirect(url_for(".calendar_list", slug=slug), 303)


@busy_calendars.get("/therapists/<slug>/busy-calendars/<int:calendar_id>/replace")
@allowed(*EVERYONE)
def replace_form(slug: str, calendar_id: int):
    therapist = access.therapist_in_reach(slug)
    calendar = calendar_in_reach(therapist, calendar_id)
    return _replace_page(therapist, calendar)


def _replace_page(therapist, calendar, form=None, status=200):
    return render_template(
        "desk/busy_calendars_replace.html",
        therapist=therapist,
        calendar=calendar,
        source=source_of(calendar),
        form=form or BusyCalendarReplaceForm(formdata=None),
        **_limits(),
    ), status


@busy_calendars.post("/therapists/<slug>/busy-calendars/<int:calendar_id>/replace")
@csrf.exempt  # the form checks its own token, once the request is read under the upload limit
@allowed(*EVERYONE)
@_upload_read_first
@writing
def replace(slug: str, calendar_id: int):
    therapist = access.therapist_in_reach(slug)
    calendar = calendar_in_reach(therapist, calendar_id)
    form = _posted_upload(BusyCalendarReplaceForm)
    if isinstance(form, int):
        refused = BusyCalendarReplaceForm(formdata=None)
        refused.file.errors = [_too_large()]
        return _replace_page(therapist, calendar, refused, status=form)
    if not _validated(form):
        return _replace_page(therapist, calendar, form, status=422)
    try:
        busy_calendar_sources.replace_upload(calendar, _file_bytes(form))
    except ExternalCalendarError as refused:
        _show_refusal(form, refused, default=form.file)
        return _replace_page(therapist, calendar, form, status=refused.status)
    _record("busy_calendar_replaced", calendar)
    flash(f"Replaced {calendar.name}: {_blocks(calendar)}.")
    return redirect(url_for(".calendar_list", slug=slug), 303)


@busy_calendars.get("/therapists/<slug>/busy-calendars/<int:calendar_id>/remove")
@allowed(*EVERYONE)
def confirm_remove(slug: str, calendar_id: int):
    therapist = access.therapist_in_reach(slug)
    calendar = calendar_in_reach(therapist, calendar_id)
    return render_template(
        "desk/busy_calendars_remove.html",
        therapist=therapist,
        calendar=calendar,
        source=source_of(calendar),
        form=PostOnlyForm(formdata=None),
    )


@busy_calendars.post("/therapists/<slug>/busy-calendars/<int:calendar_id>/remove")
@allowed(*EVERYONE)
@writing
def remove(slug: str, calendar_id: int):
    therapist = access.therapist_in_reach(slug)
    calendar = calendar_in_reach(therapist, calendar_id)
    require_form_token()
    _record("busy_calendar_removed", calendar)
    name = calendar.name
    busy_calendar_sources.remove_calendar(calendar)
    flash(f"Removed {name}: its times no longer block booking.")
    return redirect(url_for(".calendar_list", slug=slug), 303)


# --- reading the forms ---------------------------------------------------------------------


def _posted_upload(form_class):
    """The posted form, or 413 when the request was bigger than the limit (nothing read,
    nothing changed)."""
    return 413 if g.upload_too_large else form_class()


def _validated(form) -> bool:
    if form.validate_on_submit():
        return True
    if "csrf_token" in form.errors:
        abort(400, description="the form is missing its security token")
    return False


def _file_bytes(form) -> bytes:
    # One byte past the limit is enough for external_calendars to say the file is too big.
    return form.file.data.read(current_app.config["EXTERNAL_CALENDAR_MAX_BYTES"] + 1)


def _too_large() -> str:
    limit = current_app.config["EXTERNAL_CALENDAR_MAX_BYTES"]
    return f"the file is too big; at most {_size(limit)} are accepted"


def _name_from_file(filename: str | None) -> str:
    """"Hospital rota.ics" -> "Hospital rota"; the name staff see when they gave none."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = base[: -len(".ics")] if base.lower().endswith(".ics") else base
    return stem[: busy_calendar_sources.NAME_MAX]


def _show_refusal(form, refused: ExternalCalendarError, *, default) -> None:
    field = getattr(form, refused.field, None) or default
    field.errors = [*field.errors, refused.message]


# --- saying what happened ------------------------------------------------------------------


def _blocks(calendar: ExternalCalendar) -> str:
    now = utc_now()
    soon = busy_times_ahead(
        calendar.therapist, now, now + timedelta(weeks=COMING_WEEKS)
    ).get(calendar.id, 0)
    return f"{soon} busy time(s) in the coming {COMING_WEEKS} weeks"


def _when(instant: datetime | None) -> str:
    if instant is None:
        return "never"
    return f"{instant.astimezone(clinic_zone()):%a %d %b %Y %H:%M}"


def _record(action: str, calendar: ExternalCalendar) -> None:
    audit.record(
        action,
        actor=current_user.actor,
        therapist_id=calendar.therapist_id,
        details={
            "calendar": calendar.name,
            "source": source_of(calendar),
            "therapist": calendar.therapist.slug,
        },
    )
