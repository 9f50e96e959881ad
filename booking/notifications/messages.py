"""A notification as the email the patient receives: a text and an HTML part, plus a .ics.

The words come from templates/mail/ (`<kind>.txt` and `<kind>.html`; the HTML ones are
autoescaped). A clinic may replace any of them from its own folder (MAIL_TEMPLATES_FOLDER):
a template found there wins over the built-in one of the same name, and nothing outside those
two folders can be loaded. Every message names the visit in plain words and its therapist;
for a child it greets the guardian and speaks of the child by first name (`visit_words`).
A message about the visit itself carries its .ics (the minimum: service, clinic, time; for a
call the number to be called instead of the street address), whose UID and SEQUENCE let the
patient's calendar update or cancel it; aftercare and check-ins carry none.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

from flask import current_app
from flask_babel import gettext, ngettext
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)

from booking.calendars.ical import calendar_file, call_note
from booking.clinic.reference import current_clinic, zone_named
from booking.models import (
    Appointment,
    Clinic,
    Notification,
    NotificationKind,
    Service,
    ServiceKind,
    utc_now,
)
from booking.patients.manage_links import manage_url_for


def sender_address(clinic: Clinic) -> str:
    return current_app.config.get("MAIL_FROM") or clinic.email


def email_for(
    notification: Notification, *, clinic: Clinic | None = None, now: datetime | None = None
) -> Message:
    """The whole email for this notification, addressed to the patient (or their guardian).

    Raises whatever a template raises: the dispatcher counts that as a failed try.
    """
    clinic = clinic or current_clinic()
    if notification.waitlist_offer is not None:
        return _offer_email(notification, clinic, now or utc_now())
    appointment = notification.appointment
    patient = appointment.patient
    when = spoken_time(appointment.start_at, clinic)
    template = _template_name(notification)
    words = visit_words(appointment)
    values = {
        "clinic": clinic,
        "appointment": appointment,
        "service": appointment.service,
        "patient": patient,
        "when": when,
        "manage_url": manage_url_for(appointment),
        "booking_url": current_app.config["PUBLIC_BASE_URL"] + "/",
        "dry_needling": is_dry_needling(appointment.service),
        "addressee": words.addressee,
        "whose": words.whose,
        "Whose": words.whose[:1].upper() + words.whose[1:],
        "child": words.child,
        "visit_name": words.visit_name,
        "therapist": words.therapist,
        "call": words.is_call,
        "call_note": call_note(appointment) if words.is_call else "",
    }
    templates = mail_templates()
    text = _wrapped(templates.get_template(f"{template}.txt").render(values))
    html = templates.get_template(f"{template}.html").render(values)

    now = now or utc_now()
    # The body and its alternatives; the visit's .ics beside them where the message is about
    # the visit itself. Aftercare and check-ins come after it: a calendar file then would only
    # put a past visit back in the patient's calendar.
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(text, "plain", _UTF8))
    body.attach(MIMEText(html, "html", _UTF8))
    if notification.kind == NotificationKind.AFTERCARE:
        message = body
    else:
        cancelled = notification.kind == NotificationKind.CANCELLATION
        method = "CANCEL" if cancelled else "REQUEST"
        invitation = MIMEText(
            calendar_file(appointment, clinic, method=method, now=now), "calendar", _UTF8
        )
        invitation.set_param("method", method)
        invitation.add_header("Content-Disposition", "attachment", filename="appointment.ics")
        # The compat32 MIME classes, not EmailMessage: the same message, built in a tenth of
        # the time, which is most of a dispatcher's work per message.
        message = MIMEMultipart("mixed")
        message.attach(body)
        message.attach(invitation)
    message["Subject"] = _header(_subject(notification, words, when))
    message["From"] = formataddr((_one_line(clinic.name), sender_address(clinic)), "utf-8")
    message["To"] = formataddr((_one_line(words.addressee), patient.email), "utf-8")
    message["Date"] = format_datetime(now)
    message["Message-ID"] = notification.message_id
    message["X-Booking-Notification"] = notification.kind
    return message


def _offer_email(notification: Notification, clinic: Clinic, now: datetime) -> Message:
    """A time that opened up, offered to a waiting patient: a link to claim it, no .ics (it is
    not their visit until they claim it)."""
    offer = notification.waitlist_offer
    entry = offer.entry
    guardian = _one_line(entry.patient_guardian_name)
    child = _one_line(entry.patient_name).split(" ")[0] if guardian else ""
    is_call = entry.service.kind == ServiceKind.CALL
    values = {
        "clinic": clinic,
        "addressee": guardian or entry.patient_name,
        "child": child,
        "visit_name": gettext("call") if is_call else _in_a_sentence(entry.service.name),
        "therapist": offer.therapist.name,
        "when": spoken_time(offer.start_at, clinic),
        "offer_url": f"{current_app.config['PUBLIC_BASE_URL']}/offers/{offer.token}",
        "claim_minutes": current_app.config["WAITLIST_CLAIM_MINUTES"],
        "call": is_call,
    }
    templates = mail_templates()
    text = _wrapped(templates.get_template("waitlist_offer.txt").render(values))
    html = templates.get_template("waitlist_offer.html").render(values)
    message = MIMEMultipart("alternative")
    message.attach(MIMEText(text, "plain", _UTF8))
    message.attach(MIMEText(html, "html", _UTF8))
    subject = gettext("A time opened up: %(visit)s on %(when)s",
                      visit=values["visit_name"], when=values["when"])
    message["Subject"] = _header(subject)
    message["From"] = formataddr((_one_line(clinic.name), sender_address(clinic)), "utf-8")
    message["To"] = formataddr((_one_line(values["addressee"]), entry.patient_email), "utf-8")
    message["Date"] = format_datetime(now)
    message["Message-ID"] = notification.message_id
    message["X-Booking-Notification"] = notification.kind
    return message


@dataclass(frozen=True)
class VisitWords:
    """How a message speaks of a visit, and to whom.

    For a child (a guardian's name was given) the mail goes to the guardian by name, and the
    visit is the child's, by first name: "Lily's physical therapy evaluation".
    """

    addressee: str  # who the mail greets: the guardian, or the patient
    whose: str  # "your", or "Lily's"
    child: str  # the child's first name; "" when the patient is the addressee
    visit_name: str  # "call", "physical therapy evaluation", "dry needling session"
    therapist: str
    is_call: bool


def visit_words(appointment: Appointment) -> VisitWords:
    patient = appointment.patient
    # The guardian named with this booking: a record's details are not the booking's.
    guardian = _one_line(appointment.patient_guardian_name)
    child = _one_line(patient.name).split(" ")[0] if guardian else ""
    service = appointment.service
    is_call = service.kind == ServiceKind.CALL
    return VisitWords(
        addressee=guardian or patient.name,
        whose=f"{child}'s" if child else "your",
        child=child,
        visit_name="call" if is_call else _in_a_sentence(service.name),
        therapist=appointment.therapist.name,
        is_call=is_call,
    )


def _in_a_sentence(name: str) -> str:
    """The service's name as said mid-sentence: "physical therapy evaluation"; a name that
    starts with an abbreviation ("OT evaluation") stays as it is."""
    first = name.split(" ")[0]
    return name[:1].lower() + name[1:] if first[1:].islower() or len(first) == 1 else name


# Text parts in quoted-printable: readable in the raw message, unlike base64.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


def _wrapped(text: str, width: int = 78) -> str:
    """The text part with long lines broken at spaces, as mail is read: a sentence with a
    name, a therapist and a date in it runs past what a mail client shows. A link is never
    broken; a list item's next lines are indented under it."""
    lines = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" -")))
        lines += textwrap.wrap(
            line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
        )
    return "\n".join(lines)


def _header(value: str) -> str | Header:
    value = _one_line(value)
    return value if value.isascii() else Header(value, "utf-8")


def _one_line(value: str) -> str:
    # A line break in a header would start a header of its own.
    return " ".join(value.split())


def as_bytes(message: Message) -> bytes:
    """The message as the mail server receives it (CRLF line ends)."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def mail_templates() -> Environment:
    """The app's mail templates: the clinic's folder first (when set), then templates/mail/.

    Made once per app and folder. FileSystemLoader refuses any name that climbs out of its
    folder (`..`), so an include in an overriding template cannot read other files.
    """
    folder = current_app.config.get("MAIL_TEMPLATES_FOLDER")
    cached = current_app.extensions.get("mail_templates")
    if cached is not None and cached[0] == folder:
        return cached[1]
    built_in = os.path.join(current_app.root_path, current_app.template_folder or "", "mail")
    loaders = [FileSystemLoader(built_in)]
    if folder:
        loaders.insert(0, FileSystemLoader(folder))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"], default_for_string=False),
        # A misspelt name in a clinic's own template fails the send (and shows as an error
        # to staff) rather than leaving a blank in the patient's email.
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # Messages to a patient are written in their language: the same gettext as the pages,
    # under the locale the sender forces for each message.
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)
    current_app.extensions["mail_templates"] = (folder, environment)
    return environment


def is_dry_needling(service: Service) -> bool:
    """Dry needling visits get their own advice (what to wear, eating beforehand)."""
    return service.aftercare_advice == "dry-needling"


def spoken_time(instant: datetime, clinic: Clinic) -> str:
    """'Monday 7 December 2026 at 9:30 AM', clinic time."""
    wall = instant.astimezone(zone_named(clinic.timezone))
    hour = wall.hour % 12 or 12
    return (
        f"{wall:%A} {wall.day} {wall:%B %Y} at {hour}:{wall:%M} {'AM' if wall.hour < 12 else 'PM'}"
    )


def _template_name(notification: Notification) -> str:
    # The first aftercare note is the soreness advice; any later one is the check-in.
    if notification.kind == NotificationKind.AFTERCARE and notification.step > 0:
        return "aftercare_check_in"
    return notification.kind


def _subject(notification: Notification, words: VisitWords, when: str) -> str:
    """Subject lines per kind of service: a call is from the therapist, a visit is with them."""
    if words.is_call:
        about = f" about {words.child}" if words.child else ""
        phrase = f"a call from {words.therapist}{about}"
    else:
        phrase = f"{words.whose} {words.visit_name} with {words.therapist}"
    if notification.kind == NotificationKind.AFTERCARE:
        if notification.step > 0:
            return f"Checking in after {words.whose} {words.visit_name}"
        return f"After {words.whose} {words.visit_name}: what to expect"
    return {
        NotificationKind.CONFIRMATION: f"Booked: {phrase} on {when}",
        NotificationKind.REMINDER: f"Reminder: {phrase} on {when}",
        NotificationKind.RESCHEDULE: f"Moved: {phrase} is now on {when}",
        NotificationKind.CANCELLATION: f"Cancelled: {phrase} on {when}",
    }[NotificationKind(notification.kind)]
