"""The clinic file: how the clinic describes itself, what a mistake in it reads like, and what
loading and exporting it does to the database."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, event, select

from booking.clinic.clinic_file import (
    DEMO_CLINIC_FILE,
    ClinicFileError,
    ServiceSpec,
    apply_clinic,
    clinic_file_text,
    export_clinic,
    parse_clinic_file,
    read_clinic_file,
)
from booking.extensions import db
from booking.models import (
    Appointment,
    Clinic,
    Service,
    Therapist,
    TimeOff,
    WorkingHours,
    therapist_services,
)
from booking.rules.availability import TimeOff as TimeOffSpec
from booking.rules.availability import WorkingHours as WorkingWindow

TEST_CLINIC_FILE = Path(__file__).with_name("clinic.toml")  # the conftest's `clinic`
DEMO_TEXT = DEMO_CLINIC_FILE.read_text(encoding="utf-8")

# The smallest clinic that uses every part of the file. Tests change a line and see what the
# clinic would be told.
SMALL_CLINIC = """\
[clinic]
name = "Small Steps Therapy"
timezone = "America/Detroit"
email = "frontdesk@smallsteps.example"
phone = "+1 586 555 0199"

[[services]]
slug = "schedule-a-call"
name = "Schedule a call"
kind = "call"
duration_minutes = 15

[[services]]
slug = "dry-needling"
name = "Dry needling session"
kind = "treatment"
duration_minutes = 45
buffer_after_minutes = 15
reminders = ["48h", "2h"]
aftercare = ["2h", "48h"]
requires_evaluation = true

[[therapists]]
slug = "alex-rivera"
name = "Alex Rivera, PT, DPT"
email = "alex@smallsteps.example"
disciplines = ["PT"]
services = ["schedule-a-call", "dry-needling"]
hours.mon = ["08:00-12:00", "13:00-17:00"]
hours.wed = ["10:00-18:00"]
time_off = [ { start = "2026-12-24T00:00", end = "2026-12-27T00:00", reason = "Holiday" } ]
"""
ALEX_TIME_OFF = SMALL_CLINIC.splitlines()[-1]


def small_clinic_with(old: str, new: str) -> str:
    assert SMALL_CLINIC.count(old) == 1, f"the small clinic has no single {old!r}"
    return SMALL_CLINIC.replace(old, new)


def problems_in(text: str) -> list[str]:
    """What the clinic is told about this file, one line per problem."""
    with pytest.raises(ClinicFileError) as refused:
        parse_clinic_file(text, "clinic.toml")
    return str(refused.value).splitlines()


def only_problem_in(text: str) -> str:
    problems = problems_in(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- Reading the file: no database ------------------------------------------------------------


def test_the_demo_clinic_serves_kids_and_adults_in_three_disciplines():
    demo = read_clinic_file(DEMO_CLINIC_FILE)

    assert demo.clinic.name == "Crawl Walk Jump Run Therapy Clinic"
    assert demo.clinic.timezone == "America/Detroit"
    assert [service.slug for service in demo.services] == [
        "schedule-a-call",
        "pt-evaluation",
        "ot-evaluation",
        "slp-evaluation",
        "dry-needling",
        "follow-up-treatment",
    ]
    assert len(demo.therapists) == 6
    assert {d for therapist in demo.therapists for d in therapist.disciplines} == {
        "PT",
        "OT",
        "SLP",
    }
    needlers = [t for t in demo.therapists if "dry-needling" in t.services]
    assert [t.disciplines for t in needlers] == [("PT",), ("PT",)]
    assert all("schedule-a-call" in therapist.services for therapist in demo.therapists)
    for therapist in demo.therapists:
        (discipline,) = therapist.disciplines
        assert f"{discipline.lower()}-evaluation" in therapist.services, therapist.slug
    assert any(window.weekday == 5 for t in demo.therapists for window in t.hours)  # Saturdays
    assert any(window.end >= time(19, 0) for t in demo.therapists for window in t.hours)
    assert any(t.time_off for t in demo.therapists)


def test_dry_needling_in_the_demo_follows_an_evaluation_and_sends_aftercare():
    services = {service.slug: service for service in read_clinic_file(DEMO_CLINIC_FILE).services}

    assert services["dry-needling"] == ServiceSpec(
        slug="dry-needling",
        name="Dry needling session",
        description=(
            "Dry needling with a trained physical therapist; it follows an evaluation with us."
        ),
        kind="treatment",
        duration_minutes=45,
        buffer_after_minutes=15,
        min_notice_hours=24,
        max_advance_days=90,
        reminders=("48h", "2h"),
        aftercare=("2h", "48h"),
        aftercare_advice="dry-needling",
        requires_evaluation=True,
        requires_clearance=True,
        forms=("dry-needling-screening",),
    )
    assert services["schedule-a-call"].duration_minutes == 15
    assert services["schedule-a-call"].reminders == ("1h",)


def test_keys_left_out_take_their_documented_defaults():
    spec = parse_clinic_file(SMALL_CLINIC, "clinic.toml")

    assert (spec.clinic.address, spec.clinic.website, spec.clinic.slot_step_minutes) == (
        "",
        "",
        15,
    )
    assert spec.services[0] == ServiceSpec(
        slug="schedule-a-call",
        name="Schedule a call",
        kind="call",
        duration_minutes=15,
        buffer_after_minutes=0,
        min_notice_hours=0,
        max_advance_days=60,
        reminders=(),
        aftercare=(),
        aftercare_advice="none",
        requires_evaluation=False,
        description="",
    )
    bare = parse_clinic_file(
        SMALL_CLINIC + '\n[[therapists]]\nslug = "sam-ortiz"\nname = "Sam Ortiz, SLP"\n',
        "clinic.toml",
    ).therapists[1]
    assert (bare.email, bare.disciplines, bare.services, bare.hours, bare.time_off) == (
        "",
        (),
        (),
        (),
        (),
    )


def test_hours_and_time_off_are_read_as_clinic_wall_clock():
    alex = parse_clinic_file(SMALL_CLINIC, "clinic.toml").therapists[0]

    assert alex.hours == (
        WorkingWindow(0, time(8, 0), time(12, 0)),
        WorkingWindow(0, time(13, 0), time(17, 0)),
        WorkingWindow(2, time(10, 0), time(18, 0)),
    )
    assert alex.time_off == (
        TimeOffSpec(
            datetime.fromisoformat("2026-12-24T00:00"),
            datetime.fromisoformat("2026-12-27T00:00"),
            "Holiday",
        ),
    )
    assert alex.time_off[0].start.tzinfo is None


def test_an_unquoted_toml_local_date_time_is_accepted_for_time_off():
    text = small_clinic_with('start = "2026-12-24T00:00"', "start = 2026-12-24T00:00:00")

    alex = parse_clinic_file(text, "clinic.toml").therapists[0]

    assert alex.time_off[0].start == datetime.fromisoformat("2026-12-24T00:00")


def test_a_service_of_an_unknown_kind_is_refused_naming_file_key_and_value():
    text = small_clinic_with('kind = "treatment"', 'kind = "massage"')

    assert only_problem_in(text) == (
        'clinic.toml: services[1].kind: must be one of call, evaluation, treatment (got "massage")'
    )


def test_every_problem_in_the_file_is_reported_at_once_one_per_line():
    text = (
        SMALL_CLINIC.replace('timezone = "America/Detroit"', 'timezone = "America/Detriot"')
        .replace("duration_minutes = 45", 'duration_minutes = "45"')
        .replace('hours.wed = ["10:00-18:00"]', 'hours.wed = ["10:00-18:00", "17:00-19:00"]')
    )

    assert problems_in(text) == [
        'clinic.toml: clinic.timezone: unknown time zone "America/Detriot": use an IANA name '
        'like "America/Detroit" (did you mean "America/Detroit"?)',
        'clinic.toml: services[1].duration_minutes: must be a whole number (got "45")',
        'clinic.toml: therapists[0].hours.wed[1]: "17:00-19:00" overlaps "10:00-18:00" ([0])',
    ]


def test_a_toml_syntax_error_names_the_line_and_column():
    text = small_clinic_with('phone = "+1 586 555 0199"', "phone = +1 586 555 0199")

    assert only_problem_in(text) == (
        "clinic.toml: line 5, column 12: expected newline or end of document after a statement "
        "(not valid TOML)"
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            '[[services]]\nslug = "schedule-a-call"',
            'colour = "blue"\n\n[[services]]\nslug = "schedule-a-call"',
            "clinic.colour: unknown key; known keys: name, timezone, email, phone, address, "
            "website, slot_step_minutes, feed_details, languages",
        ),
        (
            "buffer_after_minutes = 15",
            "bufer_after_minutes = 15",
            'services[1].bufer_after_minutes: unknown key (did you mean "buffer_after_minutes"?)',
        ),
        (
            'disciplines = ["PT"]',
            'disciplines = ["PT"]\nphone = "555"',
            "therapists[0].phone: unknown key; known keys: slug, name, email, disciplines, "
            "services, hours, time_off",
        ),
        (
            'reason = "Holiday"',
            'reason = "Holiday", note = "ski trip"',
            "therapists[0].time_off[0].note: unknown key; known keys: start, end, reason",
        ),
    ],
)
def test_an_unknown_key_is_refused_at_any_level(old, new, problem):
    assert only_problem_in(small_clinic_with(old, new)) == f"clinic.toml: {problem}"


def test_an_unknown_top_level_table_is_refused():
    text = SMALL_CLINIC + '\n[[therapist]]\nslug = "sam-ortiz"\n'

    assert only_problem_in(text) == (
        'clinic.toml: therapist: unknown key (did you mean "therapists"?)'
    )


def test_services_written_as_a_single_table_get_a_hint():
    text = SMALL_CLINIC.replace("[[services]]", "[services]", 1).replace("[[services]]", "[[more]]")

    assert (
        "clinic.toml: services: must be a list of tables: write [[services]], not [services]"
        in (problems_in(text))
    )


def test_every_missing_required_key_is_named():
    text = small_clinic_with('kind = "call"\nduration_minutes = 15\n', "").replace(
        'email = "frontdesk@smallsteps.example"\n', ""
    )

    assert problems_in(text) == [
        "clinic.toml: clinic.email: required key is missing",
        "clinic.toml: services[0].kind: required key is missing",
        "clinic.toml: services[0].duration_minutes: required key is missing",
    ]


def test_a_file_without_a_clinic_table_says_so_once():
    text = SMALL_CLINIC.split("[[services]]", 1)[1]

    assert problems_in("[[services]]" + text) == [
        "clinic.toml: clinic: required table is missing; start the file with [clinic]"
    ]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("duration_minutes = 45", 'duration_minutes = "45"', 'must be a whole number (got "45")'),
        ("duration_minutes = 45", "duration_minutes = 45.0", "must be a whole number (got 45.0)"),
        ("duration_minutes = 45", "duration_minutes = true", "must be a whole number (got true)"),
        (
            "requires_evaluation = true",
            'requires_evaluation = "yes"',
            'must be true or false (got "yes")',
        ),
        ('name = "Dry needling session"', "name = 7", "must be text in quotes (got 7)"),
        (
            'reminders = ["48h", "2h"]',
            'reminders = "48h"',
            'must be a list, like ["48h", "2h"] (got "48h")',
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(old, new, problem):
    key = new.split(" = ")[0]

    assert only_problem_in(small_clinic_with(old, new)) == (
        f"clinic.toml: services[1].{key}: {problem}"
    )


def test_a_therapist_offering_a_service_the_file_does_not_have_is_refused():
    text = small_clinic_with(
        'services = ["schedule-a-call", "dry-needling"]',
        'services = ["schedule-a-call", "dry-needlng", "massage"]',
    )

    assert problems_in(text) == [
        'clinic.toml: therapists[0].services[1]: no service "dry-needlng" in this file '
        '(did you mean "dry-needling"?)',
        'clinic.toml: therapists[0].services[2]: no service "massage" in this file',
    ]


def test_two_services_with_one_slug_are_refused():
    text = SMALL_CLINIC.replace('slug = "dry-needling"', 'slug = "schedule-a-call"').replace(
        'services = ["schedule-a-call", "dry-needling"]', 'services = ["schedule-a-call"]'
    )

    assert only_problem_in(text) == (
        'clinic.toml: services[1].slug: "schedule-a-call" is already used by services[0]'
    )


def test_two_therapists_with_one_slug_are_refused():
    text = SMALL_CLINIC + '\n[[therapists]]\nslug = "alex-rivera"\nname = "Alex Rivera, OT"\n'

    assert only_problem_in(text) == (
        'clinic.toml: therapists[1].slug: "alex-rivera" is already used by therapists[0]'
    )


@pytest.mark.parametrize(
    "slug", ["Dry-Needling", "dry_needling", "dry needling", "-dry", "dry-", "dry--needling", ""]
)
def test_a_slug_is_lowercase_letters_digits_and_hyphens(slug):
    text = small_clinic_with('slug = "alex-rivera"', f'slug = "{slug}"')

    expected = (
        "must not be empty"
        if not slug
        else "must be lowercase letters, digits and single hyphens between them, "
        f'like "dry-needling" (got "{slug}")'
    )
    assert only_problem_in(text) == f"clinic.toml: therapists[0].slug: {expected}"


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        ("8:00-12:00", 'must be a time window like "08:00-12:00" (got "8:00-12:00")'),
        ("08:00 - 12:00", 'must be a time window like "08:00-12:00" (got "08:00 - 12:00")'),
        ("08:00-12", 'must be a time window like "08:00-12:00" (got "08:00-12")'),
        ("25:00-26:00", '"25:00" is not a time of day (00:00 to 23:59) (got "25:00-26:00")'),
        ("08:60-09:00", '"08:60" is not a time of day (00:00 to 23:59) (got "08:60-09:00")'),
        ("18:00-24:00", '"24:00" is not a time of day; end the day at "23:59" (got "18:00-24:00")'),
        ("12:00-08:00", 'must end after it starts (got "12:00-08:00")'),
        ("12:00-12:00", 'must end after it starts (got "12:00-12:00")'),
    ],
)
def test_a_bad_time_window_is_refused(window, problem):
    text = small_clinic_with('hours.wed = ["10:00-18:00"]', f'hours.wed = ["{window}"]')

    assert only_problem_in(text) == f"clinic.toml: therapists[0].hours.wed[0]: {problem}"


def test_the_last_minute_of_the_day_can_be_worked_up_to_23_59():
    text = small_clinic_with('hours.wed = ["10:00-18:00"]', 'hours.wed = ["18:00-23:59"]')

    alex = parse_clinic_file(text, "clinic.toml").therapists[0]

    assert alex.hours[-1] == WorkingWindow(2, time(18, 0), time(23, 59))


def test_overlapping_and_repeated_windows_on_one_day_are_refused():
    text = small_clinic_with(
        'hours.mon = ["08:00-12:00", "13:00-17:00"]',
        'hours.mon = ["08:00-12:00", "13:00-17:00", "11:30-13:30", "08:00-12:00"]',
    )

    assert problems_in(text) == [
        'clinic.toml: therapists[0].hours.mon[3]: "08:00-12:00" is listed twice (also at [0])',
        'clinic.toml: therapists[0].hours.mon[2]: "11:30-13:30" overlaps "08:00-12:00" ([0])',
        'clinic.toml: therapists[0].hours.mon[2]: "11:30-13:30" overlaps "13:00-17:00" ([1])',
    ]


def test_windows_that_touch_do_not_overlap():
    text = small_clinic_with(
        'hours.mon = ["08:00-12:00", "13:00-17:00"]', 'hours.mon = ["12:00-17:00", "08:00-12:00"]'
    )

    alex = parse_clinic_file(text, "clinic.toml").therapists[0]

    assert alex.hours[:2] == (
        WorkingWindow(0, time(8, 0), time(12, 0)),
        WorkingWindow(0, time(12, 0), time(17, 0)),
    )


def test_an_unknown_weekday_is_refused():
    text = small_clinic_with("hours.wed", "hours.wednesday")

    assert only_problem_in(text) == (
        'clinic.toml: therapists[0].hours.wednesday: unknown weekday (did you mean "wed"?); '
        "use mon, tue, wed, thu, fri, sat, sun"
    )


@pytest.mark.parametrize("zone", ["America/Detriot", "EST-5", "localtime", "../etc/passwd", ""])
def test_a_time_zone_must_be_a_known_iana_place(zone):
    text = small_clinic_with('timezone = "America/Detroit"', f'timezone = "{zone}"')

    problem = only_problem_in(text)

    assert problem.startswith("clinic.toml: clinic.timezone: ")
    if zone:
        assert f'unknown time zone "{zone}": use an IANA name like "America/Detroit"' in problem
    else:
        assert problem.endswith("must not be empty")


@pytest.mark.parametrize("duration", ["2w", "0h", "1.5h", "h", "15", "-2h", "2 h", "1h30m", "2H"])
def test_a_duration_is_a_positive_whole_number_and_one_unit(duration):
    text = small_clinic_with('reminders = ["48h", "2h"]', f'reminders = ["48h", "{duration}"]')

    assert only_problem_in(text) == (
        "clinic.toml: services[1].reminders[1]: must be a duration: a whole number and one unit, "
        f'm (minutes), h (hours) or d (days), like "15m", "2h", "2d" (got "{duration}")'
    )


def test_two_reminders_at_the_same_moment_are_refused():
    text = small_clinic_with('aftercare = ["2h", "48h"]', 'aftercare = ["2h", "2d", "48h"]')

    assert only_problem_in(text) == (
        'clinic.toml: services[1].aftercare[2]: "48h" is the same moment as [1] ("2d")'
    )


def test_a_reminder_more_than_a_year_ahead_is_refused():
    text = small_clinic_with('reminders = ["48h", "2h"]', 'reminders = ["99999999999d"]')

    assert only_problem_in(text) == (
        'clinic.toml: services[1].reminders[0]: "99999999999d" is more than a year'
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "buffer_after_minutes = 15",
            "buffer_after_minutes = -5",
            "services[1].buffer_after_minutes: must not be negative (got -5)",
        ),
        (
            "duration_minutes = 45",
            "duration_minutes = -45",
            "services[1].duration_minutes: must not be negative (got -45)",
        ),
        (
            "duration_minutes = 45",
            "duration_minutes = 0",
            "services[1].duration_minutes: must be at least 1 (got 0)",
        ),
        (
            "duration_minutes = 45",
            "duration_minutes = 100000",
            "services[1].duration_minutes: must be at most 1440 (got 100000)",
        ),
        (
            "requires_evaluation = true",
            "requires_evaluation = true\nmin_notice_hours = -1",
            "services[1].min_notice_hours: must not be negative (got -1)",
        ),
        (
            "requires_evaluation = true",
            "requires_evaluation = true\nmax_advance_days = 0",
            "services[1].max_advance_days: must be at least 1 (got 0)",
        ),
        (
            "requires_evaluation = true",
            "requires_evaluation = true\nmin_notice_hours = 48\nmax_advance_days = 2",
            "services[1].min_notice_hours: 48 hours of notice reaches past max_advance_days "
            "(2 days): nothing could ever be booked online",
        ),
    ],
)
def test_numbers_out_of_range_are_refused(old, new, problem):
    assert only_problem_in(small_clinic_with(old, new)) == f"clinic.toml: {problem}"


@pytest.mark.parametrize("step", [0, -15, 25, 7, 90])
def test_the_slot_step_must_divide_an_hour(step):
    text = small_clinic_with(
        'phone = "+1 586 555 0199"', f'phone = "1"\nslot_step_minutes = {step}'
    )

    assert only_problem_in(text) == (
        "clinic.toml: clinic.slot_step_minutes: must be a number of minutes that divides an hour "
        f"evenly: 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60 (got {step})"
    )


@pytest.mark.parametrize("step", [5, 10, 20, 30, 60])
def test_slot_steps_that_divide_an_hour_are_accepted(step):
    text = small_clinic_with(
        'phone = "+1 586 555 0199"', f'phone = "1"\nslot_step_minutes = {step}'
    )

    assert parse_clinic_file(text, "clinic.toml").clinic.slot_step_minutes == step


def test_disciplines_are_pt_ot_or_slp_each_once():
    text = small_clinic_with('disciplines = ["PT"]', 'disciplines = ["PT", "pta", "PT"]')

    assert problems_in(text) == [
        'clinic.toml: therapists[0].disciplines[1]: must be one of PT, OT, SLP (got "pta")',
        'clinic.toml: therapists[0].disciplines[2]: "PT" is listed twice (also at [0])',
    ]


@pytest.mark.parametrize(
    ("period", "key", "problem"),
    [
        (
            '{ start = "2026-12-27T00:00", end = "2026-12-24T00:00" }',
            "end",
            "must be after start (2026-12-27T00:00)",
        ),
        (
            '{ start = "2026-12-24T09:00", end = "2026-12-24T09:00" }',
            "end",
            "must be after start (2026-12-24T09:00)",
        ),
        (
            '{ start = "2026-12-24T00:00-05:00", end = "2026-12-27T00:00" }',
            "start",
            "must be clinic wall-clock time, without a time zone offset "
            '(got "2026-12-24T00:00-05:00")',
        ),
        (
            '{ start = "2026-12-24T05:00Z", end = "2026-12-27T00:00" }',
            "start",
            'must be clinic wall-clock time, without a time zone offset (got "2026-12-24T05:00Z")',
        ),
        (
            "{ start = 2026-12-24T05:00:00Z, end = 2026-12-27T00:00:00 }",
            "start",
            "must be clinic wall-clock time, without a time zone offset "
            "(got 2026-12-24T05:00:00+00:00)",
        ),
        (
            '{ start = "2026-12-24", end = "2026-12-27T00:00" }',
            "start",
            'must be a date and a time, like "2026-12-24T00:00" (got "2026-12-24")',
        ),
        (
            '{ start = "24/12/2026 00:00", end = "2026-12-27T00:00" }',
            "start",
            'must be a date and a time, like "2026-12-24T00:00" (got "24/12/2026 00:00")',
        ),
        (
            '{ start = "2026-12-24T00:00", end = "2026-02-30T00:00" }',
            "end",
            '"2026-02-30T00:00" is not a real date and time',
        ),
        ('{ end = "2026-12-27T00:00" }', "start", "required key is missing"),
    ],
)
def test_bad_time_off_is_refused(period, key, problem):
    text = small_clinic_with(ALEX_TIME_OFF, f"time_off = [ {period} ]")

    assert only_problem_in(text) == f"clinic.toml: therapists[0].time_off[0].{key}: {problem}"


def test_a_service_says_which_care_advice_its_mail_gives():
    text = small_clinic_with(
        "requires_evaluation = true",
        'requires_evaluation = true\naftercare_advice = "dry-needling"',
    )

    services = parse_clinic_file(text, "clinic.toml").services
    assert [service.aftercare_advice for service in services] == ["none", "dry-needling"]
    assert only_problem_in(text.replace('advice = "dry-needling"', 'advice = "soreness"')) == (
        "clinic.toml: services[1].aftercare_advice: must be one of none, dry-needling "
        '(got "soreness")'
    )


def test_the_care_advice_is_loaded_and_exported(app):
    load(
        small_clinic_with(
            "requires_evaluation = true",
            'requires_evaluation = true\naftercare_advice = "dry-needling"',
        )
    )

    dry_needling = db.session.scalars(select(Service).where(Service.slug == "dry-needling")).one()
    assert dry_needling.aftercare_advice == "dry-needling"
    assert 'aftercare_advice = "dry-needling"\nrequires_evaluation = true\n' in export_clinic()
    assert load(SMALL_CLINIC) == ['service dry-needling: aftercare_advice "dry-needling" -> "none"']


@pytest.mark.parametrize(
    "email",
    [
        "alex",
        "alex@clinic",
        "alex@@clinic.example",
        "alex@clinic..example",
        "al ex@clinic.example",
        "@clinic.example",
        "alex@.example",
    ],
)
def test_an_email_needs_one_at_sign_and_a_dotted_domain(email):
    text = small_clinic_with('email = "alex@smallsteps.example"', f'email = "{email}"')

    assert only_problem_in(text) == (
        "clinic.toml: therapists[0].email: must be an email address like "
        f'"frontdesk@clinic.example" (got "{email}")'
    )


def test_the_clinic_needs_an_email_but_a_therapist_may_have_none():
    text = small_clinic_with('email = "alex@smallsteps.example"', 'email = ""').replace(
        'email = "frontdesk@smallsteps.example"', 'email = ""'
    )

    assert problems_in(text) == ["clinic.toml: clinic.email: must not be empty"]


@pytest.mark.parametrize(
    ("escaped", "shown"),
    [
        ("\\n", "\\n"),
        ("\\r", "\\r"),
        ("\\t", "\\t"),
        ("\\u2028", "\\u2028"),
        ("\\u0007", "\\u0007"),
    ],
)
def test_a_name_with_a_line_break_or_control_character_is_refused(escaped, shown):
    # Names go into mail headers: a line break there would let a name add headers of its own.
    text = small_clinic_with(
        'name = "Alex Rivera, PT, DPT"', f'name = "Alex Rivera{escaped}Bcc: x"'
    )

    assert only_problem_in(text) == (
        "clinic.toml: therapists[0].name: must be one line of text without control characters "
        f'(found "{shown}" in "Alex Rivera{shown}Bcc: x")'
    )


def test_a_name_longer_than_200_characters_is_refused():
    accepted = small_clinic_with('name = "Schedule a call"', f'name = "{"a" * 200}"')
    refused = small_clinic_with('name = "Schedule a call"', f'name = "{"a" * 201}"')

    assert parse_clinic_file(accepted, "clinic.toml").services[0].name == "a" * 200
    assert only_problem_in(refused) == (
        "clinic.toml: services[0].name: is 201 characters long; at most 200 are allowed"
    )


def test_a_website_must_be_a_web_address():
    text = small_clinic_with('phone = "+1 586 555 0199"', 'phone = "1"\nwebsite = "smallsteps"')

    assert only_problem_in(text) == (
        'clinic.toml: clinic.website: must be a web address like "https://clinic.example" '
        '(got "smallsteps")'
    )


def test_reading_a_missing_file_names_it(tmp_path):
    with pytest.raises(ClinicFileError) as refused:
        read_clinic_file(tmp_path / "nowhere.toml")

    assert (
        str(refused.value)
        == f"{tmp_path / 'nowhere.toml'}: cannot be read: No such file or directory"
    )


def test_a_file_saved_with_a_byte_order_mark_reads_the_same(tmp_path):
    path = tmp_path / "clinic.toml"
    path.write_text("\ufeff" + SMALL_CLINIC, encoding="utf-8")

    assert read_clinic_file(path) == parse_clinic_file(SMALL_CLINIC, "clinic.toml")


def test_the_file_text_of_a_clinic_reads_back_as_the_same_clinic():
    demo = read_clinic_file(DEMO_CLINIC_FILE)
    quirky = parse_clinic_file(
        small_clinic_with(
            'name = "Small Steps Therapy"', 'name = "Small \\"Steps\\" \\\\ Thérapie"'
        ),
        "clinic.toml",
    )

    for spec in (demo, quirky):
        assert parse_clinic_file(clinic_file_text(spec), "export.toml") == spec
    assert quirky.clinic.name == 'Small "Steps" \\ Thérapie'


# --- Loading into the database and exporting ------------------------------------------------


def load(text: str) -> list[str]:
    """What `flask clinic load` does: read, apply, commit once."""
    changes = apply_clinic(parse_clinic_file(text, "clinic.toml"))
    db.session.commit()
    return changes


def empty_the_clinic() -> None:
    for table in (therapist_services, WorkingHours.__table__, TimeOff.__table__):
        db.session.execute(delete(table))
    for model in (Therapist, Service, Clinic):
        db.session.execute(delete(model))
    db.session.commit()


def hours_rows_of(slug: str) -> list[int]:
    """The ids of a therapist's hours rows: the same ids mean the rows were left alone."""
    therapist = db.session.scalars(select(Therapist).where(Therapist.slug == slug)).one()
    return [row.id for row in therapist.hours]


def hours_of(slug: str) -> list[tuple[int, time, time]]:
    therapist = db.session.scalars(select(Therapist).where(Therapist.slug == slug)).one()
    return [(row.weekday, row.start_time, row.end_time) for row in therapist.hours]


def test_loading_the_demo_creates_six_therapists_and_the_services_with_their_hours(app):
    changes = load(DEMO_TEXT)

    clinic = db.session.scalars(select(Clinic)).one()
    assert (clinic.name, clinic.timezone, clinic.slot_step_minutes) == (
        "Crawl Walk Jump Run Therapy Clinic",
        "America/Detroit",
        15,
    )
    therapists = db.session.scalars(select(Therapist).order_by(Therapist.position)).all()
    assert [t.slug for t in therapists] == [
        "alex-rivera",
        "priya-natarajan",
        "marcus-bell",
        "hannah-kowalski",
        "jordan-lee",
        "danielle-okafor",
    ]
    services = db.session.scalars(select(Service).order_by(Service.position)).all()
    assert [(s.slug, s.position, s.active) for s in services] == [
        ("schedule-a-call", 0, True),
        ("pt-evaluation", 1, True),
        ("ot-evaluation", 2, True),
        ("slp-evaluation", 3, True),
        ("dry-needling", 4, True),
        ("follow-up-treatment", 5, True),
    ]
    dry_needling = services[4]
    assert [t.slug for t in dry_needling.therapists] == ["alex-rivera", "priya-natarajan"]
    assert dry_needling.reminders == [timedelta(hours=48), timedelta(hours=2)]
    assert dry_needling.aftercare == [timedelta(hours=2), timedelta(hours=48)]
    assert dry_needling.aftercare_advice == "dry-needling"
    assert hours_of("alex-rivera") == [
        (0, time(8, 0), time(12, 0)),
        (0, time(13, 0), time(17, 0)),
        (2, time(10, 0), time(18, 0)),
        (4, time(7, 0), time(13, 0)),
        (5, time(8, 0), time(12, 0)),
    ]
    alex_time_off = therapists[0].time_off
    assert [(t.starts_local, t.ends_local, t.reason) for t in alex_time_off] == [
        (
            datetime.fromisoformat("2026-12-24T00:00"),
            datetime.fromisoformat("2026-12-27T00:00"),
            "Holiday",
        )
    ]
    assert changes[0] == 'clinic: created "Crawl Walk Jump Run Therapy Clinic"'
    assert changes[1] == "form dry-needling-screening: added"
    assert len(changes) == 1 + 1 + 6 + 6


def test_loading_the_same_file_twice_changes_nothing_not_even_a_timestamp(app):
    load(DEMO_TEXT)
    updated_at = db.session.scalars(select(Clinic)).one().updated_at
    hours_ids = sorted(db.session.scalars(select(WorkingHours.id)))
    writes: list[str] = []

    def note_writes(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(db.engine, "before_cursor_execute", note_writes)
    try:
        changes = load(DEMO_TEXT)
    finally:
        event.remove(db.engine, "before_cursor_execute", note_writes)

    assert changes == []
    assert writes == []
    db.session.expire_all()
    assert db.session.scalars(select(Clinic)).one().updated_at == updated_at
    assert sorted(db.session.scalars(select(WorkingHours.id))) == hours_ids


def test_an_export_loaded_into_an_empty_clinic_exports_byte_for_byte_the_same(app):
    load(DEMO_TEXT)
    exported = export_clinic()

    empty_the_clinic()
    load(exported)

    assert export_clinic() == exported


def test_reloading_an_exported_file_changes_nothing(app):
    load(DEMO_TEXT)

    assert load(export_clinic()) == []


def test_the_export_writes_every_key_in_the_clinic_file_style(app):
    load(SMALL_CLINIC)

    assert export_clinic() == (
        "# The clinic file: docs/clinic-file.md explains every key.\n"
        "# Load it with: flask --app wsgi clinic load FILE\n"
        "\n"
        "[clinic]\n"
        'name = "Small Steps Therapy"\n'
        'timezone = "America/Detroit"\n'
        'email = "frontdesk@smallsteps.example"\n'
        'phone = "+1 586 555 0199"\n'
        'address = ""\n'
        'website = ""\n'
        "slot_step_minutes = 15\n"
        'feed_details = "service-and-initials"\n'
        'languages = ["en"]\n'
        "\n"
        "[[services]]\n"
        'slug = "schedule-a-call"\n'
        'name = "Schedule a call"\n'
        'description = ""\n'
        'kind = "call"\n'
        "duration_minutes = 15\n"
        "buffer_after_minutes = 0\n"
        "min_notice_hours = 0\n"
        "max_advance_days = 60\n"
        "reminders = []\n"
        "aftercare = []\n"
        'aftercare_advice = "none"\n'
        "requires_evaluation = false\n"
        "requires_clearance = false\n"
        "forms = []\n"
        "\n"
        "[[services]]\n"
        'slug = "dry-needling"\n'
        'name = "Dry needling session"\n'
        'description = ""\n'
        'kind = "treatment"\n'
        "duration_minutes = 45\n"
        "buffer_after_minutes = 15\n"
        "min_notice_hours = 0\n"
        "max_advance_days = 60\n"
        'reminders = ["48h", "2h"]\n'
        'aftercare = ["2h", "48h"]\n'
        'aftercare_advice = "none"\n'
        "requires_evaluation = true\n"
        "requires_clearance = false\n"
        "forms = []\n"
        "\n"
        "[[therapists]]\n"
        'slug = "alex-rivera"\n'
        'name = "Alex Rivera, PT, DPT"\n'
        'email = "alex@smallsteps.example"\n'
        'disciplines = ["PT"]\n'
        'services = ["schedule-a-call", "dry-needling"]\n'
        'hours.mon = ["08:00-12:00", "13:00-17:00"]\n'
        'hours.wed = ["10:00-18:00"]\n'
        'time_off = [ { start = "2026-12-24T00:00", end = "2026-12-27T00:00", '
        'reason = "Holiday" } ]\n'
    )


def test_new_hours_for_one_therapist_replace_just_those_hours(app):
    load(DEMO_TEXT)
    priya_hours = hours_rows_of("priya-natarajan")
    edited = DEMO_TEXT.replace(
        'hours.wed = ["10:00-18:00"]\nhours.fri = ["07:00-13:00"]',
        'hours.wed = ["10:00-14:00", "15:00-19:00"]\nhours.fri = ["07:00-13:00"]',
    )
    assert edited != DEMO_TEXT

    changes = load(edited)

    assert changes == [
        "therapist alex-rivera: hours now mon 08:00-12:00, 13:00-17:00; wed 10:00-14:00, "
        "15:00-19:00; fri 07:00-13:00; sat 08:00-12:00 (were mon 08:00-12:00, 13:00-17:00; "
        "wed 10:00-18:00; fri 07:00-13:00; sat 08:00-12:00)"
    ]
    assert (2, time(10, 0), time(14, 0)) in hours_of("alex-rivera")
    assert (2, time(15, 0), time(19, 0)) in hours_of("alex-rivera")
    assert (2, time(10, 0), time(18, 0)) not in hours_of("alex-rivera")
    assert hours_rows_of("priya-natarajan") == priya_hours


def test_a_changed_service_setting_is_reported_field_by_field(app):
    load(SMALL_CLINIC)

    changes = load(
        small_clinic_with("duration_minutes = 45", "duration_minutes = 60").replace(
            'aftercare = ["2h", "48h"]', 'aftercare = ["2h"]'
        )
    )

    assert changes == [
        "service dry-needling: duration_minutes 45 -> 60",
        'service dry-needling: aftercare ["2h", "48h"] -> ["2h"]',
    ]


def test_a_service_dropped_from_the_file_is_retired_and_left_out_of_the_export(app):
    load(SMALL_CLINIC)
    dry_needling_starts = SMALL_CLINIC.index('[[services]]\nslug = "dry-needling"')
    therapists_start = SMALL_CLINIC.index("[[therapists]]")
    without_dry_needling = (
        SMALL_CLINIC[:dry_needling_starts] + SMALL_CLINIC[therapists_start:]
    ).replace('services = ["schedule-a-call", "dry-needling"]', 'services = ["schedule-a-call"]')

    changes = load(without_dry_needling)

    assert changes == [
        "service dry-needling: retired (not in the file; its appointments are kept)",
        'therapist alex-rivera: services ["schedule-a-call", "dry-needling"] -> '
        '["schedule-a-call"]',
    ]
    dry_needling = db.session.scalars(select(Service).where(Service.slug == "dry-needling")).one()
    assert dry_needling.active is False
    assert "dry-needling" not in export_clinic()

    assert load(SMALL_CLINIC) == [
        "service dry-needling: offered again",
        'therapist alex-rivera: services ["schedule-a-call"] -> '
        '["schedule-a-call", "dry-needling"]',
    ]
    assert db.session.get(Service, dry_needling.id).active is True


def test_a_therapist_who_leaves_is_retired_and_keeps_their_appointments(app, book):
    appointment = book(service="schedule-a-call", therapist="jamie-lee")
    test_clinic = TEST_CLINIC_FILE.read_text(encoding="utf-8")
    clinic_without_jamie = test_clinic.split('[[therapists]]\nslug = "jamie-lee"')[0]

    changes = load(clinic_without_jamie)

    assert changes == [
        "therapist jamie-lee: retired (not in the file; their appointments are kept)"
    ]
    db.session.expire_all()
    kept = db.session.get(Appointment, appointment.id)
    assert (kept.therapist.slug, kept.status, kept.therapist.active) == (
        "jamie-lee",
        "confirmed",
        False,
    )
    assert "jamie-lee" not in export_clinic()


def test_a_broken_file_loaded_over_a_good_clinic_changes_nothing(app):
    load(DEMO_TEXT)
    before = export_clinic()
    broken = DEMO_TEXT.replace("Crawl Walk Jump Run Therapy Clinic", "Renamed Clinic").replace(
        'hours.sat = ["08:00-12:00"]', 'hours.sat = ["08:00-12:00", "11:00-13:00"]', 1
    )

    with pytest.raises(ClinicFileError, match=r"therapists\[0\]\.hours\.sat\[1\]"):
        load(broken)

    assert export_clinic() == before


def test_a_load_that_fails_midway_is_rolled_back_whole(app):
    load(DEMO_TEXT)
    before = export_clinic()
    edited = (
        DEMO_TEXT.replace("Crawl Walk Jump Run Therapy Clinic", "Renamed Clinic")
        .replace("duration_minutes = 60", "duration_minutes = 75")
        .replace('hours.wed = ["10:00-18:00"]', 'hours.wed = ["10:00-19:00"]')
    )

    def disk_full(*_args):
        raise RuntimeError("disk full")

    # The clinic and service rows are written before the therapist's new hours fail.
    event.listen(WorkingHours, "before_insert", disk_full)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            load(edited)
    finally:
        event.remove(WorkingHours, "before_insert", disk_full)
    db.session.rollback()

    assert db.session.scalars(select(Clinic)).one().name == "Crawl Walk Jump Run Therapy Clinic"
    assert export_clinic() == before


def test_exporting_before_any_clinic_is_loaded_says_so(app):
    with pytest.raises(LookupError, match="no clinic has been loaded yet"):
        export_clinic()
