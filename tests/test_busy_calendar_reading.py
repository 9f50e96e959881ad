"""Reading busy times from a calendar whose rules reach far back gives exactly what expanding
it from its DTSTART gives: moving each series up to the window (series_window) changes the cost,
never the busy times. No database: busy_spans takes plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events

from booking.calendars.ical import ReadingLimits, UnreadableCalendar, busy_spans, read_calendar

ZONE = ZoneInfo("America/Detroit")
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
WINDOW = (NOW - timedelta(days=1), NOW + timedelta(days=400))


def calendar(*properties: str, extra: tuple[str, ...] = ()) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//EN",
             "BEGIN:VEVENT", "UID:series@test", "DTSTAMP:20260101T000000Z", *properties,
             "END:VEVENT", *extra, "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode()


def expanded_from_dtstart(data: bytes) -> list[tuple[datetime, datetime]]:
    """The busy spans as the library gives them, walking every series from its DTSTART."""
    spans = []
    for event in recurring_ical_events.of(read_calendar(data)).between(*WINDOW):
        if event.get("TRANSP") == "TRANSPARENT" or event.get("STATUS") == "CANCELLED":
            continue  # free, or not happening
        start, end = event["DTSTART"].dt, event["DTEND"].dt
        if not isinstance(start, datetime):
            start = datetime.combine(start, datetime.min.time(), tzinfo=ZONE)
            end = datetime.combine(end, datetime.min.time(), tzinfo=ZONE)
        start, end = (moment if moment.tzinfo else moment.replace(tzinfo=ZONE)
                      for moment in (start, end))
        if end > start and start < WINDOW[1]:
            spans.append((start.astimezone(UTC), end.astimezone(UTC)))
    return sorted(spans)


def read(data: bytes, **limits) -> list[tuple[datetime, datetime]]:
    return busy_spans(read_calendar(data), ZONE, *WINDOW, limits=ReadingLimits(**limits))


SERIES = {
    "weekly, across daylight-saving changes": calendar(
        "DTSTART;TZID=America/Detroit:20190107T090000",
        "DTEND;TZID=America/Detroit:20190107T100000", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE"),
    "every other week, a Monday skipped, a Wednesday moved": calendar(
        "DTSTART;TZID=America/Detroit:20180101T140000",
        "DTEND;TZID=America/Detroit:20180101T150000", "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
        "EXDATE;TZID=America/Detroit:20270104T140000",
        extra=("BEGIN:VEVENT", "UID:series@test", "DTSTAMP:20260101T000000Z",
               "RECURRENCE-ID;TZID=America/Detroit:20270106T140000",
               "DTSTART;TZID=America/Detroit:20270106T170000",
               "DTEND;TZID=America/Detroit:20270106T180000", "END:VEVENT")),
    "the second Tuesday of each month, in UTC": calendar(
        "DTSTART:20170314T130000Z", "DTEND:20170314T143000Z", "RRULE:FREQ=MONTHLY;BYDAY=2TU"),
    "the 31st, in the months that have one": calendar(
        "DTSTART:20150131T080000", "DTEND:20150131T090000", "RRULE:FREQ=MONTHLY"),
    "15 March, all day, every year": calendar(
        "DTSTART;VALUE=DATE:20120315", "DTEND;VALUE=DATE:20120316", "RRULE:FREQ=YEARLY"),
    "all day, every third day": calendar(
        "DTSTART;VALUE=DATE:20160105", "DTEND;VALUE=DATE:20160106",
        "RRULE:FREQ=DAILY;INTERVAL=3"),
    "every 90 minutes in working hours, until next summer": calendar(
        "DTSTART;TZID=America/Detroit:20200102T080000",
        "DTEND;TZID=America/Detroit:20200102T081500",
        "RRULE:FREQ=MINUTELY;INTERVAL=90;BYHOUR=8,9,10,11,12,13,14,15,16;BYDAY=MO,TU,WE,TH,FR;"
        "UNTIL=20270630T000000Z"),
    "weekdays, 2,000 times from 2021": calendar(
        "DTSTART;TZID=America/Detroit:20210104T120000",
        "DTEND;TZID=America/Detroit:20210104T130000",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=2000"),
    "daily, 3,000 times from 2019": calendar(
        "DTSTART;TZID=America/Detroit:20190301T073000",
        "DTEND;TZID=America/Detroit:20190301T080000", "RRULE:FREQ=DAILY;COUNT=3000"),
    "the last weekday of each month": calendar(
        "DTSTART:20180131T160000Z", "DTEND:20180131T170000Z",
        "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
}


SERIES["single events of every shape, among a series"] = calendar(
    "DTSTART;TZID=America/Detroit:20240105T100000",
    "DTEND;TZID=America/Detroit:20240105T103000", "RRULE:FREQ=WEEKLY",
    extra=tuple(line for number, properties in enumerate([
        ("DTSTART;VALUE=DATE:20270112",),  # all day, no DTEND: the day
        ("DTSTART;VALUE=DATE:20270113", "DURATION:P2D"),
        ("DTSTART:20270114T090000", "DURATION:PT45M"),  # floating: clinic time
        ("DTSTART:20270115T090000Z", "DTEND:20270115T100000Z", "TRANSP:TRANSPARENT"),
        ("DTSTART:20270116T090000Z", "DTEND:20270116T100000Z", "STATUS:CANCELLED"),
        ("DTSTART:20270117T090000Z",),  # an instant: no time taken
        ("DTSTART:20200117T090000Z", "DTEND:20200117T100000Z"),  # long past
        ("DTSTART;TZID=Europe/Berlin:20271201T090000",
         "DTEND;TZID=Europe/Berlin:20271201T100000"),
    ]) for line in ("BEGIN:VEVENT", f"UID:single-{number}@test",
                    "DTSTAMP:20260101T000000Z", *properties, "END:VEVENT")))


@pytest.mark.parametrize("data", SERIES.values(), ids=SERIES.keys())
def test_a_series_from_years_back_blocks_the_same_times_as_expanded_from_its_start(data):
    expected = expanded_from_dtstart(data)

    assert expected  # each of them is busy somewhere in the coming months
    assert read(data) == expected


def test_a_series_that_ended_before_the_window_blocks_nothing():
    ended = calendar("DTSTART:20100104T090000Z", "DTEND:20100104T100000Z",
                     "RRULE:FREQ=WEEKLY;BYDAY=MO,TH;COUNT=40")

    assert read(ended) == []
    until_1950 = calendar("DTSTART:19000101T090000Z", "DTEND:19000101T100000Z",
                          "RRULE:FREQ=DAILY;UNTIL=19500101T000000Z")
    assert read(until_1950) == []


def test_a_rule_that_never_matches_again_is_read_without_walking_to_the_year_9999():
    never = calendar("DTSTART:19000101T090000Z", "DTEND:19000101T100000Z",
                     "RRULE:FREQ=MINUTELY;INTERVAL=7;BYMONTH=4;BYMONTHDAY=31")

    assert read(never, seconds=30) == []


def test_a_file_over_the_limit_is_refused_naming_it():
    twice_a_day = calendar("DTSTART:20200101T090000Z", "DTEND:20200101T093000Z",
                           "RRULE:FREQ=HOURLY;INTERVAL=12")

    with pytest.raises(UnreadableCalendar, match="over 500 occurrences in the coming months"):
        read(twice_a_day, occurrences_per_event=500)
    with pytest.raises(UnreadableCalendar, match="it has over 700 events in the coming months"):
        read(twice_a_day, occurrences=700)
    assert read(twice_a_day) == expanded_from_dtstart(twice_a_day)
    assert len(read(twice_a_day)) > 700
