"""The back office at /desk: the clinic's calendar, patients and schedules, behind a login."""

from booking.desk import busy_calendars, sent_mail  # noqa: F401  (their views join the blueprint)
from booking.desk.access import load_staff_user
from booking.desk.views import desk

__all__ = ["desk", "load_staff_user"]
