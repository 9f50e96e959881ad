"""A notification as the email the patient receives: a text and an HTML part, plus a .ics.

The words come from templates/mail/ (`<kind>.txt` and `<kind>.html`, `series_<kind>` for the
one message about several visits of a series; the HTML ones are autoescaped). A clinic may
replace any of them from its own folder (MAIL_TEMPLATES_FOLDER): a template found there wins
over the built-in one of the same name, and nothing outside those two folders can be loaded.
The calendar file carries the minimum (service, clinic, time): the patient's own calendar
keeps it, and the visit's UID and SEQUENCE let it update or cancel it.
"""

from __future__ import annotations

import os
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

from flask import current_app
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)

from booking.calendars.ical import calendar_file, calendar_file_of_visits
from booking.clinic.reference import current_clinic, zone_named
from booking.models import Appointment, Clinic, Notification, NotificationKind, Service, utc_now
from booking.notifications.outbox import visits_told_in
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
    visits = visits_told_in(notification)
    if len(visits) > 1:
        return series_email_for(notification, visits, clinic=clinic, now=now)
    appointment = notification.appointment
    patient = appointment.patient
    when = spoken_time(appointment.start_at, clinic)
    template = _template_name(notification)
    words = {
        "clinic": clinic,
        "appointment": appointment,
        "service": appointment.service,
        "patient": patient,
        "when": when,
        "manage_url": manage_url_for(appointment),
        "booking_url": current_app.config["PUBLIC_BASE_URL"] + "/",
        "dry_needling": is_dry_needling(appointment.service),
    }
    templates = mail_templates()
    text = templates.get_template(f"{template}.txt").render(words)
    html = templates.get_template(f"{template}.html").render(words)

    now = now or utc_now()
    cancelled = notification.kind == NotificationKind.CANCELLATION
    method = "CANCEL" if cancelled else "REQUEST"
    return _assembled(
        notification,
        clinic,
        subject=_subject(notification, appointment, when),
        text=text,
        html=html,
        ics=calendar_file(appointment, clinic, method=method, now=now),
        method=method,
        now=now,
    )


def series_email_for(
    notification: Notification,
    visits: list[Appointment],
    *,
    clinic: Clinic,
    now: datetime | None = None,
) -> Message:
    """The one email for several visits of a series: booked together (confirmation) or
    cancelled together (cancellation), with one .ics holding a VEVENT per visit."""
    now = now or utc_now()
    cancelled = notification.kind == NotificationKind.CANCELLATION
    method = "CANCEL" if cancelled else "REQUEST"
    first = visits[0]
    words = {
        "clinic": clinic,
        "service": first.service,
        "patient": first.patient,
        "visits": [
            {
                "when": spoken_time(visit.start_at, clinic),
                "therapist": visit.therapist.name,
                "manage_url": manage_url_for(visit),
            }
            for visit in visits
        ],
        "booking_url": current_app.config["PUBLIC_BASE_URL"] + "/",
        "dry_needling": is_dry_needling(first.service),
    }
    template = f"series_{notification.kind}"
    templates = mail_templates()
    first_when = words["visits"][0]["when"]
    service = first.service.name
    if cancelled:
        subject = f"Cancelled: {len(visits)} visits for {service} from {first_when}"
    else:
        subject = f"Booked: {len(visits)} visits for {service} from {first_when}"
    return _assembled(
        notification,
        clinic,
        subject=subject,
        text=templates.get_template(f"{template}.txt").render(words),
        html=templates.get_template(f"{template}.html").render(words),
        ics=calendar_file_of_visits(visits, clinic, method=method, now=now),
        method=method,
        now=now,
    )


def _assembled(
    notification: Notification,
    clinic: Clinic,
    *,
    subject: str,
    text: str,
    html: str,
    ics: str,
    method: str,
    now: datetime,
) -> Message:
    """The email around its words and calendar file: headers, text and HTML, the .ics."""
    patient = notification.appointment.patient
    invitation = MIMEText(ics, "calendar", _UTF8)
    invitation.set_param("method", method)
    invitation.add_header("Content-Disposition", "attachment", filename="appointment.ics")

    # The compat32 MIME classes, not EmailMessage: the same message, built in a tenth of the
    # time, which is most of a dispatcher's work per message.
    message = MIMEMultipart("mixed")
    message["Subject"] = _header(subject)
    message["From"] = formataddr((_one_line(clinic.name), sender_address(clinic)), "utf-8")
    message["To"] = formataddr((_one_line(patient.name), patient.email), "utf-8")
    message["Date"] = format_datetime(now)
    message["Message-ID"] = notification.message_id
    message["X-Booking-Notification"] = notification.kind
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(text, "plain", _UTF8))
    body.attach(MIMEText(html, "html", _UTF8))
    message.attach(body)
    message.attach(invitation)
    return message


# Text parts in quoted-printable: readable in the raw message, unlike base64.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


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
    )
    current_app.extensions["mail_templates"] = (folder, environment)
    return environment


def is_dry_needling(service: Service) -> bool:
    """Dry needling visits get their own advice (what to wear, eating beforehand)."""
    return "needling" in service.slug or "needling" in service.name.lower()


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


def _subject(notification: Notification, appointment: Appointment, when: str) -> str:
    service = appointment.service.name
    if notification.kind == NotificationKind.AFTERCARE:
        if notification.step > 0:
            return f"Checking in after your {service}"
        return f"After your {service}: what to expect"
    return {
        NotificationKind.CONFIRMATION: f"Booked: {service} on {when}",
        NotificationKind.REMINDER: f"Reminder: {service} on {when}",
        NotificationKind.RESCHEDULE: f"Moved: {service} is now on {when}",
        NotificationKind.CANCELLATION: f"Cancelled: {service} on {when}",
    }[NotificationKind(notification.kind)]
