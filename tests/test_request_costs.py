"""What a request costs the database, and the reference data every process keeps.

Availability reads one statement and a booking writes in at most 6 (3 on PostgreSQL), however
many therapists and days; the clinic's services, therapists, hours and time off are kept by each
process and still right the moment anyone, in any process, changes them.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, event, select, text

from booking import create_app, scheduling
from booking.calendars.feed_tokens import feed_url_for
from booking.clinic import clinic_file
from booking.database import driver_rows
from booking.extensions import db
from booking.models import (
    LONGEST_BUSY_SPAN,
    Appointment,
    Clinic,
    Service,
    Therapist,
    TimeOff,
    WorkingHours,
)
from booking.rules import availability as rules
from booking.scheduling import therapist_hours
from booking.scheduling.therapist_time import _busy_spans
from config import TestConfig, load_config
from tests.conftest import CLINIC_FILE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins
from tests.servers import dispose_engines
from tests.test_forms import clinic_file_with_forms, load


@contextlib.contextmanager
def statements_sent():
    """The SQL statements this app sends to its database while inside, as a list."""
    sent: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany):
        sent.append(statement)

    # A request in a server starts with a session of its own.
    db.session.remove()
    with listening(record):
        yield sent


@contextlib.contextmanager
def listening(listener):
    """`listener` told of every statement of every engine of the app (the reading one too)."""
    engines = list(db.engines.values())
    for engine in engines:
        event.listen(engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", listener)


def reads_of_a_visit(sent: list[str]) -> list[str]:
    """The statements among `sent` that read visits' rows (the ORM's or a plain one)."""
    return [each for each in sent if each.startswith("SELECT appointments.id")]


def availability(client, first_day, last_day, **params):
    answer = client.get(
        "/api/v1/availability",
        query_string={"service": "schedule-a-call", "start": str(first_day),
                      "end": str(last_day), **params},
    )
    assert answer.status_code == 200, answer.json
    return answer.json["slots"]


def booking(start, *, therapist=None, name="Pat Example", email="pat@example.com"):
    body = {"service": "schedule-a-call", "start": start.isoformat(),
            "patient": {"name": name, "email": email, "phone": "+1 586 555 0142"}}
    if therapist:
        body["therapist"] = therapist
    return body


@pytest.fixture
def another_worker(app_settings, clinic):
    """A second app on the same database, as another gunicorn worker or host would be."""
    other = create_app(app_settings)
    with other.app_context():
        yield other
        db.session.remove()
        dispose_engines()


def test_availability_for_every_therapist_over_two_months_reads_one_statement(
    client, clinic
):
    """The busy times, with the reference data's revision in the same statement (SQLite's
    BEGIN counted besides)."""
    first_day = next_weekday(0)
    last_day = first_day + timedelta(days=55)
    availability(client, first_day, last_day)  # this process reads the reference data once

    for params in ({}, {"therapist": "jamie-lee"}, {"tz": "Europe/London"}):
        with statements_sent() as sent:
            slots = availability(client, first_day, last_day, **params)
        assert slots
        reads = [statement for statement in sent if not statement.startswith("BEGIN")]
        assert len(reads) == 1, sent
        assert "reference_revision" in reads[0]


def test_a_booking_with_its_reminders_and_audit_writes_in_six_statements(client, clinic):
    """SQLite's BEGIN IMMEDIATE counted: the busy times (and in the same statement the
    revision of the reference data kept), the patient (and whether they wait on the
    waitlist), the visit, its audit entry, its mail. On PostgreSQL the visit, its entry and
    its mail are one statement: three in all."""
    day = next_weekday(1)
    with statements_sent() as sent:
        answer = client.post("/api/v1/appointments", json=booking(local(day, 10)))
    assert answer.status_code == 201, answer.json
    statements = [statement for statement in sent if not statement.startswith("BEGIN")]
    assert len(statements) == (3 if db.engine.dialect.name == "postgresql" else 5), sent
    assert "reference_revision" in statements[0], sent  # read with the busy times
    assert statements[1].startswith("INSERT INTO patients"), sent

    # The same patient again, now known, with the therapist named: no more statements.
    with statements_sent() as sent:
        answer = client.post(
            "/api/v1/appointments", json=booking(local(day, 14), therapist="jamie-lee")
        )
    assert answer.status_code == 201, answer.json
    assert answer.json["therapist"] == "jamie-lee"
    assert len(sent) <= 6, sent

    # An Idempotency-Key: expired keys forgotten, the key claimed (its row comes back from
    # the INSERT), the answer kept.
    with statements_sent() as sent:
        answer = client.post("/api/v1/appointments", json=booking(local(day, 12)),
                             headers={"Idempotency-Key": "booking-at-noon"})
    assert answer.status_code == 201, answer.json
    assert len(sent) <= 10, sent


def test_a_patients_cancel_and_look_at_a_visit_name_its_service_without_reading_it(
    client, clinic
):
    """The answer names the visit's service from the kept reference data: no statement reads
    the service's row, while the visit is read with its token and changed."""
    booked = client.post("/api/v1/appointments", json=booking(local(next_weekday(1), 10)))
    assert booked.status_code == 201, booked.json
    visit = f"/api/v1/appointments/{booked.json['id']}"
    bearer = {"Authorization": f"Bearer {booked.json['manage_token']}"}

    with statements_sent() as looked_at:
        shown = client.get(visit, headers=bearer)
    with statements_sent() as cancelling:
        cancelled = client.post(f"{visit}/cancel", json={}, headers=bearer)

    assert (shown.status_code, shown.json["service"]) == (200, "schedule-a-call")
    assert (cancelled.status_code, cancelled.json["status"], cancelled.json["service"]) == (
        200, "cancelled", "schedule-a-call")
    assert not [each for each in looked_at + cancelling if "services.slug" in each]
    assert any(each.startswith("UPDATE appointments") for each in cancelling), cancelling


def test_a_patients_move_and_cancel_read_the_visit_once_held_and_not_its_service(
    client, clinic
):
    """In a writing request the manage token's read holds the visit, with its patient and
    therapist: the move or cancel takes that read as its own instead of reading the visit
    again, and the move's mail takes the service's reminders from the kept reference data."""
    day = next_weekday(1)
    visits = []
    for hour in (10, 11):
        booked = client.post("/api/v1/appointments", json=booking(local(day, hour)))
        assert booked.status_code == 201, booked.json
        visits.append((f"/api/v1/appointments/{booked.json['id']}",
                       {"Authorization": f"Bearer {booked.json['manage_token']}"}))

    (moving_visit, moving_bearer), (cancelled_visit, cancelled_bearer) = visits
    with statements_sent() as moving:
        moved = client.post(f"{moving_visit}/reschedule",
                            json={"start": local(day, 14).isoformat()}, headers=moving_bearer)
    with statements_sent() as cancelling:
        cancelled = client.post(f"{cancelled_visit}/cancel", json={},
                                headers=cancelled_bearer)

    assert (moved.status_code, moved.json["start"]) == (200, local(day, 14).isoformat())
    assert (cancelled.status_code, cancelled.json["status"]) == (200, "cancelled")
    for sent in (moving, cancelling):
        reads_of_the_visit = reads_of_a_visit(sent)
        assert len(reads_of_the_visit) == 1, reads_of_the_visit
        if db.engine.dialect.name == "postgresql":
            assert "FOR UPDATE OF appointments" in reads_of_the_visit[0]
        assert not [each for each in sent if each.startswith("SELECT services.id AS")], sent


def test_a_patients_cancel_on_the_manage_page_reads_the_visit_once(client, clinic):
    """On the manage link's pages too, and the language of the page that follows is the
    visit's without reading it again."""
    booked = client.post("/api/v1/appointments", json=booking(local(next_weekday(1), 10)))
    assert booked.status_code == 201, booked.json

    with statements_sent() as cancelling:
        answer = client.post(f"/manage/{booked.json['manage_token']}/cancel")

    assert answer.status_code == 303
    reads_of_the_visit = reads_of_a_visit(cancelling)
    assert len(reads_of_the_visit) == 1, reads_of_the_visit
    db.session.remove()
    assert db.session.get(Appointment, booked.json["id"]).status == "cancelled"


def test_the_desks_cancel_reads_the_visit_once_held(app, client, clinic):
    """The desk's change reads the visit as the manage link does: once, held, with its
    patient. (Which visits a therapist's login reaches when it writes: test_desk_access.)"""
    booked = client.post("/api/v1/appointments", json=booking(local(next_weekday(1), 10)))
    assert booked.status_code == 201, booked.json
    desk = signed_in(app, staff_logins()["front_desk"])

    with statements_sent() as cancelling:
        answer = desk.post(f"/desk/appointments/{booked.json['id']}/cancel",
                           data={"reason": "Therapist ill"})

    assert answer.status_code == 303
    reads_of_the_visit = reads_of_a_visit(cancelling)
    assert len(reads_of_the_visit) == 1, reads_of_the_visit
    if db.engine.dialect.name == "postgresql":
        assert "FOR UPDATE OF appointments" in reads_of_the_visit[0]
    db.session.remove()
    cancelled = db.session.get(Appointment, booked.json["id"])
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "Therapist ill")


def test_availability_and_the_lists_on_postgresql_send_no_begin_or_rollback(client, clinic):
    """A read needs no transaction around its statements (each sees what was committed when
    it began, as in PostgreSQL's READ COMMITTED): two round trips fewer per request."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite is in-process: its BEGIN costs no round trip")
    day = next_weekday(1)
    paths = ["/healthz", "/api/v1/services", "/api/v1/therapists",
             f"/api/v1/availability?service=schedule-a-call&start={day}&end={day}"]
    for path in paths:
        client.get(path)
    seen, in_transaction = [], []

    def note(connection, _cursor, statement, _parameters, _context, _executemany):
        seen.append(statement)
        if not connection.connection.dbapi_connection.autocommit:
            in_transaction.append(statement)

    with listening(note):
        for path in paths:
            db.session.remove()  # a request in a server starts with a session of its own
            assert client.get(path).status_code == 200, path
    assert len(seen) == len(paths)  # each reads once: the revision (with the busy times)
    assert in_transaction == []

    # A booking still runs in one transaction, committed once.
    with statements_sent(), listening(note):
        answer = client.post("/api/v1/appointments", json=booking(local(day, 10)))
    assert answer.status_code == 201, answer.json
    assert len(in_transaction) == 3  # the busy times, the patient, the visit with the rest


def test_a_booking_refused_for_a_taken_slot_leaves_the_statements_prepared(client, clinic):
    """A refused booking rolls its transaction back; the next booking still runs the
    statements PostgreSQL has prepared and planned, not parsed and planned again."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    day = next_weekday(1)
    for hour in range(9, 16):  # psycopg prepares a statement the fifth time it runs
        answer = client.post("/api/v1/appointments", json=booking(
            local(day, hour), therapist="jamie-lee", email=f"pat{hour}@example.com"))
        assert answer.status_code == 201, answer.json
    db.session.remove()

    def prepared() -> list[str]:
        # The requests' pool holds one connection: this is theirs.
        with db.engine.connect() as connection:
            return connection.scalars(text("SELECT statement FROM pg_prepared_statements")).all()

    before = prepared()
    assert any("INSERT INTO patients" in statement for statement in before), before
    answer = client.post("/api/v1/appointments", json=booking(
        local(day, 9), therapist="jamie-lee", email="late@example.com"))
    assert answer.status_code == 409, answer.json
    assert answer.json["error"]["code"] == "slot_unavailable"
    db.session.remove()
    assert sorted(prepared()) == sorted(before)

    answer = client.post("/api/v1/appointments", json=booking(
        local(day, 16), therapist="jamie-lee", email="next@example.com"))
    assert answer.status_code == 201, answer.json
    assert answer.json["start"].startswith(local(day, 16).isoformat()[:16])


def test_the_therapist_list_and_the_service_list_read_only_the_revision(client, clinic):
    client.get("/api/v1/services")
    with statements_sent() as sent:
        services = client.get("/api/v1/services").json
    assert [service["slug"] for service in services] == [
        "schedule-a-call", "pt-evaluation", "dry-needling"
    ]
    assert [statement for statement in sent if not statement.startswith("BEGIN")] == [
        sent[-1]
    ]
    assert "reference_revision" in sent[-1]

    with statements_sent() as sent:
        therapists = client.get("/api/v1/therapists").json
    assert [(therapist["slug"], therapist["services"]) for therapist in therapists] == [
        ("alex-rivera", ["schedule-a-call", "pt-evaluation", "dry-needling"]),
        ("jamie-lee", ["schedule-a-call", "pt-evaluation"]),
    ]
    assert [statement for statement in sent if not statement.startswith("BEGIN")] == [
        sent[-1]
    ]


def jamie_works_monday_afternoons_only(worker) -> None:
    """Front desk, in that worker, sets Jamie's Mondays to 13:00-15:00 and commits."""
    with worker.app_context():
        jamie = db.session.scalars(select(Therapist).where(Therapist.slug == "jamie-lee")).one()
        therapist_hours.set_weekly_hours(
            jamie, {0: [rules.WorkingHours(0, time(13, 0), time(15, 0))]},
            by="staff:desk@clinic.example",
        )
        db.session.commit()


def test_hours_changed_by_another_worker_show_in_the_next_availability_request(
    app, client, another_worker
):
    monday = next_weekday(0)
    before = availability(client, monday, monday, therapist="jamie-lee")
    assert before[0]["start"] == local(monday, 9).isoformat()

    jamie_works_monday_afternoons_only(another_worker)

    after = availability(client, monday, monday, therapist="jamie-lee")
    assert after[0]["start"] == local(monday, 13).isoformat()
    assert after[-1]["start"] == local(monday, 14, 45).isoformat()


def test_a_booking_follows_hours_and_lengths_another_worker_changed_a_moment_before(
    app, client, another_worker
):
    """A booking starts from the process's kept copy of the reference data: the statement
    reading the busy times finds it stale, and the booking is made again with what staff set."""
    monday = next_weekday(0)
    assert availability(client, monday, monday, therapist="jamie-lee")  # the copy is kept

    jamie_works_monday_afternoons_only(another_worker)
    morning = client.post("/api/v1/appointments",
                          json=booking(local(monday, 10), therapist="jamie-lee"))
    assert morning.status_code == 409, morning.json
    assert morning.json["error"]["code"] == "slot_unavailable"
    assert "working hours" in morning.json["error"]["message"]

    with another_worker.app_context():
        text = CLINIC_FILE.read_text().replace("duration_minutes = 15", "duration_minutes = 30", 1)
        clinic_file.apply_clinic(clinic_file.parse_clinic_file(text, "clinic.toml"))
        db.session.commit()
    # The clinic file gives Jamie the morning again, and a call now lasts 30 minutes.
    booked = client.post("/api/v1/appointments",
                         json=booking(local(monday, 10), therapist="jamie-lee"))
    assert booked.status_code == 201, booked.json
    assert booked.json["end"] == local(monday, 10, 30).isoformat()
    with app.app_context():
        assert db.session.scalar(
            select(Service.duration_minutes).where(Service.slug == "schedule-a-call")
        ) == 30


def test_time_off_and_a_new_service_length_from_another_worker_are_seen_at_once(
    app, client, another_worker
):
    monday = next_weekday(0)
    assert len(availability(client, monday, monday, therapist="alex-rivera")) == 32

    with another_worker.app_context():
        alex = db.session.scalars(select(Therapist).where(Therapist.slug == "alex-rivera")).one()
        alex.time_off.append(
            TimeOff(starts_local=local(monday, 8).replace(tzinfo=None),
                    ends_local=local(monday, 12).replace(tzinfo=None), reason="Course")
        )
        db.session.commit()
    afternoon = availability(client, monday, monday, therapist="alex-rivera")
    assert [slot["start"] for slot in afternoon[:1]] == [local(monday, 13).isoformat()]
    assert len(afternoon) == 16

    with another_worker.app_context():
        text = CLINIC_FILE.read_text().replace("duration_minutes = 15", "duration_minutes = 30", 1)
        clinic_file.apply_clinic(clinic_file.parse_clinic_file(text, "clinic.toml"))
        db.session.commit()
    # The clinic file has no time off for Alex: loading it removed the course too.
    longer = availability(client, monday, monday, therapist="alex-rivera")
    assert (longer[0]["start"], longer[0]["end"]) == (
        local(monday, 8).isoformat(), local(monday, 8, 30).isoformat()
    )
    assert len(longer) == 30


def test_a_service_added_by_another_worker_is_offered_by_the_next_availability_request(
    app, client, another_worker
):
    """The process's copy answers at once and is checked in the busy times' statement, or
    after the answer: a copy older than the database is never the answer."""
    monday = next_weekday(0)
    unknown = client.get("/api/v1/availability", query_string={
        "service": "ot-evaluation", "start": str(monday), "end": str(monday)})
    assert unknown.status_code == 422
    assert unknown.json["error"]["code"] == "unknown_service"

    with another_worker.app_context():
        text = CLINIC_FILE.read_text() + (
            '\n[[services]]\nslug = "ot-evaluation"\nname = "Occupational therapy evaluation"'
            '\nkind = "evaluation"\nduration_minutes = 60\nmin_notice_hours = 24'
            '\nmax_advance_days = 60\n'
        )
        clinic_file.apply_clinic(clinic_file.parse_clinic_file(text, "clinic.toml"))
        db.session.commit()

    offered = client.get("/api/v1/availability", query_string={
        "service": "ot-evaluation", "start": str(monday), "end": str(monday)})
    assert offered.status_code == 200, offered.json
    assert offered.json["service"] == "ot-evaluation"
    assert offered.json["slots"] == []  # no therapist offers it yet
    assert "ot-evaluation" in [service["slug"] for service in client.get("/api/v1/services").json]


def test_a_change_rolled_back_elsewhere_is_never_seen(app, client, another_worker):
    monday = next_weekday(0)
    assert availability(client, monday, monday, therapist="jamie-lee")[0]["start"] == (
        local(monday, 9).isoformat()
    )

    with another_worker.app_context():
        hours = db.session.scalars(
            select(WorkingHours).join(Therapist).where(
                Therapist.slug == "jamie-lee", WorkingHours.weekday == 0
            )
        ).one()
        hours.start_time = time(11, 0)
        db.session.flush()
        # While the change is pending, the transaction that made it sees it...
        assert availability(another_worker.test_client(), monday, monday,
                            therapist="jamie-lee")[0]["start"] == local(monday, 11).isoformat()
        db.session.rollback()

    # ...and nobody keeps it once it is rolled back, there or here.
    assert availability(another_worker.test_client(), monday, monday,
                        therapist="jamie-lee")[0]["start"] == local(monday, 9).isoformat()
    assert availability(client, monday, monday, therapist="jamie-lee")[0]["start"] == (
        local(monday, 9).isoformat()
    )
    with another_worker.app_context():
        service = db.session.scalars(
            select(Service).where(Service.slug == "schedule-a-call")
        ).one()
        service.active = False
        db.session.commit()
    answer = client.get("/api/v1/availability", query_string={
        "service": "schedule-a-call", "start": str(monday), "end": str(monday)})
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "unknown_service"


def test_a_pooled_connection_closed_while_idle_is_replaced_before_a_request_uses_it(
    postgres_database_url,
):
    settings = {**load_config(TestConfig), "SQLALCHEMY_DATABASE_URI": postgres_database_url,
                "DATABASE_PING_AFTER_IDLE_SECONDS": 0}
    app = create_app(settings)
    with app.app_context():
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        db.session.remove()  # the connection goes back to the pool
        killer = create_engine(postgres_database_url)
        with killer.begin() as connection:
            ended = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalar()
        killer.dispose()
        assert ended >= 1

        with statements_sent() as sent:
            answer = client.get("/healthz")
        assert answer.status_code == 200, answer.json
        assert answer.json["database"] == "ok"
        assert len(sent) == 1  # the ping is not a statement of the request
        db.session.remove()
        dispose_engines()


def test_a_feed_subscriber_whose_copy_is_current_costs_two_statements(client, clinic, book):
    book(start=local(next_weekday(0), 9))
    alex = db.session.scalars(select(Therapist).where(Therapist.slug == "alex-rivera")).one()
    path = urlsplit(feed_url_for(alex)).path
    etag = client.get(path).headers["ETag"]

    with statements_sent() as sent:
        answer = client.get(path, headers={"If-None-Match": etag})
    assert answer.status_code == 304
    # The revision of the reference data and the feed's version: no clinic, no therapists.
    assert len([statement for statement in sent if not statement.startswith("BEGIN")]) == 2


def test_instants_come_back_in_utc_whatever_the_servers_zone(client, clinic, book):
    """PostgreSQL sessions are opened in UTC, so the thousands of busy times of a month are
    read with nothing to convert; SQLite's text is read as UTC."""
    visit = book("schedule-a-call", local(next_weekday(1), 10))
    if db.engine.dialect.name == "postgresql":
        assert db.session.execute(text("SHOW TimeZone")).scalar() == "UTC"
    db.session.expire_all()
    assert visit.start_at.tzinfo is UTC
    assert visit.start_at == local(next_weekday(1), 10)


def test_the_boards_day_reads_the_same_few_statements_for_three_visits_or_thirty(app, clinic):
    """Each visit on the board says its series place, its forms and the patient's clearance:
    read for the whole day at once, never a query per visit."""
    load(clinic_file_with_forms().replace(
        'aftercare_advice = "dry-needling"\n',
        'aftercare_advice = "dry-needling"\nrequires_clearance = true\n',
    ))
    monday = next_weekday(0, at_least_days=10)
    desk = signed_in(app, staff_logins()["front_desk"])
    path = f"/desk/board/events?start={monday}&end={monday + timedelta(days=1)}"
    override = scheduling.StaffOverride("staff:desk@clinic.example", "seeded")

    def statements_for_the_day() -> tuple[int, list]:
        desk.get(path)  # the reference data, read once per process and revision
        with statements_sent() as sent:
            answer = desk.get(path)
        assert answer.status_code == 200
        return len([statement for statement in sent if not statement.startswith("BEGIN")]), [
            event["extendedProps"] for event in answer.json["events"] if event["id"] != "past"]

    def patient(number: int) -> scheduling.PatientDetails:
        return scheduling.PatientDetails(name=f"Patient {number}",
                                         email=f"p{number}@example.com")

    for number, hour in enumerate([8, 13, 14]):
        scheduling.book_series(scheduling.bookable_service("dry-needling"), local(monday, hour),
                               [0], 2, patient(number), therapist_slug="alex-rivera",
                               override=override)
    db.session.commit()
    few, shown = statements_for_the_day()
    assert [visit.get("series") for visit in shown] == ["visit 1 of 2"] * 3

    for number in range(3, 30):
        start = local(monday, 9) + timedelta(minutes=15 * (number - 3))
        scheduling.book_appointment(scheduling.bookable_service("schedule-a-call"), start,
                                    patient(number), therapist_slug="jamie-lee",
                                    override=override)
    db.session.commit()
    many, shown = statements_for_the_day()
    assert len(shown) == 30
    assert {visit.get("forms") for visit in shown} == {"forms missing", None}
    # The login, the reference data's revision, the day's visits, the forms, the clearances.
    assert few == many == 5


def test_busy_times_read_through_the_driver_are_those_sqlalchemy_reads(client, clinic):
    """On PostgreSQL the busy times are read by psycopg's cursor, past SQLAlchemy's rows
    (database.driver_rows): the same spans as SQLAlchemy's own reading of that statement,
    with a cancelled visit left out and a visit being moved ignored, in aware UTC."""
    day = next_weekday(2)
    booked = []
    for hour in (9, 11, 14):
        answer = client.post("/api/v1/appointments",
                             json=booking(local(day, hour), therapist="jamie-lee"))
        assert answer.status_code == 201, answer.json
        booked.append(answer.json)
    cancelled = client.post(f"/api/v1/appointments/{booked[1]['id']}/cancel",
                            headers={"Authorization": f"Bearer {booked[1]['manage_token']}"})
    assert cancelled.status_code == 200, cancelled.json

    db.session.remove()
    jamie = db.session.scalars(select(Therapist).filter_by(slug="jamie-lee")).one()
    window_start, window_end = local(day, 0), local(day, 23)
    connection = db.session.connection()
    for ignored in ((), (booked[2]["id"],)):
        parameters = {"therapist_ids": [jamie.id], "window_start": window_start,
                      "window_end": window_end, "earliest_start": window_start - LONGEST_BUSY_SPAN}
        if ignored:
            parameters["ignored_appointments"] = list(ignored)
        statement = _busy_spans(ignoring=bool(ignored), with_revision=True,
                                dialect_name=connection.dialect.name)
        read = driver_rows(connection, statement, parameters)
        assert sorted(read, key=str) == sorted(
            (tuple(row) for row in connection.execute(statement, parameters)),
            key=str,
        )
        spans = sorted(row[1:] for row in read if row[1] is not None)
        expected = [visit for visit in booked if visit["id"] not in (booked[1]["id"], *ignored)]
        assert [start for start, _ in spans] == [
            datetime.fromisoformat(visit["start"]) for visit in expected
        ]
        assert all(start.tzinfo is UTC and end.tzinfo is UTC for start, end in spans)
        assert [row[0] for row in read if row[1] is None] == [
            db.session.scalar(select(Clinic.reference_revision))
        ]
