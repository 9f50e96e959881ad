"""iCalendar, in and out: the .ics a patient gets for a visit, the therapists' feeds, and the
busy times read from calendars kept elsewhere.

Built with icalendar. Times are written in the clinic's zone (`TZID`) with its `VTIMEZONE`,
so Google, Apple and Outlook show the wall-clock time the clinic means on both sides of a
daylight-saving change. A visit's `UID` never changes and its `SEQUENCE` rises on every
change, so a calendar that already has the event updates or cancels it.

A feed of a busy year holds thousands of events, and icalendar's general machinery takes
about 140 microseconds to write each one: the feed's events are therefore written by
`feed_event_text`, which writes byte for byte what icalendar writes for `feed_event`, and a
mail's by `visit_event_text`, likewise for `visit_event` (tests hold each pair together);
everything else here goes through icalendar itself.
"""

from __future__ import annotations

import calendar as month_days
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from time import monotonic
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import (
    Calendar,
    Event,
    Parameters,
    Timezone,
    TimezoneDaylight,
    TimezoneStandard,
    vCalAddress,
    vDuration,
)
from icalendar.parser import Contentline

from booking.calendars.series_window import SeriesRefused, bring_series_to_window
from booking.models import Appointment, Clinic, ServiceKind
from booking.patients.languages import gettext as _
from booking.patients.languages import in_language

PRODID = "-//Clinic Booking//Appointments//EN"
# How often subscribed calendars should look for changes (RFC 7986, and Outlook's X- name).
FEED_REFRESH = timedelta(minutes=15)
# The VTIMEZONE describes the zone's rules over these years: every visit a feed or a mail
# can carry falls inside them.
ZONE_RULES_YEARS = (2020, 2040)


# --- The visit's calendar file (mail attachment, download) ----------------------------------


def calendar_file(
    appointment: Appointment,
    clinic: Clinic,
    *,
    method: str,
    now: datetime,
    patient_as_attendee: bool = True,
) -> str:
    """An iTIP invitation (REQUEST) or cancellation (CANCEL) for the visit.

    ORGANIZER is the clinic and ATTENDEE the patient (already accepted: nothing to answer),
    so the patient's calendar files it as the clinic's event and matches later REQUESTs and
    the CANCEL to it by UID and SEQUENCE. The download from the manage page leaves the
    patient out (patient_as_attendee=False): a file saved or shared from a browser carries no
    patient details; the mail's copy goes to the patient's own mailbox.
    """
    return calendar_file_of_visits(
        [appointment], clinic, method=method, now=now, patient_as_attendee=patient_as_attendee
    )


def calendar_file_of_visits(
    appointments: Iterable[Appointment],
    clinic: Clinic,
    *,
    method: str,
    now: datetime,
    patient_as_attendee: bool = True,
) -> str:
    """calendar_file for several visits told in one message (a series): a VEVENT each, each
    with its own UID, so a later change to one visit updates just that event."""
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"method is REQUEST or CANCEL, not {method!r}")
    zone = ZoneInfo(clinic.timezone)
    events = "".join(
        visit_event_text(
            _visit_facts(appointment, clinic, cancelled=method == "CANCEL", now=now,
                         patient_as_attendee=patient_as_attendee),
            zone,
        )
        for appointment in appointments
    )
    return _with_zone(_invitation_calendar_text(method), clinic.timezone, events)


@lru_cache(maxsize=2)
def _invitation_calendar_text(method: str) -> str:
    """The calendar around a visit's events: the same for every message of this method."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    return calendar.to_ical().decode()


@dataclass(frozen=True)
class VisitEvent:
    """What a visit's calendar file says about it: the patient's own copy of their visit."""

    uid: str
    sequence: int
    cancelled: bool
    start: datetime
    end: datetime
    stamp: datetime  # when the message was made (DTSTAMP)
    created: datetime
    last_modified: datetime
    summary: str
    description: str
    location: str  # "" for a call
    organizer_name: str  # the clinic
    organizer_email: str
    attendee_name: str = ""  # the patient, who has accepted; none in a download
    attendee_email: str = ""


def _visit_facts(
    appointment: Appointment, clinic: Clinic, *, cancelled: bool, now: datetime,
    patient_as_attendee: bool,
) -> VisitEvent:
    is_call = appointment.service.kind == ServiceKind.CALL
    # In the patient's language: the sender (or the manage page) has set it.
    if is_call:
        summary = _("Call from %(therapist)s (%(clinic)s)",
                    therapist=appointment.therapist.name, clinic=clinic.name)
        # A call happens wherever the patient picks up: the number, not the clinic's street.
        description = call_note(appointment)
    else:
        summary = _("%(service)s at %(clinic)s",
                    service=in_language(appointment.service, "name"), clinic=clinic.name)
        description = _("With %(therapist)s.", therapist=appointment.therapist.name)
    # The patient (a row of its own) only when the file names them.
    patient = appointment.patient if patient_as_attendee else None
    return VisitEvent(
        uid=appointment.calendar_uid,
        sequence=appointment.sequence,
        cancelled=cancelled,
        start=appointment.start_at,
        end=appointment.end_at,
        stamp=now,
        created=appointment.created_at,
        last_modified=appointment.updated_at,
        summary=summary,
        description=description,
        location="" if is_call else clinic.address,
        organizer_name=clinic.name,
        organizer_email=clinic.email,
        attendee_name=patient.name if patient else "",
        attendee_email=patient.email if patient else "",
    )


def visit_event(item: VisitEvent, zone: ZoneInfo) -> Event:
    """The visit as an icalendar VEVENT (the reference that visit_event_text writes quickly)."""
    event = _event_of(item, zone, stamp=item.stamp)
    event.add("description", item.description)
    event.add("transp", "OPAQUE")
    if item.location:
        event.add("location", item.location)
    organizer = vCalAddress(f"mailto:{item.organizer_email}")
    organizer.params["CN"] = item.organizer_name
    event.add("organizer", organizer)
    if item.attendee_email:
        attendee = vCalAddress(f"mailto:{item.attendee_email}")
        attendee.params["CN"] = item.attendee_name
        for name, value in _ATTENDEE_ACCEPTED.items():
            attendee.params[name] = value
        event.add("attendee", attendee)
    return event


# The patient's part in their own visit: already accepted, nothing to answer.
_ATTENDEE_ACCEPTED = {"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED", "RSVP": "FALSE"}


def visit_event_text(item: VisitEvent, zone: ZoneInfo) -> str:
    """visit_event(item, zone).to_ical(), written directly: the same bytes in a third of the
    time (through icalendar's general machinery, about 460 microseconds of the 3 to 4 ms a
    dispatcher spends on a message). The names in ORGANIZER and ATTENDEE are quoted by
    icalendar's own Parameters."""
    lines = _event_head_lines(item, zone, stamp=item.stamp)
    # icalendar writes the properties outside its canonical order alphabetically.
    if item.attendee_email:
        names = Parameters({**_ATTENDEE_ACCEPTED, "CN": item.attendee_name}).to_ical().decode()
        lines.append(_folded(f"ATTENDEE;{names}:mailto:{item.attendee_email}"))
    lines += [
        f"CREATED:{_stamp(_utc(item.created))}Z",
        _folded("DESCRIPTION:" + _escaped(item.description)),
        f"LAST-MODIFIED:{_stamp(_utc(item.last_modified))}Z",
    ]
    if item.location:
        lines.append(_folded("LOCATION:" + _escaped(item.location)))
    organizer = Parameters({"CN": item.organizer_name}).to_ical().decode()
    lines += [
        _folded(f"ORGANIZER;{organizer}:mailto:{item.organizer_email}"),
        "STATUS:CANCELLED" if item.cancelled else "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "END:VEVENT",
    ]
    return "\r\n".join(lines) + "\r\n"


def call_note(appointment: Appointment) -> str:
    """What a call's mail and .ics say about how it happens: the number given with the booking."""
    if appointment.patient_phone:
        return _("We will call you at %(phone)s.", phone=appointment.patient_phone)
    return _("We will call you at the number we have for you.")


# --- Time zones --------------------------------------------------------------------------------


def vtimezone(zone_name: str) -> Timezone:
    """The VTIMEZONE for an IANA zone: yearly rules (RRULE), as Outlook and Google write them,
    when the zone has followed one rule over ZONE_RULES_YEARS; else each change listed."""
    return Timezone.from_ical(_vtimezone_text(zone_name))


@lru_cache(maxsize=16)
def _vtimezone_text(zone_name: str) -> str:
    zone = ZoneInfo(zone_name)
    first_year, last_year = ZONE_RULES_YEARS
    changes = _zone_changes(zone, first_year, last_year)
    timezone = Timezone()
    timezone.add("tzid", zone_name)
    if not changes:
        offset = datetime(first_year, 1, 1, tzinfo=zone).utcoffset()
        standard = TimezoneStandard()
        standard.add("dtstart", datetime(1970, 1, 1))  # noqa: DTZ001 (floating, as RFC 5545 asks)
        standard.add("tzoffsetfrom", offset)
        standard.add("tzoffsetto", offset)
        standard.add("tzname", datetime(first_year, 1, 1, tzinfo=zone).tzname())
        timezone.add_component(standard)
        return timezone.to_ical().decode()
    years = last_year - first_year + 1
    for is_daylight in (True, False):
        kind = [change for change in changes if change.is_daylight == is_daylight]
        if not kind:
            continue
        rules = {change.yearly_rule for change in kind}
        if len(rules) != 1 or len(kind) != years or None in rules:
            # Not one rule all along: list every change instead (icalendar's own way).
            return (
                Timezone.from_tzid(
                    zone_name,
                    first_date=date(first_year, 1, 1),
                    last_date=date(last_year, 12, 31),
                )
                .to_ical()
                .decode()
            )
    for is_daylight in (True, False):
        kind = [change for change in changes if change.is_daylight == is_daylight]
        if not kind:
            continue
        first = kind[0]
        month, byday = first.yearly_rule[:2]
        part = TimezoneDaylight() if is_daylight else TimezoneStandard()
        part.add("dtstart", first.local_before)
        part.add("rrule", {"freq": "yearly", "bymonth": month, "byday": byday})
        part.add("tzoffsetfrom", first.offset_before)
        part.add("tzoffsetto", first.offset_after)
        part.add("tzname", first.name_after)
        timezone.add_component(part)
    return timezone.to_ical().decode()


@dataclass(frozen=True)
class _ZoneChange:
    at: datetime  # UTC
    offset_before: timedelta
    offset_after: timedelta
    is_daylight: bool
    name_after: str

    @property
    def local_before(self) -> datetime:
        """The wall-clock time the change happens at, as read before it (RFC 5545 DTSTART)."""
        return (self.at + self.offset_before).replace(tzinfo=None)

    @property
    def yearly_rule(self) -> tuple[int, str, time, timedelta, timedelta] | None:
        """(month, BYDAY such as "2SU" or "-1SU", wall time, offsets), or None if ambiguous."""
        local = self.local_before
        weekday = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[local.weekday()]
        nth = (local.day - 1) // 7 + 1
        last = local.day + 7 > month_days.monthrange(local.year, local.month)[1]
        if nth <= 3:
            byday = f"{nth}{weekday}"
        elif last:
            byday = f"-1{weekday}"
        else:
            return None  # a 4th weekday that is not the last: no single rule says both
        return (local.month, byday, local.time(), self.offset_before, self.offset_after)


def _zone_changes(zone: ZoneInfo, first_year: int, last_year: int) -> list[_ZoneChange]:
    """Every change of UTC offset (or daylight flag) in these years, found day by day."""
    changes = []
    day = 24 * 60 * 60
    moment = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(last_year + 1, 1, 1, tzinfo=UTC).timestamp())

    def state(seconds: int):
        local = datetime.fromtimestamp(seconds, zone)
        return local.utcoffset(), bool(local.dst()), local.tzname()

    before = state(moment)
    while moment < end:
        after = state(moment + day)
        if after != before:
            low, high = moment, moment + day  # to the second: state(low) before, high after
            while high - low > 1:
                middle = (low + high) // 2
                if state(middle) == before:
                    low = middle
                else:
                    high = middle
            at = datetime.fromtimestamp(high, UTC)
            changes.append(_ZoneChange(at, before[0], after[0], after[1], after[2]))
            before = after
        moment += day
    return changes


# --- Feeds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEvent:
    """What a feed says about one visit: no contact details, no notes."""

    uid: str
    sequence: int
    cancelled: bool
    start: datetime
    end: datetime
    created: datetime
    last_modified: datetime
    summary: str
    location: str = ""
    description: str = ""
    url: str = ""  # the visit's page in the back office (behind the staff login)


def feed_event(item: FeedEvent, zone: ZoneInfo) -> Event:
    """The visit as an icalendar VEVENT (the reference that feed_event_text writes quickly).

    DTSTAMP is the last change: a feed is not a message, and RFC 5545 says DTSTAMP is then
    when the information was last revised; so the same feed state is the same bytes.
    """
    event = _event_of(item, zone, stamp=item.last_modified)
    event.add("transp", "TRANSPARENT" if item.cancelled else "OPAQUE")
    if item.location:
        event.add("location", item.location)
    if item.description:
        event.add("description", item.description)
    if item.url:
        event.add("url", item.url)
    return event


def feed_event_text(item: FeedEvent, zone: ZoneInfo) -> str:
    """feed_event(item, zone).to_ical(), written directly: the same bytes, ten times faster."""
    changed = _stamp(_utc(item.last_modified))
    lines = _event_head_lines(item, zone, stamp=item.last_modified)
    lines.append(f"CREATED:{_stamp(_utc(item.created))}Z")
    # icalendar writes the properties outside its canonical order alphabetically.
    if item.description:
        lines.append(_folded("DESCRIPTION:" + _escaped(item.description)))
    lines.append(f"LAST-MODIFIED:{changed}Z")
    if item.location:
        lines.append(_folded("LOCATION:" + _escaped(item.location)))
    lines += [
        "STATUS:CANCELLED" if item.cancelled else "STATUS:CONFIRMED",
        "TRANSP:TRANSPARENT" if item.cancelled else "TRANSP:OPAQUE",
    ]
    if item.url:
        lines.append(_folded("URL:" + item.url))  # a URI: written as it is, unescaped
    lines.append("END:VEVENT")
    return "\r\n".join(lines) + "\r\n"


def feed_text(*, name: str, zone_name: str, events: Iterable[FeedEvent]) -> bytes:
    """A whole subscription feed: the calendar's properties, its VTIMEZONE, then the events."""
    zone = ZoneInfo(zone_name)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", zone_name)
    calendar.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(FEED_REFRESH))
    body = "".join(feed_event_text(event, zone) for event in events)
    return _with_zone(calendar.to_ical().decode(), zone_name, body).encode()


def _event_of(item: FeedEvent | VisitEvent, zone: ZoneInfo, *, stamp: datetime) -> Event:
    """A VEVENT with what every event here has: summary, times, identity and status."""
    event = Event()
    event.add("summary", item.summary)
    event.add("dtstart", item.start.astimezone(zone))
    event.add("dtend", item.end.astimezone(zone))
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("uid", item.uid)
    event.add("sequence", item.sequence)
    event.add("created", item.created.astimezone(UTC))
    event.add("last-modified", item.last_modified.astimezone(UTC))
    event.add("status", "CANCELLED" if item.cancelled else "CONFIRMED")
    return event


def _event_head_lines(
    item: FeedEvent | VisitEvent, zone: ZoneInfo, *, stamp: datetime
) -> list[str]:
    """The first lines of _event_of's text, in icalendar's canonical order (the rest of the
    properties follow alphabetically)."""
    tzid = zone.key
    return [
        "BEGIN:VEVENT",
        _folded("SUMMARY:" + _escaped(item.summary)),
        f"DTSTART;TZID={tzid}:{_stamp(item.start.astimezone(zone))}",
        f"DTEND;TZID={tzid}:{_stamp(item.end.astimezone(zone))}",
        f"DTSTAMP:{_stamp(_utc(stamp))}Z",
        _folded("UID:" + _escaped(item.uid)),
        f"SEQUENCE:{item.sequence}",
    ]


def _with_zone(calendar_text: str, zone_name: str, components: str) -> str:
    """The calendar's properties (its text, with no components), the zone's VTIMEZONE, then
    these components' text.

    The VTIMEZONE's text is made once per process: parsing it back into a component for
    every calendar had been a tenth of the dispatcher's work on a mail."""
    head, tail = calendar_text.rsplit("END:VCALENDAR", 1)
    return head + _vtimezone_text(zone_name) + components + "END:VCALENDAR" + tail


def _utc(moment: datetime) -> datetime:
    # Instants from the database are UTC already; converting 10,000 of them again shows.
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def _stamp(moment: datetime) -> str:
    """YYYYMMDDTHHMMSS, the form of DATE-TIME (strftime is slower, and this runs 10,000 times)."""
    return "%04d%02d%02dT%02d%02d%02d" % (  # noqa: UP031
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second
    )


def _escaped(text: str) -> str:
    """RFC 5545 TEXT escaping, as icalendar does it."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _folded(line: str) -> str:
    """Fold a content line as icalendar does (`Contentline.to_ical`): pieces under 75 octets,
    never inside an escape. An ASCII line, all a mail's lines but for names in other scripts,
    is cut by slicing: icalendar's loop looks at every character (0.24 M instructions of the
    dispatcher's 7.5 M on a message)."""
    if not line.isascii():
        return Contentline(line).to_ical().decode()
    width = 74  # octets, an ASCII character each
    if len(line) <= width:
        return line
    pieces = []
    start = 0
    while len(line) - start > width:
        end = start + width
        if line[end - 1] in "\\^":  # an escape's first character goes on with it
            end -= 1
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return "\r\n ".join(pieces)


# --- Busy times from calendars kept elsewhere -----------------------------------------------


class UnreadableCalendar(ValueError):
    """Bytes that are not an iCalendar file we can read; the message says why."""


def read_calendar(data: bytes) -> Calendar:
    """The VCALENDAR in data, or UnreadableCalendar."""
    try:
        calendars = Calendar.from_ical(data, multiple=True)
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise UnreadableCalendar(f"not an iCalendar (.ics) file: {error}") from None
    if not calendars or calendars[0].name != "VCALENDAR":
        raise UnreadableCalendar("not an iCalendar (.ics) file: no VCALENDAR in it")
    return calendars[0]


@dataclass(frozen=True)
class ReadingLimits:
    """What reading one busy calendar may cost: occurrences in the window (per file, per
    repeating event), combinations a rule's BY-parts may list, occurrences of a COUNT rule
    counted before the window, and seconds."""

    occurrences: int = 20_000
    occurrences_per_event: int = 5_000
    rule_combinations: int = 1_000
    skipped_occurrences: int = 100_000
    seconds: float = 5.0


def busy_spans(
    calendar: Calendar,
    zone: ZoneInfo,
    window_start: datetime,
    window_end: datetime,
    *,
    limits: ReadingLimits | None = None,
) -> list[tuple[datetime, datetime]]:
    """The busy spans (UTC) of the calendar's events in the window, recurring ones expanded.

    Left out: events marked free (TRANSP:TRANSPARENT, all-day ones included) and cancelled
    ones. All-day events are days in the clinic's zone; times without a zone ("floating")
    are clinic time too. Repeating events are first brought up to the window
    (series_window), so the cost follows the window, not the rules' history; a calendar over
    any of the limits (a series every minute, say) is UnreadableCalendar rather than a flood
    of rows or a stalled worker. Changes `calendar` (one read from bytes for this).
    """
    limits = limits or ReadingLimits()
    deadline = monotonic() + limits.seconds
    try:
        bring_series_to_window(
            calendar, zone, window_start, window_end,
            max_occurrences=limits.occurrences,
            max_occurrences_per_event=limits.occurrences_per_event,
            max_rule_combinations=limits.rule_combinations,
            max_skipped_occurrences=limits.skipped_occurrences,
            deadline=deadline,
        )
        spans = _busy_spans(calendar, zone, window_start, window_end, limits, deadline)
    except SeriesRefused as refused:
        if monotonic() > deadline:
            raise UnreadableCalendar(_too_long(limits)) from None
        raise UnreadableCalendar(str(refused)) from None
    except UnreadableCalendar:
        raise
    except Exception as error:  # the library raises many kinds on a malformed series
        raise UnreadableCalendar(f"its events cannot be read: {error}") from None
    return sorted(spans)


def _busy_spans(calendar, zone, window_start, window_end, limits, deadline):
    spans = _single_event_spans(calendar, zone, window_start, window_end, limits, deadline)
    # Bounded by now: between() lists them all at once, where after() would ask again and
    # again from each series' start.
    occurrences = recurring_ical_events.of(calendar, components=["VEVENT"]).between(
        window_start, window_end + timedelta(days=2)
    )
    per_event: dict[str, int] = {}
    for event in occurrences:
        if len(spans) >= limits.occurrences:
            raise UnreadableCalendar(
                f"it has over {limits.occurrences:,} events in the coming months"
            )
        if monotonic() > deadline:
            raise UnreadableCalendar(_too_long(limits))
        uid = str(event.get("UID", ""))
        per_event[uid] = per_event.get(uid, 0) + 1
        if per_event[uid] > limits.occurrences_per_event:
            raise UnreadableCalendar(
                f"one repeating event has over {limits.occurrences_per_event:,} occurrences "
                "in the coming months"
            )
        if _is_free(event):
            continue
        start, end = event.get("DTSTART"), event.get("DTEND")
        if start is None:
            continue
        start = _instant(start.dt, zone)
        if start >= window_end:
            continue
        end = _instant(end.dt, zone) if end is not None else start
        if end <= start:
            continue
        spans.append((start.astimezone(UTC), end.astimezone(UTC)))
    return spans


def _single_event_spans(calendar, zone, window_start, window_end, limits, deadline):
    """The busy spans of the events that do not repeat, read directly (a file of thousands of
    them costs a pass over them, not the library's work per event); they leave the calendar,
    so only the repeating ones and their moved occurrences are left to expand."""
    moved = {str(event.get("UID", "")) for event in calendar.walk("VEVENT")
             if event.get("RECURRENCE-ID") is not None}
    singles, others = [], []
    for component in calendar.subcomponents:
        single = component.name == "VEVENT" and not any(
            component.get(name) is not None for name in ("RRULE", "RDATE", "RECURRENCE-ID")
        ) and str(component.get("UID", "")) not in moved
        (singles if single else others).append(component)
    calendar.subcomponents = others
    spans = []
    for number, event in enumerate(singles):
        if number % 1000 == 0 and monotonic() > deadline:
            raise UnreadableCalendar(_too_long(limits))
        if _is_free(event) or event.get("DTSTART") is None:
            continue
        start = event["DTSTART"].dt
        if event.get("DTEND") is not None:
            end = event["DTEND"].dt
        elif event.get("DURATION") is not None:
            end = start + event["DURATION"].dt
        else:  # RFC 5545: a day for a date, an instant for a time
            end = start if isinstance(start, datetime) else start + timedelta(days=1)
        start, end = _instant(start, zone), _instant(end, zone)
        if start < window_end and end > window_start and end > start:
            spans.append((start.astimezone(UTC), end.astimezone(UTC)))
            if len(spans) > limits.occurrences:
                raise UnreadableCalendar(
                    f"it has over {limits.occurrences:,} events in the coming months"
                )
    return spans


def _is_free(event) -> bool:
    return (str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT"
            or str(event.get("STATUS", "")).upper() == "CANCELLED")


def _too_long(limits: ReadingLimits) -> str:
    return (f"it takes over {limits.seconds:g} seconds to read; a calendar of the coming months "
            "is read in far less")


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time.min, tzinfo=zone)
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value
