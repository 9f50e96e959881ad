"""Calendar files: the .ics a patient gets for a visit (mail and download).

Built with icalendar. The visit's UID and SEQUENCE let the patient's calendar update or
cancel the event it already has.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event, vCalAddress

from booking.models import Appointment, Clinic

PRODID = "-//Clinic Booking//Appointments//EN"


def calendar_file(appointment: Appointment, clinic: Clinic, *, method: str, now: datetime) -> str:
    """An iTIP invitation (REQUEST) or cancellation (CANCEL) for the visit."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", appointment.calendar_uid)
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", now)
    event.add("dtstart", appointment.start_at)
    event.add("dtend", appointment.end_at)
    event.add("summary", f"{appointment.service.name} at {clinic.name}")
    if clinic.address:
        event.add("location", clinic.address)
    organizer = vCalAddress(f"mailto:{clinic.email}")
    organizer.params["cn"] = clinic.name
    event.add("organizer", organizer)
    event.add("attendee", vCalAddress(f"mailto:{appointment.patient.email}"))
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()
