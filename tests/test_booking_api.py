"""The JSON API as a patient's app or the clinic's website uses it (CONTRACT section 3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from booking.extensions import db
from booking.models import LONGEST_BUSY_SPAN, LONGEST_VISIT, Appointment, AuditEntry, Patient
from tests.conftest import local, next_weekday
from tests.servers import dispose_engines

pytestmark = pytest.mark.usefixtures("clinic")

MONDAY = next_weekday(0)
TUESDAY = next_weekday(1)


def a_booking(**overrides) -> dict:
    body = {
        "service": "pt-evaluation",
        "start": local(MONDAY, 9).isoformat(),
        "patient": {"name": "Pat Example", "email": "pat@example.com", "phone": "+1 586 555 0199"},
    }
    body.update(overrides)
    return body


def bearer(answer: dict) -> dict:
    return {"Authorization": f"Bearer {answer['manage_token']}"}


def appointment_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Appointment))


def test_services_are_listed_in_the_clinic_file_order(client):
    answer = client.get("/api/v1/services")
    assert answer.status_code == 200
    assert [service["slug"] for service in answer.json] == [
        "schedule-a-call",
        "pt-evaluation",
        "dry-needling",
    ]
    dry_needling = answer.json[2]
    assert dry_needling["requires_evaluation"] is True
    assert dry_needling["duration_minutes"] == 45
    assert dry_needling["kind"] == "treatment"


def test_therapists_offering_dry_needling_are_only_those_who_do(client):
    everyone = client.get("/api/v1/therapists").json
    assert [therapist["slug"] for therapist in everyone] == ["alex-rivera", "jamie-lee"]
    assert everyone[1]["services"] == ["schedule-a-call", "pt-evaluation"]
    needling = client.get("/api/v1/therapists?service=dry-needling").json
    assert needling == [
        {
            "slug": "alex-rivera",
            "name": "Alex Rivera, PT, DPT",
            "disciplines": ["PT"],
            "services": ["schedule-a-call", "pt-evaluation", "dry-needling"],
        }
    ]


def test_availability_of_one_therapist_on_a_monday(client):
    answer = client.get(
        f"/api/v1/availability?service=dry-needling&start={MONDAY}&end={MONDAY}"
    )
    assert answer.status_code == 200
    assert answer.json["service"] == "dry-needling"
    assert answer.json["timezone"] == "America/Detroit"
    starts = [slot["start"][11:16] for slot in answer.json["slots"]]
    # 08:00-12:00 and 13:00-17:00, 45-minute visits on a 15-minute grid.
    morning = ["08:00", "08:15", "08:30", "08:45", "09:00", "09:15", "09:30", "09:45",
               "10:00", "10:15", "10:30", "10:45", "11:00", "11:15"]
    afternoon = [time.replace("08", "13").replace("09", "14").replace("10", "15")
                 .replace("11", "16") for time in morning]
    assert starts == morning + afternoon
    first = answer.json["slots"][0]
    assert first == {
        "start": local(MONDAY, 8).isoformat(),
        "end": local(MONDAY, 8, 45).isoformat(),
        "therapist": "alex-rivera",
    }


def test_availability_for_any_therapist_is_sorted_by_start_then_therapist(client):
    slots = client.get(
        f"/api/v1/availability?service=pt-evaluation&start={MONDAY}&end={MONDAY}"
    ).json["slots"]
    keys = [(slot["start"], slot["therapist"]) for slot in slots]
    assert keys == sorted(keys)
    at_nine = [slot["therapist"] for slot in slots if slot["start"] == local(MONDAY, 9).isoformat()]
    assert at_nine == ["alex-rivera", "jamie-lee"]


def test_availability_in_the_patients_zone_is_rendered_there(client):
    answer = client.get(
        f"/api/v1/availability?service=dry-needling&start={MONDAY}&end={MONDAY}"
        "&tz=America/Los_Angeles"
    ).json
    assert answer["timezone"] == "America/Los_Angeles"
    # 08:00 in Detroit is 05:00 in Los Angeles; the Pacific day ends at 03:00 Detroit time on
    # Tuesday, so Tuesday's slots are not in it.
    assert answer["slots"][0]["start"] == f"{MONDAY}T05:00:00-08:00"
    assert answer["slots"][-1]["start"] == f"{MONDAY}T13:15:00-08:00"


def test_the_same_times_asked_in_turn_from_several_zones_read_in_each_zone(client):
    """Each start's local texts are kept for later answers, per zone and visit length: asking
    from more zones, for services of other lengths, than are kept, and again, every answer is
    in its own zone and every slot lasts its own service's visit."""
    zones = ["America/Los_Angeles", "Asia/Kolkata", "Pacific/Kiritimati", "Europe/Berlin",
             "America/St_Johns", "America/Detroit", "Asia/Kathmandu", "Australia/Lord_Howe",
             "America/Sao_Paulo", "Africa/Nairobi", "Pacific/Chatham", "Asia/Tokyo",
             "Europe/London", "America/Anchorage", "Asia/Tehran", "Pacific/Honolulu",
             "Atlantic/Azores", "Asia/Kabul"]
    lengths = {"dry-needling": 45, "pt-evaluation": 60, "schedule-a-call": 15}
    first = {}
    for zone in [*zones, *reversed(zones)]:
        for service, minutes in lengths.items():
            path = f"/api/v1/availability?service={service}&start={MONDAY}&end={TUESDAY}"
            answer = client.get(f"{path}&tz={zone}").json
            assert answer["timezone"] == zone
            instants = [
                (datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"]))
                for slot in answer["slots"]
            ]
            assert instants, (zone, service)
            assert all(
                text == instant.astimezone(ZoneInfo(zone)).isoformat()
                for slot, pair in zip(answer["slots"], instants, strict=True)
                for text, instant in zip((slot["start"], slot["end"]), pair, strict=True)
            ), zone
            assert {end - start for start, end in instants} == {timedelta(minutes=minutes)}
            # The same answer whenever asked.
            assert first.setdefault((zone, service), answer["slots"]) == answer["slots"]
    path = f"/api/v1/availability?service=dry-needling&start={MONDAY}&end={TUESDAY}"
    kolkata = client.get(f"{path}&tz=Asia/Kolkata").json["slots"][0]["start"]
    # Monday 08:00 in Detroit, the first visit of Kolkata's Monday (it ends 13:30 Detroit).
    assert kolkata == local(MONDAY, 8).astimezone(ZoneInfo("Asia/Kolkata")).isoformat()
    assert kolkata.endswith("+05:30")


def test_a_booked_visit_and_its_buffer_leave_the_availability(client, book):
    book("pt-evaluation", local(MONDAY, 9), "alex-rivera")
    starts = [
        slot["start"][11:16]
        for slot in client.get(
            f"/api/v1/availability?service=dry-needling&start={MONDAY}&end={MONDAY}"
        ).json["slots"]
    ]
    # The evaluation holds 09:00-10:15 (60 minutes and a 15-minute buffer); a 45-minute
    # needling visit and its own buffer must end by 09:00, so the last before it is 08:00.
    assert starts[:3] == ["08:00", "10:15", "10:30"]


def test_the_longest_visit_and_buffer_allowed_still_block_the_day_after_next(client, book):
    # The busy times of a window are read from visits started at most LONGEST_BUSY_SPAN
    # before it (so the index skips the past); a visit that long must still be found.
    visit = book("pt-evaluation", local(MONDAY, 11), "alex-rivera")
    visit.end_at = visit.start_at + LONGEST_VISIT
    visit.busy_until = visit.start_at + LONGEST_BUSY_SPAN  # Wednesday 11:00
    db.session.commit()
    wednesday = MONDAY + timedelta(days=2)
    starts = [
        slot["start"][11:16]
        for slot in client.get(
            f"/api/v1/availability?service=schedule-a-call&therapist=alex-rivera"
            f"&start={wednesday}&end={wednesday}"
        ).json["slots"]
    ]
    # Alex works 10:00-18:00 on Wednesdays.
    assert starts[:2] == ["11:00", "11:15"]


def test_booking_an_evaluation_returns_the_confirmed_visit(client):
    answer = client.post("/api/v1/appointments", json=a_booking(therapist="jamie-lee"))
    assert answer.status_code == 201
    body = answer.json
    assert body["status"] == "confirmed"
    assert body["service"] == "pt-evaluation"
    assert body["therapist"] == "jamie-lee"
    assert body["start"] == local(MONDAY, 9).isoformat()
    assert body["end"] == local(MONDAY, 10).isoformat()
    assert body["manage_token"]
    stored = db.session.get(Appointment, body["id"])
    assert stored.patient.email == "pat@example.com"
    assert stored.patient.phone == "+1 586 555 0199"
    assert stored.sequence == 0
    audit = db.session.scalars(select(AuditEntry)).all()
    assert [(entry.action, entry.actor, entry.appointment_id) for entry in audit] == [
        ("booked", "api", body["id"])
    ]


def test_booking_with_no_therapist_chooses_one_who_is_free(client, book):
    book("pt-evaluation", local(MONDAY, 9), "alex-rivera")
    answer = client.post("/api/v1/appointments", json=a_booking())
    assert answer.status_code == 201
    assert answer.json["therapist"] == "jamie-lee"
    taken = client.post("/api/v1/appointments", json=a_booking())
    assert taken.status_code == 409
    assert taken.json["error"]["code"] == "slot_unavailable"


@pytest.mark.parametrize(
    "start, why, reason, says",
    [
        (lambda: local(MONDAY, 12), "lunch break", "outside_hours",
         "the visit would not fit in the therapist's working hours"),
        (lambda: local(MONDAY, 16, 30), "visit would run past closing", "outside_hours",
         "the visit would not fit in the therapist's working hours"),
        (lambda: local(MONDAY, 9, 10), "off the 15-minute grid", "off_grid",
         "visits start every 15 minutes from the hour, and that time is between two of them"),
        (lambda: local(next_weekday(6), 10), "Sunday, no hours", "outside_hours",
         "the visit would not fit in the therapist's working hours"),
        (lambda: local(next_weekday(0, at_least_days=0), 9).replace(year=2020), "in the past",
         "too_soon", "it is too soon (Physical therapy evaluation is booked at least 24 hours "
         "ahead)"),
        (lambda: local(next_weekday(0, at_least_days=95), 9), "beyond 90 days", "too_far",
         "it is too far ahead (Physical therapy evaluation is booked at most 90 days ahead)"),
    ],
)
def test_a_time_that_is_not_offered_is_refused(client, start, why, reason, says):
    # An evaluation, so that the rule on evaluations does not answer first.
    answer = client.post(
        "/api/v1/appointments", json=a_booking(therapist="alex-rivera", start=start().isoformat())
    )
    assert answer.status_code == 409, why
    assert answer.json["error"]["code"] == "slot_unavailable"
    assert answer.json["error"]["reason"] == reason, why
    assert answer.json["error"]["message"] == f"that time is not available: {says}"
    assert appointment_count() == 0


def test_a_call_inside_the_two_hour_notice_is_refused(client):
    from datetime import timedelta

    from booking.models import utc_now

    soon = (utc_now() + timedelta(minutes=50)).replace(second=0, microsecond=0)
    answer = client.post(
        "/api/v1/appointments",
        json=a_booking(service="schedule-a-call", start=soon.isoformat()),
    )
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "slot_unavailable"
    assert answer.json["error"]["reason"] == "too_soon"
    assert answer.json["error"]["message"] == (
        "that time is not available: it is too soon (Schedule a call is booked at least "
        "2 hours ahead)")


def test_a_taken_time_is_refused_as_taken(client, book):
    book("pt-evaluation", local(MONDAY, 9), "alex-rivera")
    answer = client.post("/api/v1/appointments", json=a_booking(therapist="alex-rivera"))
    assert answer.status_code == 409
    assert answer.json["error"] == {
        "code": "slot_unavailable", "field": "start", "reason": "taken",
        "message": "that time is not available: it is already booked",
    }


def test_dry_needling_without_an_evaluation_is_refused_and_nothing_is_booked(client):
    answer = client.post(
        "/api/v1/appointments",
        json=a_booking(service="dry-needling", start=local(TUESDAY, 9).isoformat()),
    )
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "evaluation_required"
    assert appointment_count() == 0
    assert db.session.scalar(select(func.count()).select_from(Patient)) == 0


def test_dry_needling_after_an_evaluation_is_booked_whatever_the_case_and_spacing(client, book):
    book("pt-evaluation", local(MONDAY, 9), "alex-rivera", name="Pat Example",
         email="pat@example.com")
    answer = client.post(
        "/api/v1/appointments",
        json=a_booking(
            service="dry-needling",
            start=local(TUESDAY, 9).isoformat(),
            patient={"name": "  pat   EXAMPLE ", "email": "PAT@Example.com"},
        ),
    )
    assert answer.status_code == 201
    assert answer.json["therapist"] == "alex-rivera"
    assert db.session.scalar(select(func.count()).select_from(Patient)) == 1


def test_a_siblings_evaluation_does_not_open_dry_needling_for_another_child(client, book):
    book("pt-evaluation", local(MONDAY, 9), "alex-rivera", name="Maya Chen",
         email="lin.chen@example.com", guardian_name="Lin Chen")
    answer = client.post(
        "/api/v1/appointments",
        json=a_booking(
            service="dry-needling",
            start=local(TUESDAY, 9).isoformat(),
            patient={"name": "Leo Chen", "email": "lin.chen@example.com",
                     "guardian_name": "Lin Chen"},
        ),
    )
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "evaluation_required"


def test_an_evaluation_after_the_needling_date_does_not_count(client, book):
    book("pt-evaluation", local(TUESDAY, 9), "alex-rivera")
    answer = client.post(
        "/api/v1/appointments",
        json=a_booking(service="dry-needling", start=local(MONDAY, 14).isoformat()),
    )
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "evaluation_required"


def test_the_same_idempotency_key_and_body_returns_the_first_answer(client):
    first = client.post("/api/v1/appointments", json=a_booking(),
                        headers={"Idempotency-Key": "booking-7f3a"})
    again = client.post("/api/v1/appointments", json=a_booking(),
                        headers={"Idempotency-Key": "booking-7f3a"})
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert appointment_count() == 1
    other_body = client.post(
        "/api/v1/appointments",
        json=a_booking(start=local(MONDAY, 11).isoformat()),
        headers={"Idempotency-Key": "booking-7f3a"},
    )
    assert other_body.status_code == 422
    assert other_body.json["error"] == {
        "code": "idempotency_key_reused",
        "message": "this Idempotency-Key was used with a different request",
        "field": "Idempotency-Key",
    }
    assert appointment_count() == 1


def test_a_refused_booking_leaves_its_idempotency_key_free(client, book):
    book("pt-evaluation", local(MONDAY, 9), "alex-rivera")
    refused = client.post("/api/v1/appointments", json=a_booking(therapist="alex-rivera"),
                          headers={"Idempotency-Key": "k1"})
    assert refused.status_code == 409
    retried = client.post(
        "/api/v1/appointments",
        json=a_booking(therapist="alex-rivera", start=local(MONDAY, 11).isoformat()),
        headers={"Idempotency-Key": "k1"},
    )
    assert retried.status_code == 201


def test_the_manage_token_opens_its_own_appointment_and_no_other(client):
    mine = client.post("/api/v1/appointments", json=a_booking()).json
    theirs = client.post(
        "/api/v1/appointments",
        json=a_booking(start=local(MONDAY, 11).isoformat(),
                       patient={"name": "Someone Else", "email": "else@example.com"}),
    ).json
    seen = client.get(f"/api/v1/appointments/{mine['id']}", headers=bearer(mine))
    assert seen.status_code == 200
    assert seen.json == mine
    for url, headers in [
        (f"/api/v1/appointments/{theirs['id']}", bearer(mine)),
        (f"/api/v1/appointments/{mine['id']}", {}),
        (f"/api/v1/appointments/{mine['id']}", {"Authorization": "Bearer forged.token"}),
        (f"/api/v1/appointments/{mine['id']}", {"Authorization": f"Basic {mine['manage_token']}"}),
        ("/api/v1/appointments/999999", bearer(mine)),
    ]:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 404, url
        assert answer.json["error"]["code"] == "not_found"
    cancel_theirs = client.post(f"/api/v1/appointments/{theirs['id']}/cancel",
                                headers=bearer(mine))
    assert cancel_theirs.status_code == 404
    assert db.session.get(Appointment, theirs["id"]).status == "confirmed"


def test_cancelling_frees_the_slot_for_someone_else(client):
    booked = client.post("/api/v1/appointments", json=a_booking(therapist="alex-rivera")).json
    answer = client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=bearer(booked))
    assert answer.status_code == 200
    assert answer.json["status"] == "cancelled"
    stored = db.session.get(Appointment, booked["id"])
    assert stored.sequence == 1
    again = client.post(
        "/api/v1/appointments",
        json=a_booking(therapist="alex-rivera",
                       patient={"name": "Next Patient", "email": "next@example.com"}),
    )
    assert again.status_code == 201
    twice = client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=bearer(booked))
    assert twice.status_code == 200
    assert db.session.get(Appointment, booked["id"]).sequence == 1


def test_rescheduling_moves_the_same_appointment_and_raises_its_sequence(client, book):
    booked = client.post("/api/v1/appointments", json=a_booking(therapist="alex-rivera")).json
    uid_when_booked = db.session.get(Appointment, booked["id"]).calendar_uid
    db.session.rollback()
    moved = client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"start": local(TUESDAY, 13).isoformat()},
        headers=bearer(booked),
    )
    assert moved.status_code == 200
    assert moved.json["id"] == booked["id"]
    assert moved.json["start"] == local(TUESDAY, 13).isoformat()
    assert moved.json["therapist"] == "alex-rivera"
    stored = db.session.get(Appointment, booked["id"])
    assert (stored.sequence, stored.calendar_uid) == (1, uid_when_booked)
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["booked", "rescheduled"]
    # The old time is free again; the new one is taken.
    book("pt-evaluation", local(MONDAY, 9), "alex-rivera", name="Other", email="o@example.com")
    onto_taken = client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"start": local(MONDAY, 9).isoformat()},
        headers=bearer(booked),
    )
    assert onto_taken.status_code == 409
    assert onto_taken.json["error"]["code"] == "slot_unavailable"
    assert db.session.get(Appointment, booked["id"]).start_at == local(TUESDAY, 13)


def test_rescheduling_a_cancelled_visit_is_refused(client):
    booked = client.post("/api/v1/appointments", json=a_booking()).json
    client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=bearer(booked))
    answer = client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"start": local(TUESDAY, 13).isoformat()},
        headers=bearer(booked),
    )
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "appointment_not_changeable"


def test_a_visit_may_be_moved_a_little_later_into_its_own_old_span(client):
    booked = client.post("/api/v1/appointments", json=a_booking(therapist="alex-rivera")).json
    moved = client.post(
        f"/api/v1/appointments/{booked['id']}/reschedule",
        json={"start": local(MONDAY, 9, 30).isoformat()},
        headers=bearer(booked),
    )
    assert moved.status_code == 200
    assert moved.json["start"] == local(MONDAY, 9, 30).isoformat()


def test_healthz_reports_the_database(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json["database"] == "ok"


def test_a_manage_token_stops_working_a_month_after_the_visit(client):
    from datetime import timedelta

    from booking.patients.manage_links import appointment_for_token

    booked = client.post("/api/v1/appointments", json=a_booking()).json
    visit_end = db.session.get(Appointment, booked["id"]).end_at
    token = booked["manage_token"]
    assert appointment_for_token(token, booked["id"], now=visit_end + timedelta(days=29)).id == (
        booked["id"]
    )
    assert appointment_for_token(token, booked["id"], now=visit_end + timedelta(days=31)) is None
    assert appointment_for_token(token + "x", booked["id"]) is None


def _three_bookings_under_a_limit_of_two(app_settings, *, limits_on: bool) -> list:
    """Three bookings in a row by one client, under RATE_LIMIT_BOOKING of 2 a minute."""
    from booking import create_app

    app = create_app({**app_settings, "RATELIMIT_ENABLED": limits_on,
                      "RATE_LIMIT_BOOKING": "2 per minute"})
    client = app.test_client()
    answers = [
        client.post("/api/v1/appointments",
                    json=a_booking(start=local(MONDAY, 9 + hour).isoformat()))
        for hour in range(3)
    ]
    with app.app_context():
        dispose_engines()
    db.session.rollback()  # end this session's older read snapshot
    return answers


def test_a_client_booking_too_fast_is_told_to_slow_down(app_settings):
    answers = _three_bookings_under_a_limit_of_two(app_settings, limits_on=True)
    assert [answer.status_code for answer in answers] == [201, 201, 429]
    # Each booking counted once, as the answers tell the client.
    assert [(answer.headers["X-RateLimit-Limit"], answer.headers["X-RateLimit-Remaining"])
            for answer in answers[:2]] == [("2", "1"), ("2", "0")]
    assert answers[2].json["error"]["code"] == "rate_limited"
    assert int(answers[2].headers["Retry-After"]) > 0
    assert appointment_count() == 2


def test_with_the_rate_limits_off_no_client_is_slowed_down(app_settings):
    """RATE_LIMITS=off (load tests, a clinic behind a gateway that limits): a client past a
    limit's count is still answered, and no answer tells of a limit."""
    answers = _three_bookings_under_a_limit_of_two(app_settings, limits_on=False)
    assert [answer.status_code for answer in answers] == [201, 201, 201]
    assert not any("X-RateLimit-Limit" in answer.headers for answer in answers)
    assert appointment_count() == 3
