"""A day's working windows as the clinic writes them, in the clinic file and the back office."""

from datetime import time

import pytest

from booking.rules.availability import WorkingHours
from booking.rules.weekly_hours import (
    DayHoursError,
    WindowProblem,
    day_windows,
    hours_summary,
    window_span,
    windows_by_day,
)


def test_a_day_of_two_windows_is_read_in_the_order_written():
    assert day_windows(2, ["13:00-17:00", "08:00-12:00"]) == [
        WorkingHours(2, time(13), time(17)),
        WorkingHours(2, time(8), time(12)),
    ]


def test_windows_that_touch_do_not_overlap():
    assert len(day_windows(0, ["08:00-12:00", "12:00-17:00"])) == 2


def test_every_bad_window_and_every_overlap_is_named_by_its_place_in_the_list():
    with pytest.raises(DayHoursError) as refused:
        day_windows(0, ["08:00-12:00", "8-12", "11:30-13:30", "08:00-12:00"])

    assert refused.value.problems == (
        WindowProblem(1, 'must be a time window like "08:00-12:00" (got "8-12")'),
        WindowProblem(3, '"08:00-12:00" is listed twice (also at [0])'),
        WindowProblem(2, '"11:30-13:30" overlaps "08:00-12:00" ([0])'),
    )
    assert str(refused.value).startswith('must be a time window like "08:00-12:00" (got "8-12"); ')


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("18:00-24:00", '"24:00" is not a time of day; end the day at "23:59" (got "18:00-24:00")'),
        ("08:60-09:00", '"08:60" is not a time of day (00:00 to 23:59) (got "08:60-09:00")'),
        ("12:00-08:00", 'must end after it starts (got "12:00-08:00")'),
        (830, 'must be a time window like "08:00-12:00" (got 830)'),
    ],
)
def test_a_window_that_is_no_time_of_day_says_why(written, problem):
    with pytest.raises(ValueError) as refused:
        window_span(written)

    assert str(refused.value) == problem


def test_the_last_minute_of_the_day_is_23_59():
    assert window_span("18:00-23:59") == (time(18), time(23, 59))


def test_a_week_is_written_back_by_weekday_in_week_order():
    week = [
        WorkingHours(4, time(7), time(13)),
        WorkingHours(0, time(13), time(17)),
        WorkingHours(0, time(8), time(12)),
    ]

    assert windows_by_day(week) == {"mon": ["08:00-12:00", "13:00-17:00"], "fri": ["07:00-13:00"]}
    assert hours_summary(week) == "mon 08:00-12:00, 13:00-17:00; fri 07:00-13:00"
    assert hours_summary([]) == ""
