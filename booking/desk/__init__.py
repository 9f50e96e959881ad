"""The back office at /desk: the clinic's calendar, patients and schedules, behind a login.

One module per area, each a blueprint nested under `desk` (booking/desk/pages.py: what every
page shares), so an endpoint is named `desk.<area>.<view>`.
"""

from booking.desk.access import load_staff_user
from booking.desk.appointments import appointments
from booking.desk.audit_log import audit_log
from booking.desk.board import board
from booking.desk.busy_calendars import busy_calendars
from booking.desk.calendar import calendar
from booking.desk.call_lists import call_lists
from booking.desk.clearances import clearances
from booking.desk.courses import courses
from booking.desk.dashboard import dashboard
from booking.desk.feeds import feeds
from booking.desk.health_forms import health_forms
from booking.desk.hours import hours
from booking.desk.logins import logins
from booking.desk.pages import desk
from booking.desk.patients import patients
from booking.desk.sent_mail import sent_mail
from booking.desk.sign_in import sign_in
from booking.desk.waitlist import waitlist

for area in (sign_in, calendar, board, appointments, patients, hours, busy_calendars, logins,
             audit_log, feeds, sent_mail, clearances, call_lists, health_forms, waitlist,
             dashboard, courses):
    desk.register_blueprint(area)

__all__ = ["desk", "load_staff_user"]
