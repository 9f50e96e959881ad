"""The free times a patient picks from: a week of them grouped by day (one day open at a time
on a phone), or the few nearest to a time they could not have.

Reads through scheduling.free_slots and nearest_free_slots and shapes the answer for the pages,
in the clinic's zone; it decides nothing about availability itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from booking import scheduling
from booking.models import Appointment, Clinic, Service
from booking.patients.languages import day_in_words, in_language, time_in_words
from booking.rules.availability import Slot

WEEK_DAYS = 7


@dataclass(frozen=True)
class FreeTime:
    """One start a patient can pick; `therapist` is empty for "first available"."""

    start: datetime  # in the clinic's zone
    therapist: str

    @property
    def value(self) -> str:
        return self.start.isoformat()


@dataclass(frozen=True)
class DayOfTimes:
    day: date
    times: list[FreeTime]


@dataclass(frozen=True)
class Week:
    first_day: date
    days: list[DayOfTimes]
    earlier: date | None  # the first day of the week before, when it can hold times
    later: date | None
    # The day whose times a phone shows (the others are a tap away): the one asked for when it
    # has free times, else the first day that has.
    open_day: date | None

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=WEEK_DAYS - 1)

    @property
    def is_empty(self) -> bool:
        return not any(day.times for day in self.days)


def today_at(zone: ZoneInfo, now: datetime) -> date:
    return now.astimezone(zone).date()


def week_of_free_times(
    service: Service,
    zone: ZoneInfo,
    now: datetime,
    *,
    first_day: date | None,
    therapist_slug: str | None,
    open_day: date | None = None,
) -> Week:
    """The free times of the week from `first_day` (default: the first week with any).

    With no therapist chosen, one start is shown once however many therapists are free then.
    """
    today = today_at(zone, now)
    last_bookable_day = today + timedelta(days=service.max_advance_days)
    asked = first_day is not None
    first_day = max(first_day or today, today)
    slots = scheduling.free_slots(
        service, first_day, first_day + timedelta(days=WEEK_DAYS - 1),
        therapist_slug=therapist_slug, now=now,
    )
    if not slots and not asked:
        # A patient opening the page wants the first free week, not an empty one.
        ahead = scheduling.free_slots(
            service, first_day, last_bookable_day, therapist_slug=therapist_slug, now=now
        )
        if ahead:
            first_day = ahead[0].start.astimezone(zone).date()
            slots = [
                slot for slot in ahead
                if slot.start.astimezone(zone).date() < first_day + timedelta(days=WEEK_DAYS)
            ]
    by_day: dict[date, list[FreeTime]] = {
        first_day + timedelta(days=offset): [] for offset in range(WEEK_DAYS)
    }
    for time in free_times(slots, zone, keep_therapist=therapist_slug is not None):
        by_day.setdefault(time.start.date(), []).append(time)
    earlier = max(first_day - timedelta(days=WEEK_DAYS), today) if first_day > today else None
    later = first_day + timedelta(days=WEEK_DAYS)
    days = [DayOfTimes(day, times) for day, times in sorted(by_day.items())]
    days_with_times = [day.day for day in days if day.times]
    if open_day not in days_with_times:
        open_day = days_with_times[0] if days_with_times else None
    return Week(
        first_day=first_day,
        days=days,
        earlier=earlier,
        later=later if later <= last_bookable_day else None,
        open_day=open_day,
    )


def free_times(slots: list[Slot], zone: ZoneInfo, *, keep_therapist: bool) -> list[FreeTime]:
    """Slots as starts in the clinic zone, each start once, in order."""
    seen: dict[datetime, FreeTime] = {}
    for slot in slots:
        start = slot.start.astimezone(zone)
        if start not in seen:
            seen[start] = FreeTime(start, slot.therapist if keep_therapist else "")
    return sorted(seen.values(), key=lambda time: time.start)


def nearest_free_times(
    service: Service,
    wanted: datetime,
    zone: ZoneInfo,
    now: datetime,
    *,
    therapist_slug: str | None,
) -> list[FreeTime]:
    """The few free times nearest to the one the patient wanted, in the order of the day."""
    slots = scheduling.nearest_free_slots(service, wanted, therapist_slug=therapist_slug, now=now)
    return free_times(slots, zone, keep_therapist=therapist_slug is not None)


def day_label(day: date) -> str:
    """'Monday, November 30' in the page's language (the clinic is in the US)."""
    return day_in_words(day)


def time_label(moment: datetime) -> str:
    """'9:00 AM' in the page's language."""
    return time_in_words(moment)


def google_calendar_link(appointment: Appointment, clinic: Clinic) -> str:
    """A link that opens Google Calendar with the visit filled in (no patient details in it)."""
    def utc(moment: datetime) -> str:
        return f"{moment.astimezone(ZoneInfo('UTC')):%Y%m%dT%H%M%SZ}"

    query = {
        "action": "TEMPLATE",
        "text": _("%(service)s at %(clinic)s", service=in_language(appointment.service, "name"),
                  clinic=clinic.name),
        "dates": f"{utc(appointment.start_at)}/{utc(appointment.end_at)}",
        "details": _("With %(therapist)s. To change it, call %(phone)s.",
                     therapist=appointment.therapist.name, phone=clinic.phone),
        "location": clinic.address,
        "ctz": clinic.timezone,
    }
    return "https://calendar.google.com/calendar/render?" + urlencode(query)
