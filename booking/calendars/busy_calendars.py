"""Therapists' calendars kept elsewhere (personal, hospital): added by ICS address or upload,
refreshed by the scheduler, and turned into busy times that block online booking.

Fetching is careful, since the address comes from a user: only http and https (webcal is
https), every address the host name resolves to must be a public one unless the clinic allows
private networks (EXTERNAL_CALENDAR_ALLOW_PRIVATE_ADDRESSES), the connection goes to the
address that was checked, redirects are checked the same way, and there is a time limit and a
size limit. A refresh asks with the ETag / Last-Modified it was last given (conditional GET).
A source that fails keeps its last good copy, which keeps blocking; the error is recorded on
the calendar for staff to see.

Functions for the back office (docs/calendar-feeds.md): add_calendar_by_url,
add_calendar_upload, replace_upload, remove_calendar, calendars_of, refresh_calendar,
refresh_external_calendars. Only the last commits (it is the scheduler's job); the others
leave the commit to the caller, and refuse bad input with ExternalCalendarError before
changing anything.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlsplit

from flask import current_app
from sqlalchemy import delete, insert, select

from booking.calendars.ical import ReadingLimits, UnreadableCalendar, busy_spans, read_calendar
from booking.clinic.reference import clinic_zone
from booking.database import hold_write_lock, is_postgresql
from booking.extensions import db
from booking.models import ExternalBusyTime, ExternalCalendar, Therapist, utc_now
from booking.scheduling import waitlist_offers

log = logging.getLogger(__name__)

NAME_MAX = 200
URL_MAX = 2000
REDIRECTS_FOLLOWED = 3
USER_AGENT = "clinic-booking calendar import"


class ExternalCalendarError(Exception):
    """Bad input for a calendar (an address we may not fetch, a file that is not .ics)."""

    status = 422

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


class FetchFailed(Exception):
    """The source could not be fetched or read; the message says why, for staff."""


# --- for the back office ---------------------------------------------------------------------


def calendars_of(therapist: Therapist) -> list[ExternalCalendar]:
    return list(
        db.session.scalars(
            select(ExternalCalendar)
            .where(ExternalCalendar.therapist_id == therapist.id)
            .order_by(ExternalCalendar.id)
        )
    )


def add_calendar_by_url(
    therapist: Therapist, url: str, *, name: str = "", now: datetime | None = None
) -> ExternalCalendar:
    """Add the calendar at this http(s) address, fetched once now; refreshed from then on.

    Raises ExternalCalendarError (field "url" or "name") when the address may not be
    fetched, cannot be, or is not a calendar; nothing is added then.
    """
    now = now or utc_now()
    name = _checked_name(name, default=_host_of(url))
    url = _checked_url(url)
    try:
        fetched = _fetch(url, etag="", last_modified="")
        spans = _spans_of(fetched.content, now)
    except (FetchFailed, UnreadableCalendar) as error:
        raise ExternalCalendarError(f"that calendar could not be added: {error}", field="url") \
            from None
    calendar = ExternalCalendar(
        therapist_id=therapist.id,
        name=name,
        url=url,
        content=fetched.content,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        refreshed_at=now,
        succeeded_at=now,
        last_error="",
        created_at=now,
    )
    _store_with_busy_times(calendar, spans, now)
    return calendar


def add_calendar_upload(
    therapist: Therapist, data: bytes, *, name: str, now: datetime | None = None
) -> ExternalCalendar:
    """Add an uploaded .ics file. Raises ExternalCalendarError (field "file" or "name")."""
    now = now or utc_now()
    name = _checked_name(name, default="Uploaded calendar")
    spans = _checked_upload(data, now)
    calendar = ExternalCalendar(
        therapist_id=therapist.id,
        name=name,
        url="",
        content=data,
        refreshed_at=now,
        succeeded_at=now,
        last_error="",
        created_at=now,
    )
    _store_with_busy_times(calendar, spans, now)
    return calendar


def replace_upload(
    calendar: ExternalCalendar, data: bytes, *, now: datetime | None = None
) -> ExternalCalendar:
    """A newer copy of an uploaded calendar. Raises ExternalCalendarError (field "file")."""
    now = now or utc_now()
    if not calendar.is_upload:
        raise ExternalCalendarError(
            "this calendar is read from its address; it cannot be replaced by a file",
            field="file",
        )
    spans = _checked_upload(data, now)
    calendar.content = data
    calendar.refreshed_at = calendar.succeeded_at = now
    calendar.last_error = ""
    _store_with_busy_times(calendar, spans, now)
    return calendar


def remove_calendar(calendar: ExternalCalendar) -> None:
    """Forget the calendar and the busy times it gave. The caller commits."""
    earlier = _busy_spans_of(calendar)
    db.session.execute(delete(ExternalBusyTime).where(ExternalBusyTime.calendar_id == calendar.id))
    db.session.delete(calendar)
    db.session.flush()
    _offer_times_no_longer_busy(calendar.therapist_id, earlier, set(), utc_now())


# --- the scheduler's job ---------------------------------------------------------------------


@dataclass
class RefreshReport:
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def refresh_external_calendars(now: datetime | None = None) -> RefreshReport:
    """Refresh every external calendar (the scheduler runs this every 15 minutes).

    Each one is fetched with a conditional GET (addresses) and its busy times re-expanded
    when it changed or the horizon moved on a day (uploads too). One commit per calendar;
    a failing one keeps its last good copy and records the error. Safe to run in several
    processes at once: the busy times of a calendar are replaced under a lock on its row.
    """
    now = now or utc_now()
    report = RefreshReport()
    ids = list(db.session.scalars(select(ExternalCalendar.id).order_by(ExternalCalendar.id)))
    db.session.commit()  # no transaction held open while fetching
    for calendar_id in ids:
        calendar = db.session.get(ExternalCalendar, calendar_id)
        if calendar is None:
            continue
        outcome = refresh_calendar(calendar, now)
        db.session.commit()
        if outcome == "failed":
            report.failed += 1
            report.errors.append(f"calendar {calendar_id}: {calendar.last_error}")
        elif outcome == "changed":
            report.changed += 1
        else:
            report.unchanged += 1
    return report


def refresh_calendar(calendar: ExternalCalendar, now: datetime | None = None) -> str:
    """Refresh one calendar: "changed", "unchanged" or "failed". The caller commits.

    The source is fetched and read before any lock is taken; only a copy whose events could
    all be read replaces the last good one.
    """
    now = now or utc_now()
    calendar_id = calendar.id
    fetched = None
    spans = None
    error = ""
    try:
        if not calendar.is_upload:
            fetched = _fetch(
                _checked_url(calendar.url), etag=calendar.etag, last_modified=calendar.last_modified
            )
        if fetched is not None and fetched.content is not None:
            spans = _spans_of(fetched.content, now, in_refresh=True)
        elif calendar.expanded_until is None or calendar.expanded_until < (
            _horizon_end(now) - timedelta(days=1)
        ):
            spans = _spans_of(calendar.content, now, in_refresh=True)  # the horizon moved on
    except ExternalCalendarError as refused:
        error = refused.message
    except (FetchFailed, UnreadableCalendar) as failure:
        error = str(failure)

    db.session.commit()  # end the reading transaction; now lock the row and write
    hold_write_lock()
    query = select(ExternalCalendar).where(ExternalCalendar.id == calendar_id)
    if is_postgresql():
        query = query.with_for_update()
    calendar = db.session.scalars(query.execution_options(populate_existing=True)).first()
    if calendar is None:
        return "unchanged"  # removed meanwhile
    calendar.refreshed_at = now
    if error:
        log.warning("external calendar %s: refresh failed: %s", calendar_id, error)
        calendar.last_error = error
        return "failed"
    changed = fetched is not None and fetched.content is not None
    if changed:
        calendar.content = fetched.content
        calendar.etag = fetched.etag
        calendar.last_modified = fetched.last_modified
    if fetched is not None:
        calendar.succeeded_at = now
    calendar.last_error = ""
    if spans is not None:
        _store_with_busy_times(calendar, spans, now)
    return "changed" if changed else "unchanged"


# --- busy times ------------------------------------------------------------------------------


def _horizon_end(now: datetime) -> datetime:
    return now + timedelta(days=current_app.config["EXTERNAL_CALENDAR_HORIZON_DAYS"])


def _spans_of(
    data: bytes, now: datetime, *, in_refresh: bool = False
) -> list[tuple[datetime, datetime]]:
    """The busy spans of an .ics file from a day ago to the horizon; UnreadableCalendar.

    A back-office request gets a few seconds for this, the scheduler's refresh more.
    """
    config = current_app.config
    # Parsing costs by the event, and cannot be interrupted: count them before.
    events = data.upper().count(b"BEGIN:VEVENT")
    most = config["EXTERNAL_CALENDAR_MAX_EVENTS_IN_FILE"]
    if events > most:
        raise UnreadableCalendar(f"it holds {events:,} events; at most {most:,} are read")
    calendar = read_calendar(data)
    return busy_spans(
        calendar,
        clinic_zone(),
        now - timedelta(days=1),
        _horizon_end(now),
        limits=ReadingLimits(
            occurrences=config["EXTERNAL_CALENDAR_MAX_EVENTS"],
            occurrences_per_event=config["EXTERNAL_CALENDAR_MAX_EVENTS_PER_SERIES"],
            rule_combinations=config["EXTERNAL_CALENDAR_MAX_RULE_COMBINATIONS"],
            skipped_occurrences=config["EXTERNAL_CALENDAR_MAX_SKIPPED_OCCURRENCES"],
            seconds=config[
                "EXTERNAL_CALENDAR_READ_SECONDS_IN_REFRESH"
                if in_refresh
                else "EXTERNAL_CALENDAR_READ_SECONDS_IN_REQUEST"
            ],
        ),
    )


def _checked_spans(data: bytes, now: datetime, *, field: str) -> list[tuple[datetime, datetime]]:
    try:
        return _spans_of(data, now)
    except UnreadableCalendar as error:
        raise ExternalCalendarError(str(error), field=field) from None


def _store_with_busy_times(
    calendar: ExternalCalendar, spans: list[tuple[datetime, datetime]], now: datetime
) -> None:
    """Store the calendar and replace its busy times with these."""
    db.session.add(calendar)
    db.session.flush()
    earlier = _busy_spans_of(calendar)
    db.session.execute(delete(ExternalBusyTime).where(ExternalBusyTime.calendar_id == calendar.id))
    if spans:
        db.session.execute(
            insert(ExternalBusyTime),
            [
                {
                    "calendar_id": calendar.id,
                    "therapist_id": calendar.therapist_id,
                    "start_at": start,
                    "end_at": end,
                }
                for start, end in spans
            ],
        )
    calendar.expanded_until = _horizon_end(now)
    calendar.event_count = len(spans)
    db.session.flush()
    _offer_times_no_longer_busy(calendar.therapist_id, earlier, set(spans), now)


def _busy_spans_of(calendar: ExternalCalendar) -> set[tuple[datetime, datetime]]:
    if calendar.id is None:
        return set()
    return {
        (row.start_at, row.end_at)
        for row in db.session.execute(
            select(ExternalBusyTime.start_at, ExternalBusyTime.end_at).where(
                ExternalBusyTime.calendar_id == calendar.id
            )
        )
    }


def _offer_times_no_longer_busy(therapist_id: int, earlier: set, now_busy: set,
                                now: datetime) -> None:
    """A busy event gone from the therapist's own calendar frees its time for the waitlist."""
    gone = sorted(span for span in earlier - now_busy if span[1] > now)
    if not gone:
        return
    therapist = db.session.get(Therapist, therapist_id)
    for start, end in gone:
        waitlist_offers.offer_freed_time(therapist, start, end, now)


# --- checking input --------------------------------------------------------------------------


def _checked_name(name: str, *, default: str) -> str:
    name = " ".join((name or "").split()) or default
    if len(name) > NAME_MAX:
        raise ExternalCalendarError(f"the name is at most {NAME_MAX} characters", field="name")
    return name


def _checked_upload(data: bytes, now: datetime) -> list[tuple[datetime, datetime]]:
    limit = current_app.config["EXTERNAL_CALENDAR_MAX_BYTES"]
    if not data:
        raise ExternalCalendarError("the file is empty; choose an .ics file", field="file")
    if len(data) > limit:
        raise ExternalCalendarError(
            f"the file is {len(data):,} bytes; at most {limit:,} are accepted", field="file"
        )
    return _checked_spans(data, now, field="file")


def _host_of(url: str) -> str:
    try:
        return urlsplit((url or "").strip()).hostname or "External calendar"
    except ValueError:
        return "External calendar"


def _checked_url(url: str) -> str:
    """The address, if it is http(s) and well formed (webcal is taken as https)."""
    url = (url or "").strip()
    if not url:
        raise ExternalCalendarError("the calendar's address is missing", field="url")
    if len(url) > URL_MAX:
        raise ExternalCalendarError(f"the address is over {URL_MAX} characters", field="url")
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise ExternalCalendarError("that is not a web address", field="url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ExternalCalendarError(
            "only http:// and https:// calendar addresses are accepted", field="url"
        )
    if not parts.hostname:
        raise ExternalCalendarError("the address has no host name", field="url")
    if parts.username or parts.password:
        raise ExternalCalendarError(
            "addresses with a user name or password in them are not accepted", field="url"
        )
    return url


def _public_address(host: str, port: int) -> str:
    """An address of host that we may connect to, or ExternalCalendarError (SSRF guard)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchFailed(f"the host name {host!r} is not known") from None
    allow_private = current_app.config["EXTERNAL_CALENDAR_ALLOW_PRIVATE_ADDRESSES"]
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not allow_private and not _is_public(address):
            raise ExternalCalendarError(
                "that address is on this machine or a private network; only public "
                "addresses are fetched",
                field="url",
            )
        addresses.append(str(address))
    if not addresses:
        raise FetchFailed(f"the host name {host!r} has no address")
    return addresses[0]


# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and 8215):
# the address reached is that IPv4 one.
NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global unicast address, judged by the IPv4 address inside an IPv6 one that carries
    one (mapped, NAT64, 6to4, Teredo): Python calls 64:ff9b::7f00:1 and 224.0.0.1 global."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour or (
            address.teredo[1] if address.teredo else None)
        if inner is None and any(address in prefix for prefix in NAT64_PREFIXES):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return _is_public(inner)
    return address.is_global and not address.is_multicast


# --- fetching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fetched:
    content: bytes | None  # None: not modified since the copy we have
    etag: str
    last_modified: str


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to whatever the name resolves to next."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _fetch(url: str, *, etag: str, last_modified: str) -> _Fetched:
    config = current_app.config
    deadline = time.monotonic() + config["EXTERNAL_CALENDAR_TIMEOUT_SECONDS"]
    limit = config["EXTERNAL_CALENDAR_MAX_BYTES"]
    for _ in range(REDIRECTS_FOLLOWED + 1):
        parts = urlsplit(url)
        https = parts.scheme.lower() == "https"
        port = parts.port or (443 if https else 80)
        address = _public_address(parts.hostname, port)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed("it took too long to answer")
        kind = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
        connection = kind(parts.hostname, port, address, remaining)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5",
                   "Accept-Encoding": "identity"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchFailed(f"the server answered {response.status} with no Location")
                url = _checked_url(urljoin(url, location))
                continue
            if response.status == 304:
                return _Fetched(None, etag, last_modified)
            if response.status != 200:
                raise FetchFailed(f"the server answered {response.status} {response.reason}")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise FetchFailed(f"the calendar is over {limit:,} bytes")
            content = _read_limited(response, limit, deadline, connection)
            return _Fetched(
                content,
                response.getheader("ETag") or "",
                response.getheader("Last-Modified") or "",
            )
        except (OSError, http.client.HTTPException) as error:
            if isinstance(error, TimeoutError | socket.timeout):
                raise FetchFailed("it took too long to answer") from None
            raise FetchFailed(f"it could not be fetched ({type(error).__name__})") from None
        finally:
            connection.close()
    raise FetchFailed(f"more than {REDIRECTS_FOLLOWED} redirects")


def _read_limited(response, limit: int, deadline: float, connection) -> bytes:
    chunks = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed("it took too long to answer")
        if connection.sock is not None:
            connection.sock.settimeout(remaining)
        chunk = response.read1(64 * 1024) if hasattr(response, "read1") else response.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise FetchFailed(f"the calendar is over {limit:,} bytes")
        chunks.append(chunk)
