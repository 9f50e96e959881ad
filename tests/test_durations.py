"""Durations as the clinic writes them for reminders and aftercare: "15m", "2h", "2d"."""

from datetime import timedelta

import pytest

from booking.rules.durations import DurationError, duration_text, parse_duration


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("15m", timedelta(minutes=15)),
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("48h", timedelta(hours=48)),
        ("2d", timedelta(days=2)),
        ("365d", timedelta(days=365)),
    ],
)
def test_a_duration_is_a_whole_number_and_one_unit(written, meant):
    assert parse_duration(written) == meant


@pytest.mark.parametrize("written", ["2w", "0h", "1.5h", "h", "15", "-2h", "2 h", "1h30m", "2H"])
def test_anything_else_is_refused_with_what_a_duration_looks_like(written):
    with pytest.raises(DurationError) as refused:
        parse_duration(written)

    assert str(refused.value) == (
        "must be a duration: a whole number and one unit, m (minutes), h (hours) or d (days), "
        f'like "15m", "2h", "2d" (got "{written}")'
    )


def test_a_value_that_is_not_text_is_shown_as_written():
    with pytest.raises(DurationError, match=r"\(got 48\)$"):
        parse_duration(48)


def test_more_than_a_year_is_refused_without_overflowing():
    with pytest.raises(DurationError) as refused:
        parse_duration("99999999999999999999d")

    assert str(refused.value) == '"99999999999999999999d" is more than a year'
    with pytest.raises(DurationError, match="more than a year"):
        parse_duration("366d")


@pytest.mark.parametrize(
    ("duration", "written"),
    [
        (timedelta(minutes=15), "15m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=48), "48h"),
        (timedelta(days=7), "168h"),
    ],
)
def test_a_duration_is_written_back_in_whole_hours_or_else_minutes(duration, written):
    assert duration_text(duration) == written
    assert parse_duration(written) == duration


@pytest.mark.parametrize("duration", [timedelta(0), timedelta(seconds=90), -timedelta(hours=1)])
def test_only_a_positive_whole_number_of_minutes_can_be_written(duration):
    with pytest.raises(ValueError, match="not a positive whole number of minutes"):
        duration_text(duration)
