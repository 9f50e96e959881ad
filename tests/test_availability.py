"""Which visits the clinic offers: working hours, time off, booked visits, notice, DST days."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.rules.availability import (
    BookingRules,
    Interval,
    Slot,
    SlotRefusal,
    TherapistCalendar,
    TimeOff,
    WorkingHours,
    fits_hours,
    free_slots,
    is_slot_free,
    nearest_to_free,
    why_not_free,
)

DETROIT = ZoneInfo("America/Detroit")
MONDAY = date(2026, 6, 15)  # an ordinary week, on Eastern Daylight Time (UTC-4)
TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = (MONDAY + timedelta(days=n) for n in range(1, 5))
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)

# 45-minute visits on a 15-minute grid in a morning of 08:00-12:00.
MORNING_STARTS = [
    "08:00", "08:15", "08:30", "08:45", "09:00", "09:15", "09:30",
    "09:45", "10:00", "10:15", "10:30", "10:45", "11:00", "11:15",
]  # fmt: skip


def rules(
    visit: int = 45,
    buffer: int = 0,
    step: int = 15,
    notice: timedelta = timedelta(0),
    advance: timedelta = timedelta(days=3650),
) -> BookingRules:
    return BookingRules(
        duration=timedelta(minutes=visit),
        buffer_after=timedelta(minutes=buffer),
        min_notice=notice,
        max_advance=advance,
        slot_step_minutes=step,
    )


def weekdays(start: time, end: time) -> tuple[WorkingHours, ...]:
    return tuple(WorkingHours(weekday, start, end) for weekday in range(5))


def mornings(therapist: str = "ana", **more) -> TherapistCalendar:
    return TherapistCalendar(therapist, weekdays(time(8), time(12)), **more)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A clinic wall-clock time, as time off is given."""
    return datetime.combine(day, time(hour, minute))


def detroit(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=DETROIT)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local_start(slot: Slot) -> str:
    return slot.start.astimezone(DETROIT).strftime("%H:%M")


def local_starts(slots: list[Slot]) -> list[str]:
    return [local_start(slot) for slot in slots]


def local_starts_by_day(slots: list[Slot]) -> dict[date, list[str]]:
    days: dict[date, list[str]] = {}
    for slot in slots:
        start = slot.start.astimezone(DETROIT)
        days.setdefault(start.date(), []).append(start.strftime("%H:%M"))
    return days


def offered(calendar, booking_rules, first_day, last_day=None, now=LONG_AGO) -> list[Slot]:
    return free_slots([calendar], booking_rules, DETROIT, first_day, last_day or first_day, now)


# Working hours


def test_a_morning_of_0800_to_1200_offers_45_minute_visits_from_0800_to_1115():
    slots = offered(mornings(), rules(visit=45), MONDAY)

    assert local_starts(slots) == MORNING_STARTS
    assert slots[0] == Slot(utc(2026, 6, 15, 12), utc(2026, 6, 15, 12, 45), "ana")
    assert slots[-1] == Slot(utc(2026, 6, 15, 15, 15), utc(2026, 6, 15, 16), "ana")


def test_slots_are_given_in_utc():
    slots = offered(mornings(), rules(), MONDAY)

    assert {slot.start.tzinfo for slot in slots} == {UTC}
    assert {slot.end.tzinfo for slot in slots} == {UTC}


def test_days_without_hours_offer_nothing():
    saturday, sunday = FRIDAY + timedelta(days=1), FRIDAY + timedelta(days=2)

    assert offered(mornings(), rules(), saturday, sunday) == []


def test_slots_start_on_the_clinic_grid_even_when_hours_start_off_it():
    calendar = TherapistCalendar("ana", (WorkingHours(0, time(8, 10), time(10, 0)),))

    slots = offered(calendar, rules(visit=30, step=15), MONDAY)

    assert local_starts(slots) == ["08:15", "08:30", "08:45", "09:00", "09:15", "09:30"]


def test_a_visit_must_fit_in_one_window_not_across_the_lunch_break():
    calendar = TherapistCalendar(
        "ana", (WorkingHours(0, time(8), time(10)), WorkingHours(0, time(10, 30), time(12)))
    )

    slots = offered(calendar, rules(visit=60, step=30), MONDAY)

    assert local_starts(slots) == ["08:00", "08:30", "09:00", "10:30", "11:00"]


def test_overlapping_windows_offer_each_start_once():
    calendar = TherapistCalendar(
        "ana", (WorkingHours(0, time(8), time(10)), WorkingHours(0, time(9), time(11)))
    )

    slots = offered(calendar, rules(visit=60, step=60), MONDAY)

    assert local_starts(slots) == ["08:00", "09:00", "10:00"]


# Booked visits and busy times


def test_a_booked_visit_and_its_buffer_block_the_slots_they_overlap():
    # Booked 09:30-10:15 plus its 15-minute buffer: busy 09:30-10:30.
    booked = Interval(detroit(MONDAY, 9, 30), detroit(MONDAY, 10, 30))
    calendar = mornings(busy=[booked])

    slots = offered(calendar, rules(visit=45, buffer=15), MONDAY)

    # 08:30 + 45 min visit + 15 min buffer just reaches 09:30; 10:30 starts as the busy span ends.
    assert local_starts(slots) == ["08:00", "08:15", "08:30", "10:30", "10:45", "11:00", "11:15"]


def test_the_last_visit_may_end_at_closing_with_its_buffer_after_hours():
    slots = offered(mornings(), rules(visit=45, buffer=15), MONDAY)

    assert local_starts(slots)[-1] == "11:15"
    assert slots[-1].end == utc(2026, 6, 15, 16)  # 12:00 local


def test_touching_intervals_do_not_overlap():
    calendar = mornings(busy=[Interval(detroit(MONDAY, 10), detroit(MONDAY, 11))])

    slots = offered(calendar, rules(visit=60, step=60), MONDAY)

    # 09:00-10:00 ends as the busy hour begins; 11:00 begins as it ends.
    assert local_starts(slots) == ["08:00", "09:00", "11:00"]


def test_a_visit_may_fill_the_gap_between_two_appointments_exactly():
    calendar = TherapistCalendar(
        "ana",
        (WorkingHours(0, time(8), time(13)),),
        busy=[
            Interval(detroit(MONDAY, 9), detroit(MONDAY, 10)),
            Interval(detroit(MONDAY, 11), detroit(MONDAY, 12)),
        ],
    )

    slots = offered(calendar, rules(visit=60, step=60), MONDAY)

    assert local_starts(slots) == ["08:00", "10:00", "12:00"]


def test_busy_times_may_come_in_any_order_zone_and_overlap():
    calendar = mornings(
        busy=[
            Interval(utc(2026, 6, 15, 14, 30), utc(2026, 6, 15, 15)),  # 10:30-11:00
            Interval(detroit(MONDAY, 8, 30), detroit(MONDAY, 9, 15)),
            Interval(detroit(MONDAY, 9), detroit(MONDAY, 9, 30)),  # an external calendar's
        ]
    )

    slots = offered(calendar, rules(visit=30, step=30), MONDAY)

    assert local_starts(slots) == ["08:00", "09:30", "10:00", "11:00", "11:30"]


def test_appointments_on_other_days_block_nothing():
    calendar = mornings(busy=[Interval(detroit(TUESDAY, 8), detroit(TUESDAY, 12))])

    assert local_starts(offered(calendar, rules(), MONDAY)) == MORNING_STARTS


# Time off


def test_time_off_removes_the_days_it_covers():
    away = TimeOff(local(TUESDAY, 0), local(THURSDAY, 0))  # Tuesday and Wednesday
    calendar = mornings(time_off=[away])

    slots = offered(calendar, rules(), MONDAY, FRIDAY)

    assert local_starts_by_day(slots) == {
        MONDAY: MORNING_STARTS,
        THURSDAY: MORNING_STARTS,
        FRIDAY: MORNING_STARTS,
    }


def test_time_off_removes_only_the_visits_it_overlaps_while_a_buffer_may_run_into_it():
    dentist = TimeOff(local(MONDAY, 10), local(MONDAY, 11))
    calendar = mornings(time_off=[dentist])

    slots = offered(calendar, rules(visit=45, buffer=15), MONDAY)

    # 09:15-10:00 ends as the time off begins, its buffer inside it.
    assert local_starts(slots) == [
        "08:00", "08:15", "08:30", "08:45", "09:00", "09:15", "11:00", "11:15",
    ]  # fmt: skip


# Notice and booking window


def test_minimum_notice_hides_slots_too_soon():
    now = detroit(MONDAY, 8, 10)

    slots = offered(mornings(), rules(notice=timedelta(hours=2)), MONDAY, now=now)

    assert local_starts(slots) == ["10:15", "10:30", "10:45", "11:00", "11:15"]


def test_a_slot_exactly_at_the_minimum_notice_is_offered():
    now = utc(2026, 6, 15, 12)  # 08:00 local

    slots = offered(mornings(), rules(notice=timedelta(hours=2)), MONDAY, now=now)

    assert local_starts(slots) == ["10:00", "10:15", "10:30", "10:45", "11:00", "11:15"]


def test_booking_window_hides_slots_too_far_ahead():
    now = detroit(MONDAY, 9)

    slots = offered(mornings(), rules(advance=timedelta(days=2)), MONDAY, FRIDAY, now=now)

    assert local_starts_by_day(slots) == {
        MONDAY: MORNING_STARTS[4:],  # from 09:00: no notice asked
        TUESDAY: MORNING_STARTS,
        WEDNESDAY: ["08:00", "08:15", "08:30", "08:45", "09:00"],  # up to now + 48 hours
    }


def test_booking_window_counts_real_hours_across_a_dst_change():
    now = detroit(date(2027, 3, 10), 9)  # EST; a week later is EDT
    wednesday_after = date(2027, 3, 17)

    slots = offered(mornings(), rules(advance=timedelta(days=7)), wednesday_after, now=now)

    # 7 x 24 hours after 09:00 EST is 10:00 EDT, not 09:00.
    assert local_starts(slots) == [
        "08:00", "08:15", "08:30", "08:45", "09:00", "09:15", "09:30", "09:45", "10:00",
    ]  # fmt: skip
    assert slots[-1].start == utc(2027, 3, 17, 14)


# Daylight saving time (America/Detroit)


def test_therapist_works_0800_local_on_both_sides_of_spring_dst_change():
    friday, monday = date(2027, 3, 12), date(2027, 3, 15)  # clocks go forward on the 14th

    slots = offered(mornings(), rules(), friday, monday)

    assert local_starts_by_day(slots) == {friday: MORNING_STARTS, monday: MORNING_STARTS}
    firsts = [slots[0].start, slots[len(MORNING_STARTS)].start]
    assert firsts == [utc(2027, 3, 12, 13), utc(2027, 3, 15, 12)]
    assert [start.astimezone(DETROIT).utcoffset() for start in firsts] == [
        timedelta(hours=-5),
        timedelta(hours=-4),
    ]


def test_therapist_works_0800_local_on_both_sides_of_fall_dst_change():
    friday, monday = date(2026, 10, 30), date(2026, 11, 2)  # clocks go back on the 1st

    slots = offered(mornings(), rules(), friday, monday)

    assert local_starts_by_day(slots) == {friday: MORNING_STARTS, monday: MORNING_STARTS}
    firsts = [slots[0].start, slots[len(MORNING_STARTS)].start]
    assert firsts == [utc(2026, 10, 30, 12), utc(2026, 11, 2, 13)]


def test_the_night_clocks_go_back_offers_each_wall_clock_hour_once():
    sunday = date(2026, 11, 1)  # 02:00 EDT becomes 01:00 EST: 01:00-02:00 happens twice
    calendar = TherapistCalendar("ana", (WorkingHours(6, time(0), time(4)),))

    slots = offered(calendar, rules(visit=60, step=60), sunday)

    # 01:00 is its first occurrence (EDT); the repeated 01:00 EST (06:00 UTC) is no slot,
    # and 03:00 EST fits because the window ends at 04:00 EST.
    assert [slot.start for slot in slots] == [
        utc(2026, 11, 1, 4),
        utc(2026, 11, 1, 5),
        utc(2026, 11, 1, 7),
        utc(2026, 11, 1, 8),
    ]
    assert local_starts(slots) == ["00:00", "01:00", "02:00", "03:00"]


def test_the_night_clocks_go_forward_offers_no_0200_local_times():
    sunday = date(2027, 3, 14)  # 02:00 EST becomes 03:00 EDT: 02:00-03:00 never happens
    calendar = TherapistCalendar("ana", (WorkingHours(6, time(1), time(4)),))

    slots = offered(calendar, rules(visit=30, step=30), sunday)

    assert [slot.start for slot in slots] == [
        utc(2027, 3, 14, 6),
        utc(2027, 3, 14, 6, 30),
        utc(2027, 3, 14, 7),
        utc(2027, 3, 14, 7, 30),
    ]
    assert local_starts(slots) == ["01:00", "01:30", "03:00", "03:30"]


# Any therapist


def test_any_therapist_merges_and_sorts_by_start_then_therapist():
    zoe = TherapistCalendar("zoe", (WorkingHours(0, time(8), time(9, 30)),))
    ana = TherapistCalendar(
        "ana",
        (WorkingHours(0, time(8, 30), time(10)),),
        busy=[Interval(detroit(MONDAY, 9), detroit(MONDAY, 9, 30))],
    )
    mia = TherapistCalendar("mia", (WorkingHours(0, time(8), time(9)),))

    slots = free_slots([zoe, ana, mia], rules(visit=30, step=30), DETROIT, MONDAY, MONDAY, LONG_AGO)

    assert [(local_start(slot), slot.therapist) for slot in slots] == [
        ("08:00", "mia"),
        ("08:00", "zoe"),
        ("08:30", "ana"),
        ("08:30", "mia"),
        ("08:30", "zoe"),
        ("09:00", "zoe"),
        ("09:30", "ana"),
    ]


def test_no_therapists_no_slots():
    assert free_slots([], rules(), DETROIT, MONDAY, FRIDAY, LONG_AGO) == []


# Re-checking one start before booking it


def test_is_slot_free_for_an_offered_slot():
    calendar = mornings()

    assert is_slot_free(calendar, rules(), DETROIT, utc(2026, 6, 15, 13, 15), LONG_AGO)
    assert is_slot_free(calendar, rules(), DETROIT, detroit(MONDAY, 9, 15), LONG_AGO)


def test_is_slot_free_refuses_a_start_off_the_grid():
    assert not is_slot_free(mornings(), rules(), DETROIT, detroit(MONDAY, 9, 5), LONG_AGO)


def test_is_slot_free_refuses_a_taken_start():
    calendar = mornings(busy=[Interval(detroit(MONDAY, 9), detroit(MONDAY, 10))])

    assert not is_slot_free(calendar, rules(buffer=15), DETROIT, detroit(MONDAY, 8, 15), LONG_AGO)
    assert is_slot_free(calendar, rules(buffer=15), DETROIT, detroit(MONDAY, 8), LONG_AGO)


def test_is_slot_free_refuses_a_start_outside_hours():
    calendar = mornings()

    assert not is_slot_free(calendar, rules(), DETROIT, detroit(MONDAY, 7, 45), LONG_AGO)
    assert not is_slot_free(calendar, rules(), DETROIT, detroit(MONDAY, 11, 30), LONG_AGO)
    assert not is_slot_free(calendar, rules(), DETROIT, detroit(date(2026, 6, 20), 9), LONG_AGO)


def test_is_slot_free_refuses_a_start_too_soon():
    now = detroit(MONDAY, 8)
    notice = rules(notice=timedelta(hours=1))

    assert not is_slot_free(mornings(), notice, DETROIT, detroit(MONDAY, 8, 45), now)
    assert is_slot_free(mornings(), notice, DETROIT, detroit(MONDAY, 9), now)


def test_is_slot_free_refuses_the_repeated_hour_when_clocks_go_back():
    calendar = TherapistCalendar("ana", (WorkingHours(6, time(0), time(4)),))
    sixty = rules(visit=60, step=60)

    assert is_slot_free(calendar, sixty, DETROIT, utc(2026, 11, 1, 5), LONG_AGO)  # 01:00 EDT
    assert not is_slot_free(calendar, sixty, DETROIT, utc(2026, 11, 1, 6), LONG_AGO)  # 01:00 EST


# Why a start is not offered: each reason told as it is


def test_a_free_start_has_no_reason_against_it():
    assert why_not_free(mornings(), rules(), DETROIT, detroit(MONDAY, 9, 15), LONG_AGO) is None


def test_a_start_between_two_grid_times_is_off_the_grid():
    assert why_not_free(mornings(), rules(), DETROIT, detroit(MONDAY, 9, 5), LONG_AGO) == "off_grid"
    seconds_late = detroit(MONDAY, 9).replace(second=30)
    assert why_not_free(mornings(), rules(), DETROIT, seconds_late, LONG_AGO) == "off_grid"


def test_a_start_before_the_notice_is_too_soon_even_off_the_grid():
    now = detroit(MONDAY, 8)
    notice = rules(notice=timedelta(hours=1))

    assert why_not_free(mornings(), notice, DETROIT, detroit(MONDAY, 8, 45), now) == "too_soon"
    assert why_not_free(mornings(), notice, DETROIT, detroit(MONDAY, 8, 50), now) == "too_soon"
    assert why_not_free(mornings(), notice, DETROIT, detroit(MONDAY, 9), now) is None


def test_a_start_beyond_the_booking_window_is_too_far():
    now = detroit(MONDAY, 8)
    week = rules(advance=timedelta(days=7))

    assert why_not_free(mornings(), week, DETROIT, detroit(MONDAY + timedelta(days=7), 8), now) \
        is None
    later = detroit(MONDAY + timedelta(days=7), 8, 15)
    assert why_not_free(mornings(), week, DETROIT, later, now) == "too_far"


def test_a_visit_that_does_not_fit_in_the_hours_is_outside_hours():
    calendar = mornings()

    for start in (detroit(MONDAY, 7, 45), detroit(MONDAY, 11, 30), detroit(MONDAY, 13),
                  detroit(date(2026, 6, 20), 9)):
        assert why_not_free(calendar, rules(), DETROIT, start, LONG_AGO) == "outside_hours"
    assert why_not_free(calendar, rules(), DETROIT, detroit(MONDAY, 11, 15), LONG_AGO) is None


def test_a_visit_running_into_time_off_is_time_off_but_its_buffer_may():
    calendar = mornings(time_off=[TimeOff(local(MONDAY, 10), local(MONDAY, 11))])
    buffered = rules(buffer=30)

    assert why_not_free(calendar, buffered, DETROIT, detroit(MONDAY, 9, 30), LONG_AGO) \
        == "time_off"
    assert why_not_free(calendar, buffered, DETROIT, detroit(MONDAY, 10, 45), LONG_AGO) \
        == "time_off"
    assert why_not_free(calendar, buffered, DETROIT, detroit(MONDAY, 9, 15), LONG_AGO) is None
    assert why_not_free(calendar, buffered, DETROIT, detroit(MONDAY, 11), LONG_AGO) is None


def test_a_start_blocked_by_a_visit_or_its_buffer_is_taken():
    calendar = mornings(busy=[Interval(detroit(MONDAY, 9), detroit(MONDAY, 10))])

    for start in (detroit(MONDAY, 8, 15), detroit(MONDAY, 9), detroit(MONDAY, 9, 45)):
        assert why_not_free(calendar, rules(buffer=15), DETROIT, start, LONG_AGO) == "taken"
    assert why_not_free(calendar, rules(buffer=15), DETROIT, detroit(MONDAY, 8), LONG_AGO) is None
    assert why_not_free(calendar, rules(buffer=15), DETROIT, detroit(MONDAY, 10), LONG_AGO) is None


def test_the_repeated_hour_when_clocks_go_back_is_off_the_grid():
    calendar = TherapistCalendar("ana", (WorkingHours(6, time(0), time(4)),))
    sixty = rules(visit=60, step=60)

    assert why_not_free(calendar, sixty, DETROIT, utc(2026, 11, 1, 5), LONG_AGO) is None
    assert why_not_free(calendar, sixty, DETROIT, utc(2026, 11, 1, 6), LONG_AGO) == "off_grid"


def test_there_is_a_reason_exactly_when_a_start_is_not_free():
    calendar = mornings(
        busy=[Interval(detroit(TUESDAY, 9), detroit(TUESDAY, 9, 40))],
        time_off=[TimeOff(local(WEDNESDAY, 10), local(THURSDAY, 9))],
    )
    now = detroit(MONDAY, 10, 5)
    service = rules(buffer=10, notice=timedelta(hours=1), advance=timedelta(days=3))
    for day in (MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY):
        for minutes in range(7 * 60, 13 * 60, 5):
            start = detroit(day, minutes // 60, minutes % 60)
            reason = why_not_free(calendar, service, DETROIT, start, now)
            assert (reason is None) == is_slot_free(calendar, service, DETROIT, start, now)


def test_for_several_therapists_the_reason_nearest_to_free_is_told():
    assert nearest_to_free([SlotRefusal.OUTSIDE_HOURS, SlotRefusal.TAKEN]) == "taken"
    assert nearest_to_free([SlotRefusal.TIME_OFF, SlotRefusal.OUTSIDE_HOURS]) == "time_off"
    assert nearest_to_free([SlotRefusal.TOO_SOON]) == "too_soon"


# Values the clinic must not get wrong


def test_naive_instants_are_refused():
    naive = local(MONDAY, 9)

    with pytest.raises(ValueError, match="timezone-aware"):
        free_slots([mornings()], rules(), DETROIT, MONDAY, MONDAY, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_slot_free(mornings(), rules(), DETROIT, naive, LONG_AGO)
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(naive, detroit(MONDAY, 10))


def test_hours_must_end_after_they_start():
    with pytest.raises(ValueError, match="end after"):
        WorkingHours(0, time(12), time(8))


# --- whether a visit fits the hours: the one rule the slots and the back office share -------


def test_a_visit_fits_inside_one_window_and_not_past_closing_or_across_lunch():
    calendar = TherapistCalendar(
        "ana", (WorkingHours(0, time(8), time(12)), WorkingHours(0, time(13), time(17)))
    )

    def fits(hour, minute, length):
        start = detroit(MONDAY, hour, minute)
        return fits_hours(calendar, DETROIT, start, start + timedelta(minutes=length))

    assert fits(8, 0, 45) is True
    assert fits(11, 15, 45) is True  # ends at closing
    assert fits(11, 30, 45) is False  # runs past closing
    assert fits(11, 30, 120) is False  # across the lunch break
    assert fits(7, 45, 45) is False  # starts before opening
    start = detroit(TUESDAY, 9)
    assert fits_hours(calendar, DETROIT, start, start + timedelta(minutes=45)) is False


def test_a_visit_overlapping_time_off_does_not_fit_but_one_touching_it_does():
    calendar = mornings(time_off=(TimeOff(local(MONDAY, 10), local(MONDAY, 11), "Dentist"),))

    def fits(hour, minute):
        start = detroit(MONDAY, hour, minute)
        return fits_hours(calendar, DETROIT, start, start + timedelta(minutes=45))

    assert (fits(9, 15), fits(9, 30), fits(10, 30), fits(11, 0)) == (True, False, False, True)


@pytest.mark.parametrize(
    "day", [MONDAY, date(2027, 3, 14), date(2026, 11, 1)], ids=["ordinary", "spring", "fall"]
)
def test_every_slot_offered_fits_the_hours_and_every_grid_time_not_offered_does_not(day):
    # The slots and the back office's stranded visits decide "fits the hours" the same way.
    calendar = TherapistCalendar(
        "ana",
        tuple(WorkingHours(weekday, time(0, 30), time(4)) for weekday in range(7))
        + tuple(WorkingHours(weekday, time(8), time(12)) for weekday in range(7)),
        (TimeOff(local(day, 10), local(day, 10, 30)),),
    )
    offered = {slot.start for slot in free_slots([calendar], rules(), DETROIT, day, day, LONG_AGO)}
    midnight = datetime.combine(day, time(), tzinfo=DETROIT).astimezone(UTC)
    for quarter in range(4 * 25):
        start = midnight + timedelta(minutes=15 * quarter)
        wall = start.astimezone(DETROIT)
        # The grid offers a wall time the clocks show twice once, the first time: a grid rule.
        if wall.date() != day or wall.fold:
            continue
        fits = fits_hours(calendar, DETROIT, start, start + timedelta(minutes=45))
        assert fits == (start in offered), start.astimezone(DETROIT)
    assert offered
