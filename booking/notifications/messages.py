"""A notification as the email the patient receives: text from templates/mail/, plus a .ics.

The calendar file carries the minimum (service, clinic, time): the patient's own calendar
keeps it, and the visit's UID and SEQUENCE let that calendar update or cancel the event.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr

from flask import current_app, render_template

from booking.calendars import current_clinic, zone_named
from booking.ical import calendar_file
from booking.manage_links import manage_url_for
from booking.models import Appointment, Clinic, Notification, NotificationKind, utc_now


def sender_address(clinic: Clinic) -> str:
    return current_app.config.get("MAIL_FROM") or clinic.email


def email_for(notification: Notification, *, now: datetime | None = None) -> EmailMessage:
    """The whole email for this notification, addressed to the patient (or their guardian)."""
    appointment = notification.appointment
    clinic = current_clinic()
    patient = appointment.patient
    when = spoken_time(appointment.start_at, clinic)
    template = _template_name(notification)
    text = render_template(
        f"mail/{template}.txt",
        clinic=clinic,
        appointment=appointment,
        service=appointment.service,
        patient=patient,
        when=when,
        manage_url=manage_url_for(appointment),
        booking_url=current_app.config["PUBLIC_BASE_URL"] + "/",
    )
    message = EmailMessage()
    message["Subject"] = _subject(notification, appointment, when)
    message["From"] = formataddr((clinic.name, sender_address(clinic)))
    message["To"] = formataddr((patient.name, patient.email))
    message["Message-ID"] = notification.message_id
    message["X-Booking-Notification"] = notification.kind
    message.set_content(text)
    cancelled = notification.kind == NotificationKind.CANCELLATION
    method = "CANCEL" if cancelled else "REQUEST"
    message.add_attachment(
        calendar_file(appointment, clinic, method=method, now=now or utc_now()),
        subtype="calendar",
        params={"method": method},
        filename="appointment.ics",
    )
    return message


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
