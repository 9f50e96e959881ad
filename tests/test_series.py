"""Weekly series of visits (CONTRACT "Series of visits"): a course of dry needling booked in one
step, all or nothing, previewed, raced for, cancelled from one visit on, and told by mail.

Alex Rivera is the test clinic's one dry needling therapist (Mondays and Thursdays 13:00-17:00
among other hours); dry needling allows a series of up to 12 visits and follows an evaluation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from booking import scheduling
from booking.clinic import clinic_file
from booking.extensions import db
from booking.models import Appointment, AppointmentSeries, Notification, utc_now
from booking.notifications.dispatcher import DispatchReport, send_due
from booking.rules.availability import (
    BookingRules,
    Interval,
    Slot,
    TherapistCalendar,
    TimeOff,
    WorkingHours,
    why_not_free,
)
from booking.rules.series import (
    nearest_alternatives,
    series_starts,
)
from tests.conftest import CLINIC_FILE, CLINIC_ZONE, local, next_weekday
from tests.servers import running_gunicorn
from tests.test_double_booking import race

MONDAY = next_weekday(0)
THURSDAY = MONDAY + timedelta(days=3)


def evaluated(number: int = 0) -> dict:
    """A patient with an evaluation on record: with Jamie Lee at 09:00 on the number-th Monday
    to Thursday before today."""
    name, email = f"Robin Patient{number}", f"robin{number}@example.com"
    day = utc_now().astimezone(CLINIC_ZONE).date()
    for _ in range(number + 1):
        day -= timedelta(days=1)
        while day.weekday() > 3:
            day -= timedelta(days=1)
    start = local(day, 9)
    scheduling.book_appointment(
        scheduling.bookable_service("pt-evaluation"),
        start,
        scheduling.PatientDetails(name=name, email=email),
        therapist_slug="jamie-lee",
        booked_by="staff:desk@clinic.example",
        override=scheduling.StaffOverride("desk@clinic.example", "evaluated on paper"),
        now=start - timedelta(days=1),
    )
    db.session.commit()
    return {"name": name, "email": email}


def a_series(patient: dict, **overrides) -> dict:
    body = {
        "service": "dry-needling",
        "start": local(MONDAY, 14).isoformat(),
        "therapist": "alex-rivera",
        "patient": patient,
        "repeat": {"weekdays": ["mon", "thu"], "count": 12},
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def appointment_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Appointment))


def mondays_and_thursdays(count: int, first: datetime) -> list[datetime]:
    return series_starts(first, [0, 3], count, CLINIC_ZONE)


def events_of(mail) -> tuple[str, list]:
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    calendar = Calendar.from_ical(attachment.get_content())
    return str(calendar["METHOD"]), list(calendar.walk("VEVENT"))


# --- the pattern, pure ----------------------------------------------------------------------


def test_a_monday_and_thursday_pattern_keeps_two_pm_across_the_change_to_summer_time():
    # 2027-03-14: clocks in Detroit go from -05:00 to -04:00.
    first = datetime(2027, 2, 22, 14, tzinfo=CLINIC_ZONE)
    starts = series_starts(first, [0, 3], 12, CLINIC_ZONE)
    local_starts = [start.astimezone(CLINIC_ZONE) for start in starts]
    assert [start.date() for start in local_starts] == [
        date(2027, 2, 22), date(2027, 2, 25), date(2027, 3, 1), date(2027, 3, 4),
        date(2027, 3, 8), date(2027, 3, 11), date(2027, 3, 15), date(2027, 3, 18),
        date(2027, 3, 22), date(2027, 3, 25), date(2027, 3, 29), date(2027, 4, 1),
    ]
    assert {start.strftime("%H:%M") for start in local_starts} == {"14:00"}
    assert [start.astimezone(UTC).hour for start in starts] == [19] * 6 + [18] * 6


def test_the_first_visit_counts_even_on_a_weekday_not_listed():
    first = datetime(2027, 1, 5, 9, tzinfo=CLINIC_ZONE)  # a Tuesday
    starts = series_starts(first, [3], 3, CLINIC_ZONE)
    assert [start.astimezone(CLINIC_ZONE).date() for start in starts] == [
        date(2027, 1, 5), date(2027, 1, 7), date(2027, 1, 14)
    ]


def _a_therapists_calendar() -> tuple[TherapistCalendar, BookingRules]:
    hours = [WorkingHours(0, time(8), time(12)), WorkingHours(0, time(13), time(17)),
             WorkingHours(6, time(1), time(4))]  # Sundays 01:00-04:00: the clocks change
    day = date(2026, 11, 2)  # a Monday; the clocks went back on Sunday 1 November
    later = day + timedelta(weeks=1)
    busy = [Interval(local(day, 9), local(day, 10)),
            Interval(local(day, 9, 30), local(day, 10, 15)),
            Interval(local(later, 14), local(later, 15))]
    away = date(2026, 11, 16)  # time off is wall clock, as in the clinic file
    time_off = [TimeOff(datetime.combine(away, time(11)), datetime.combine(away, time(15)))]
    rules = BookingRules(duration=timedelta(minutes=45), buffer_after=timedelta(minutes=15),
                         min_notice=timedelta(hours=24), max_advance=timedelta(days=20),
                         slot_step_minutes=15)
    return TherapistCalendar("alex", hours, time_off, busy), rules


def test_why_a_start_is_not_free():
    calendar, rules = _a_therapists_calendar()
    now = datetime(2026, 10, 31, 9, 7, tzinfo=CLINIC_ZONE)
    monday = date(2026, 11, 2)

    def why(start):
        return why_not_free(calendar, rules, CLINIC_ZONE, start, now)

    assert why(local(monday, 8)) is None
    assert why(local(monday, 8, 15)) == "taken"  # its buffer would run into 09:00
    assert why(local(monday, 8, 5)) == "off_grid"
    assert why(local(monday, 11, 30)) == "outside_hours"  # would end after 12:00
    assert why(local(date(2026, 11, 16), 10, 30)) == "time_off"
    assert why(local(date(2026, 11, 16), 10, 15)) is None  # ends as the time off begins
    assert why(local(date(2026, 10, 31), 10)) == "too_soon"
    assert why(local(date(2026, 11, 30), 8)) == "too_far"


def test_alternatives_are_the_nearest_free_times_that_miss_the_other_visits():
    wanted = datetime(2027, 1, 11, 19, tzinfo=UTC)
    free = [
        Slot(wanted - timedelta(hours=1), wanted - timedelta(minutes=15), "alex"),
        Slot(wanted + timedelta(minutes=30), wanted + timedelta(minutes=75), "jamie"),
        Slot(wanted + timedelta(minutes=30), wanted + timedelta(minutes=75), "alex"),
        Slot(wanted + timedelta(days=1), wanted + timedelta(days=1, minutes=45), "alex"),
        Slot(wanted + timedelta(days=1, hours=2), wanted + timedelta(days=1, hours=3), "alex"),
    ]
    # The series has another visit with alex the next day at the same time.
    other_visit = (wanted + timedelta(days=1), wanted + timedelta(days=1, hours=1), "alex")
    chosen = nearest_alternatives(wanted, free, "alex", avoid=[other_visit])
    assert chosen == [free[2], free[1], free[0]]  # alex first at the same distance
    assert nearest_alternatives(wanted, free, "alex", avoid=[other_visit], limit=5) == [
        free[2], free[1], free[0], free[4]
    ]
    # Another therapist free at the very time asked for is the nearest of all.
    jamie_then = Slot(wanted, wanted + timedelta(minutes=45), "jamie")
    assert nearest_alternatives(wanted, [*free, jamie_then], "alex", avoid=[other_visit]) == [
        jamie_then, free[2], free[1]
    ]


# --- booking --------------------------------------------------------------------------------

def _next_change_of_clocks() -> date:
    day = utc_now().astimezone(CLINIC_ZONE).date() + timedelta(days=30)
    offset = local(day, 12).utcoffset()
    while local(day, 12).utcoffset() == offset:
        day += timedelta(days=1)
    return day


@pytest.mark.usefixtures("clinic")
def test_twelve_visits_across_a_change_of_clocks_all_start_at_two_pm(app):
    change = _next_change_of_clocks()
    first_day = change - timedelta(days=21)
    first_day -= timedelta(days=first_day.weekday())  # the Monday three weeks before
    now = local(first_day - timedelta(days=7), 9)
    patient = evaluated(0)
    booked = scheduling.book_series(
        scheduling.bookable_service("dry-needling"),
        local(first_day, 14),
        [0, 3],
        12,
        scheduling.PatientDetails(**patient),
        therapist_slug="alex-rivera",
        now=now,
    )
    db.session.commit()
    visits = scheduling.series_visits(booked.series)
    assert len(visits) == 12
    walls = [visit.start_at.astimezone(CLINIC_ZONE) for visit in visits]
    assert {wall.strftime("%a %H:%M") for wall in walls} == {"Mon 14:00", "Thu 14:00"}
    assert len({wall.utcoffset() for wall in walls}) == 2  # both sides of the change
    assert walls[0].date() == first_day and walls[-1].date() > change
    assert len({visit.calendar_uid for visit in visits}) == 12


@pytest.mark.usefixtures("clinic")
def test_visit_nine_taken_books_nothing_and_names_it_with_alternatives(client):
    patient = evaluated(1)
    starts = mondays_and_thursdays(12, local(MONDAY, 14))
    ninth = starts[8].astimezone(CLINIC_ZONE)
    # Someone else's evaluation with Alex at that time: 14:00-15:00, then 15 minutes' buffer.
    someone_else_with(client, "alex-rivera", ninth)
    before = appointment_count()

    preview = client.post("/api/v1/appointments/series", json=a_series(patient, preview=True))
    assert preview.status_code == 200
    visits = preview.json["visits"]
    assert [visit["start"] for visit in visits] == [
        start.astimezone(CLINIC_ZONE).isoformat() for start in starts
    ]
    assert [visit["free"] for visit in visits] == [True] * 8 + [False] + [True] * 3
    assert visits[8]["reason"] == "taken"
    assert "reason" not in visits[0] and visits[0]["alternatives"] == []
    day = ninth.date()
    # Nearest first: 13:00 ends as the evaluation starts; 15:15 is when its buffer ends.
    assert visits[8]["alternatives"] == [
        {"start": local(day, hour, minute).isoformat(),
         "end": (local(day, hour, minute) + timedelta(minutes=45)).isoformat(),
         "therapist": "alex-rivera"}
        for hour, minute in ((13, 0), (15, 15), (15, 30))
    ]
    assert appointment_count() == before

    refused = client.post("/api/v1/appointments/series", json=a_series(patient))
    assert refused.status_code == 409
    error = refused.json["error"]
    assert error["code"] == "slot_unavailable"
    assert "visit 9 (taken)" in error["message"]
    # The preview and the booking agree, visit for visit.
    assert error["conflicts"] == [
        {"start": visit["start"], "reason": visit["reason"], "alternatives": visit["alternatives"]}
        for visit in visits
        if not visit["free"]
    ]
    assert appointment_count() == before
    assert db.session.scalar(select(func.count()).select_from(AppointmentSeries)) == 0


@pytest.mark.usefixtures("clinic")
def test_a_series_with_no_therapist_named_gets_one_free_for_every_visit(client):
    patient = evaluated(2)
    body = a_series(patient, repeat={"weekdays": ["mon", "thu"], "count": 4})
    del body["therapist"]
    answer = client.post("/api/v1/appointments/series", json=body)
    assert answer.status_code == 201
    assert {visit["therapist"] for visit in answer.json["appointments"]} == {"alex-rivera"}
    assert [visit["start"] for visit in answer.json["appointments"]] == [
        start.astimezone(CLINIC_ZONE).isoformat()
        for start in mondays_and_thursdays(4, local(MONDAY, 14))
    ]


def jamie_does_dry_needling_too() -> None:
    text = CLINIC_FILE.read_text(encoding="utf-8").replace(
        'services = ["schedule-a-call", "pt-evaluation"]',
        'services = ["schedule-a-call", "pt-evaluation", "dry-needling"]',
    )
    clinic_file.apply_clinic(clinic_file.parse_clinic_file(text, "clinic.toml"))
    db.session.commit()


def someone_else_with(client, therapist: str, start: datetime) -> None:
    taken = client.post("/api/v1/appointments", json={
        "service": "pt-evaluation", "start": start.isoformat(), "therapist": therapist,
        "patient": {"name": "Sam Other", "email": "sam@example.com"},
    })
    assert taken.status_code == 201


@pytest.mark.usefixtures("clinic")
def test_other_therapists_are_offered_only_when_the_request_named_none(client):
    jamie_does_dry_needling_too()
    patient = evaluated(12)
    second, third = mondays_and_thursdays(4, local(MONDAY, 14))[1:3]
    someone_else_with(client, "alex-rivera", second.astimezone(CLINIC_ZONE))
    four = {"weekdays": ["mon", "thu"], "count": 4}
    anyone = a_series(patient, repeat=four, preview=True)
    del anyone["therapist"]

    # Alex is taken once; Jamie is free for all four visits, so Jamie gets the series.
    visits = client.post("/api/v1/appointments/series", json=anyone).json["visits"]
    assert [(visit["therapist"], visit["free"]) for visit in visits] == [("jamie-lee", True)] * 4

    # Named, Alex is the only one offered.
    named = client.post("/api/v1/appointments/series",
                        json=a_series(patient, repeat=four, preview=True)).json["visits"]
    assert [visit["free"] for visit in named] == [True, False, True, True]
    assert {slot["therapist"] for slot in named[1]["alternatives"]} == {"alex-rivera"}

    # Neither is free for all four: the first in the clinic's order with the fewest taken is
    # Alex, and Jamie at the very time asked for is the nearest alternative.
    someone_else_with(client, "jamie-lee", third.astimezone(CLINIC_ZONE))
    visits = client.post("/api/v1/appointments/series", json=anyone).json["visits"]
    assert [(visit["therapist"], visit["free"]) for visit in visits] == [
        ("alex-rivera", True), ("alex-rivera", False), ("alex-rivera", True),
        ("alex-rivera", True),
    ]
    assert visits[1]["alternatives"][0] == {
        "start": second.astimezone(CLINIC_ZONE).isoformat(),
        "end": (second + timedelta(minutes=45)).astimezone(CLINIC_ZONE).isoformat(),
        "therapist": "jamie-lee",
    }
    booked = client.post("/api/v1/appointments/series", json={**anyone, "preview": False})
    assert booked.status_code == 409
    assert [conflict["start"] for conflict in booked.json["error"]["conflicts"]] == [
        second.astimezone(CLINIC_ZONE).isoformat()
    ]


@pytest.mark.usefixtures("clinic")
def test_weekdays_default_to_the_first_visits_weekday(client):
    patient = evaluated(3)
    answer = client.post("/api/v1/appointments/series", json=a_series(
        patient, start=local(THURSDAY, 13).isoformat(), repeat={"count": 3}))
    assert answer.status_code == 201
    assert [visit["start"] for visit in answer.json["appointments"]] == [
        local(THURSDAY + timedelta(weeks=week), 13).isoformat() for week in range(3)
    ]


@pytest.mark.usefixtures("clinic")
def test_the_evaluation_rule_is_checked_against_the_first_visit(client):
    newcomer = {"name": "New Person", "email": "new@example.com"}
    for preview in (True, False):
        answer = client.post("/api/v1/appointments/series",
                             json=a_series(newcomer, preview=preview))
        assert answer.status_code == 422
        assert answer.json["error"]["code"] == "evaluation_required"
    assert appointment_count() == 0


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize(
    ("change", "code", "field", "message"),
    [
        ({"repeat": {"weekdays": ["mon"], "count": 1}}, "validation_error", "repeat.count",
         "greater than or equal to 2"),
        ({"repeat": {"weekdays": ["mon"], "count": 13}}, "validation_error", "repeat.count",
         "at most 12 visits"),
        ({"repeat": {"weekdays": ["someday"], "count": 3}}, "validation_error",
         "repeat.weekdays.0", "'mon'"),
        ({"repeat": {"count": 3, "every": 2}}, "validation_error", "repeat.every",
         "not a known field"),
        ({"service": "pt-evaluation"}, "series_not_offered", "service",
         "not booked as a series"),
        ({"start": "2030-01-07T14:00:00"}, "validation_error", "start", "UTC offset"),
        ({"preview": "perhaps"}, "validation_error", "preview", "boolean"),
    ],
)
def test_a_series_asked_for_wrongly_is_refused_naming_the_field(
    client, change, code, field, message
):
    patient = evaluated(4)
    before = appointment_count()
    answer = client.post("/api/v1/appointments/series", json=a_series(patient, **change))
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == code
    assert answer.json["error"]["field"] == field
    assert message in answer.json["error"]["message"]
    assert appointment_count() == before


# --- the manage token, cancelling and moving ---------------------------------------------------


@pytest.mark.usefixtures("smtp_settings", "clinic")
def test_one_confirmation_holds_every_visit_each_with_its_own_uid(client, smtp_inbox):
    patient = evaluated(5)
    smtp_inbox.take()
    send_due(utc_now())
    smtp_inbox.take()
    answer = client.post("/api/v1/appointments/series", json=a_series(
        patient, repeat={"weekdays": ["mon", "thu"], "count": 6}))
    assert answer.status_code == 201
    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["X-Booking-Notification"] == "confirmation"
    assert mail["To"] == f"{patient['name']} <{patient['email']}>"
    assert mail["Subject"].startswith("Booked: 6 visits, your dry needling session with Alex")
    method, events = events_of(mail)
    assert method == "REQUEST"
    visits = db.session.scalars(
        select(Appointment).where(Appointment.series_id == answer.json["series_id"])
        .order_by(Appointment.start_at)
    ).all()
    assert [str(event["UID"]) for event in events] == [visit.calendar_uid for visit in visits]
    assert [event.decoded("DTSTART") for event in events] == [visit.start_at for visit in visits]
    text = mail.get_body(("plain",)).get_content()
    visit_lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(visit_lines) == 6
    assert all(line.endswith("with Alex Rivera, PT, DPT") for line in visit_lines)
    # Each visit keeps its own reminders: 48 hours and 2 hours before.
    reminders = db.session.scalar(
        select(func.count()).select_from(Notification).where(
            Notification.kind == "reminder", Notification.status == "pending"))
    assert reminders == 12


@pytest.mark.usefixtures("smtp_settings", "clinic")
def test_cancelling_this_and_the_following_drops_their_reminders_and_sends_one_cancellation(
    client, smtp_inbox
):
    patient = evaluated(6)
    booked = client.post("/api/v1/appointments/series", json=a_series(
        patient, repeat={"weekdays": ["mon", "thu"], "count": 6})).json
    send_due(utc_now())
    smtp_inbox.take()
    fourth = booked["appointments"][3]

    answer = client.post(f"/api/v1/appointments/{fourth['id']}/cancel",
                         json={"scope": "following"}, headers=bearer(booked["manage_token"]))
    assert answer.status_code == 200
    assert answer.json["status"] == "cancelled"
    listed = client.get(f"/api/v1/appointments/series/{booked['series_id']}",
                        headers=bearer(booked["manage_token"]))
    assert [visit["status"] for visit in listed.json["appointments"]] == (
        ["confirmed"] * 3 + ["cancelled"] * 3
    )
    ids = [visit["id"] for visit in booked["appointments"]]
    pending = db.session.execute(
        select(Notification.appointment_id, func.count())
        .where(Notification.kind == "reminder", Notification.status == "pending")
        .group_by(Notification.appointment_id)
    ).all()
    assert dict(pending) == {ids[0]: 2, ids[1]: 2, ids[2]: 2}

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["X-Booking-Notification"] == "cancellation"
    method, events = events_of(mail)
    assert method == "CANCEL"
    cancelled = db.session.scalars(
        select(Appointment).where(Appointment.id.in_(ids[3:])).order_by(Appointment.start_at)
    ).all()
    assert [(str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) for event in events] == [
        (visit.calendar_uid, 1, "CANCELLED") for visit in cancelled
    ]


@pytest.mark.usefixtures("smtp_settings", "clinic")
def test_moving_one_visit_keeps_its_uid_and_raises_its_sequence(client, smtp_inbox):
    patient = evaluated(7)
    booked = client.post("/api/v1/appointments/series", json=a_series(
        patient, repeat={"weekdays": ["mon", "thu"], "count": 4})).json
    send_due(utc_now())
    smtp_inbox.take()
    second = booked["appointments"][1]
    uids_before = dict(db.session.execute(
        select(Appointment.id, Appointment.calendar_uid)
        .where(Appointment.series_id == booked["series_id"])).all())

    moved = client.post(f"/api/v1/appointments/{second['id']}/reschedule",
                        json={"start": local(THURSDAY, 15).isoformat()},
                        headers=bearer(booked["manage_token"]))
    assert moved.status_code == 200
    assert moved.json["id"] == second["id"]
    assert moved.json["start"] == local(THURSDAY, 15).isoformat()
    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["X-Booking-Notification"] == "reschedule"
    _, [event] = events_of(mail)
    assert str(event["UID"]) == uids_before[second["id"]]
    assert event["SEQUENCE"] == 1
    db.session.expire_all()
    rows = db.session.scalars(
        select(Appointment).where(Appointment.series_id == booked["series_id"])).all()
    assert {row.id: row.calendar_uid for row in rows} == uids_before
    assert {row.id: row.sequence for row in rows} == {
        visit["id"]: int(visit["id"] == second["id"]) for visit in booked["appointments"]
    }


@pytest.mark.usefixtures("clinic")
def test_the_series_token_opens_its_own_visits_and_no_others(client):
    mine = client.post("/api/v1/appointments/series", json=a_series(
        evaluated(8), repeat={"weekdays": ["mon"], "count": 2})).json
    theirs = client.post("/api/v1/appointments/series", json=a_series(
        evaluated(9), start=local(MONDAY, 16).isoformat(),
        repeat={"weekdays": ["mon"], "count": 2})).json
    token = bearer(mine["manage_token"])
    own = client.get(f"/api/v1/appointments/{mine['appointments'][1]['id']}", headers=token)
    assert own.status_code == 200
    assert own.json["start"] == mine["appointments"][1]["start"]
    other = theirs["appointments"][0]["id"]
    assert client.get(f"/api/v1/appointments/{other}", headers=token).status_code == 404
    assert client.post(f"/api/v1/appointments/{other}/cancel", headers=token).status_code == 404
    wrong_series = client.get(f"/api/v1/appointments/series/{theirs['series_id']}",
                              headers=token)
    assert wrong_series.status_code == 404
    assert wrong_series.json["error"]["code"] == "not_found"
    # A visit's own token is no series token.
    visit_token = bearer(own.json["manage_token"])
    assert client.get(f"/api/v1/appointments/series/{mine['series_id']}",
                      headers=visit_token).status_code == 404
    # Without a body, cancel cancels just that visit.
    cancelled = client.post(f"/api/v1/appointments/{mine['appointments'][0]['id']}/cancel",
                            headers=token)
    assert cancelled.status_code == 200
    listed = client.get(f"/api/v1/appointments/series/{mine['series_id']}", headers=token)
    assert [visit["status"] for visit in listed.json["appointments"]] == [
        "cancelled", "confirmed"
    ]


@pytest.mark.usefixtures("clinic")
def test_a_cancel_scope_that_is_not_one_of_the_two_is_refused(client):
    booked = client.post("/api/v1/appointments/series", json=a_series(
        evaluated(10), repeat={"weekdays": ["mon"], "count": 2})).json
    answer = client.post(f"/api/v1/appointments/{booked['appointments'][0]['id']}/cancel",
                         json={"scope": "everything"}, headers=bearer(booked["manage_token"]))
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == "scope"
    listed = client.get(f"/api/v1/appointments/series/{booked['series_id']}",
                        headers=bearer(booked["manage_token"]))
    assert {visit["status"] for visit in listed.json["appointments"]} == {"confirmed"}


@pytest.mark.usefixtures("clinic")
def test_an_idempotent_series_request_repeated_books_once(client):
    body = a_series(evaluated(11), repeat={"weekdays": ["mon", "thu"], "count": 3})
    key = {"Idempotency-Key": "series-click"}
    first = client.post("/api/v1/appointments/series", json=body, headers=key)
    again = client.post("/api/v1/appointments/series", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert db.session.scalar(select(func.count()).select_from(AppointmentSeries)) == 1


def test_the_openapi_document_describes_series(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    booking = paths["/appointments/series"]["post"]
    assert set(booking["responses"]) >= {"200", "201", "409", "422"}
    assert "/appointments/series/{series_id}" in paths
    cancel = paths["/appointments/{appointment_id}/cancel"]["post"]
    assert cancel["requestBody"]["required"] is False


# --- the clinic file ---------------------------------------------------------------------------


@pytest.mark.usefixtures("clinic")
def test_max_series_visits_is_read_and_exported_from_the_clinic_file(app):
    exported = clinic_file.export_clinic()
    section = exported.split('slug = "dry-needling"')[1].split("[[")[0]
    assert "max_series_visits = 12" in section
    assert scheduling.bookable_service("schedule-a-call").max_series_visits == 0


@pytest.mark.parametrize("value", ["-1", "53", '"twelve"'])
def test_a_bad_max_series_visits_is_refused_naming_the_key(tmp_path, value):
    text = CLINIC_FILE.read_text(encoding="utf-8").replace(
        "max_series_visits = 12", f"max_series_visits = {value}"
    )
    path = tmp_path / "clinic.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(clinic_file.ClinicFileError, match="max_series_visits"):
        clinic_file.read_clinic_file(path)


# --- racing ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("clinic")
def test_twenty_desks_racing_overlapping_series_get_whole_series_or_nothing(app, database_url):
    patients = [evaluated(number) for number in range(20)]
    bodies = []
    for number, patient in enumerate(patients):
        # Four visits each, starting in one of three weeks, at 14:00 or 14:30: every series
        # overlaps several others somewhere, and some overlap in one visit only.
        first = local(MONDAY + timedelta(weeks=number % 3), 14, 30 * (number % 2))
        bodies.append(a_series(patient, start=first.isoformat(),
                               repeat={"weekdays": ["mon", "thu"], "count": 4}))
    with running_gunicorn(database_url, workers=4) as base_url:
        answers = race(f"{base_url}/api/v1/appointments/series", bodies)
    won = [answer.json() for answer in answers if answer.status_code == 201]
    lost = [answer.json() for answer in answers if answer.status_code == 409]
    assert len(won) + len(lost) == 20
    assert won, "someone must get a series"
    assert all(len(series["appointments"]) == 4 for series in won)
    assert {error["error"]["code"] for error in lost} <= {"slot_unavailable"}
    # A lost race is planned again, so the refusal names what the winners took.
    assert all(error["error"]["conflicts"] for error in lost)
    db.session.rollback()
    assert scheduling.appointments_overlapping_count() == 0
    visits_per_series = db.session.execute(
        select(Appointment.series_id, func.count())
        .where(Appointment.series_id.is_not(None))
        .group_by(Appointment.series_id)
    ).all()
    assert sorted(series_id for series_id, _ in visits_per_series) == sorted(
        series["series_id"] for series in won
    )
    assert {count for _, count in visits_per_series} == {4}
    assert db.session.scalar(select(func.count()).select_from(AppointmentSeries)) == len(won)
