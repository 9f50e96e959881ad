"""Instructions per request: what a request costs the web process, counted, not timed.

The shared development machine's speed wanders by up to 2x within minutes, and it has no
hardware counters, so timings taken minutes apart cannot tell a 5% change from the weather.
This counts the instructions the app's process executes (valgrind's cachegrind, without its
cache simulation) for N1 and then N2 requests of one kind, each run in a fresh process
against the same database, and prints (count(N2) - count(N1)) / (N2 - N1): start-up, imports
and the first requests fall out. PostgreSQL's own work is not in it; gunicorn's is not either
(the app is called as WSGI, in the process, its garbage collector set as wsgi.py sets it for
gunicorn). Two runs of a commit agree within about 1%.

Kinds: healthz, services (one statement: the reference revision), availability (the patient
mix of `bench/load.py` on the demo clinic: varied services, therapists and weeks),
availability-full (the same mix once the clinic is full, as a closed loop of `bench/load.py`
leaves it: its online services booked at most of their free times over eight weeks), booking
(distinct slots on the clinic of `bench/booking.py`), cancel and move (a patient's, through the
visit's manage token, of visits booked beforehand on that clinic; a move to a free time of
another day), mail (per message, not per request: the dispatcher's run, as the scheduler makes
it, sending confirmations, reminders and cancellations, in turn, to a local SMTP sink in this
process: the count is the dispatcher's).

The rate limits are off, as in the other benchmarks, whose clients all come from one address;
`--rate-limits on` counts them as production does (the limits in memory, each raised so that
no request is refused): what they add to each request.

Run: make bench-instructions (needs Debian's valgrind; starts a throwaway PostgreSQL), or with
TEST_POSTGRES_URL set: python bench/instructions.py [--kinds booking availability]
[--rate-limits on]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import booking as booking_bench  # noqa: E402
from bench import load as load_bench  # noqa: E402

KINDS = ("healthz", "services", "availability", "availability-full", "booking", "cancel", "move",
         "mail")
# Requests of each kind in the two runs; a warm-up of WARM_UP requests precedes both.
COUNTS = {"healthz": (100, 400), "services": (100, 400), "availability": (100, 400),
          "availability-full": (100, 400),
          "booking": (50, 250), "cancel": (50, 200), "move": (50, 200), "mail": (100, 400)}
# The kinds that change visits booked for them beforehand (`_visits_to_change`).
CHANGES = ("cancel", "move")
MAIL_KINDS = ("confirmation", "reminder", "cancellation")
WARM_UP = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--rate-limits", choices=("off", "on"), default="off",
                        help="on: the rate limits counted as production counts them (in memory, "
                             "each limit raised so that one address is never refused)")
    parser.add_argument("--child", nargs=5, metavar=("KIND", "URL", "COUNT", "FIRST", "LIMITS"),
                        help=argparse.SUPPRESS)  # one measured run, under valgrind
    options = parser.parse_args()
    if options.child:
        kind, url, count, first, limits = options.child
        run_requests(kind, url, int(count), int(first), rate_limits=limits == "on")
        return
    server_url = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not server_url.startswith("postgres"):
        sys.exit("set TEST_POSTGRES_URL or DATABASE_URL to a PostgreSQL server (or: make bench)")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (Debian: apt-get install valgrind)")
    databases = {"booking": booking_bench.prepare_database(server_url),
                 "demo": load_bench.prepare_database(server_url)}
    if set(CHANGES) & set(options.kinds):
        databases["changes"] = _clinic_of_visits_to_change(server_url)
    if "availability-full" in options.kinds:
        databases["full"] = _full_clinic(server_url)
    print("instructions per request in the app's process (valgrind cachegrind), PostgreSQL, "
          f"rate limits {options.rate_limits}")
    limits = options.rate_limits
    for kind in options.kinds:
        url = databases["booking" if kind == "booking" else
                        "changes" if kind in CHANGES else
                        "full" if kind == "availability-full" else "demo"]
        fewer, more = COUNTS[kind]
        if kind in CHANGES:
            # Each run changes visits of its own: the first run's, then the second's.
            visits = _visits_to_change(url, 2 * WARM_UP + fewer + more)
            try:
                url = f"{url}#{visits}"  # where the child finds them, passed along with it
                per_request = (counted(kind, url, more, WARM_UP + fewer, limits)
                               - counted(kind, url, fewer, 0, limits)) / (more - fewer)
            finally:
                visits.unlink()
        elif kind == "mail":
            _book_visits_to_write_about(url)
            with _mail_sink() as smtp_port:
                url = f"{url}#{smtp_port}"  # the child's mail server, passed along with it
                per_request = (counted(kind, url, more, 0, limits)
                               - counted(kind, url, fewer, 0, limits)) / (more - fewer)
        else:
            # The second run books other slots than the first (its bookings are still there).
            per_request = (counted(kind, url, more, WARM_UP + fewer, limits)
                           - counted(kind, url, fewer, 0, limits)) / (more - fewer)
        print(f"  {kind:<14}{per_request / 1e6:8.2f} M instructions")


def counted(kind: str, url: str, count: int, first: int, rate_limits: str = "off") -> int:
    """Instructions of one fresh process making `count` requests of this kind (a booking
    run takes the free slots from the `first`; a mail run sends `count` messages)."""
    if kind == "mail":
        _make_mail_due(url.partition("#")[0], count)
    finished = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, __file__, "--child", kind, url, str(count), str(first), rate_limits],
        capture_output=True, text=True, check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", finished.stderr)
    if found is None:
        sys.exit(f"valgrind gave no count:\n{finished.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


@contextmanager
def _mail_sink() -> Iterator[int]:
    from aiosmtpd.controller import Controller

    from bench.notifications import Sink
    from tests.servers import free_port

    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        yield smtp.port
    finally:
        smtp.stop()


def _clinic_of_visits_to_change(server_url: str) -> str:
    """A database of its own, with the clinic of `bench/booking.py`: its calls are 15 minutes
    at a 15-minute step, so its free times never overlap one another."""
    from tests.servers import clinic_app, fresh_postgres_database

    url = fresh_postgres_database(server_url, "instructions_changes")
    with clinic_app(url, booking_bench.clinic_file(), secret_key=booking_bench.SECRET):
        pass
    return url


def _visits_to_change(url: str, total: int) -> Path:
    """`total` calls booked in the first half of the next four weeks, each with its manage
    token and a free time of the second half to move it to; written to a file, whose path
    is returned."""
    from booking import create_app, scheduling
    from booking.extensions import db
    from booking.models import utc_now
    from booking.patients.details import PatientDetails
    from booking.patients.manage_links import manage_token_for

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": booking_bench.SECRET})
    with app.app_context():
        service = scheduling.bookable_service("schedule-a-call")
        first_day = (utc_now() + timedelta(days=2)).date()
        slots = scheduling.free_slots(service, first_day, first_day + timedelta(days=27))
        # Booked on days whose free times are not the ones they move to.
        days = sorted({slot.start.date() for slot in slots})
        booked_days, later_days = set(days[:len(days) // 2]), set(days[len(days) // 2:])
        later = [slot for slot in slots if slot.start.date() in later_days]
        visits = []
        for number, slot in enumerate(
            [slot for slot in slots if slot.start.date() in booked_days][:total]
        ):
            appointment = scheduling.book_appointment(
                service, slot.start,
                PatientDetails(name=f"Changing Patient {number}",
                               email=f"changing{number}@example.com", phone="+1 586 555 0100"),
                therapist_slug=slot.therapist,
            )
            db.session.commit()
            visits.append({"id": appointment.id, "token": manage_token_for(appointment),
                           "move_to": later[number].start.isoformat(),
                           "therapist": later[number].therapist})
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    if len(visits) < total:
        sys.exit(f"the clinic had free times for {len(visits)} visits to change, not {total}")
    path = Path(tempfile.mkstemp(prefix="visits-to-change-", suffix=".json")[1])
    path.write_text(json.dumps(visits))
    return path


FULL_CLINIC_VISITS = 4000  # offered, 1,000 a service; some 1,500 fit (evaluations run out first)


def _full_clinic(server_url: str) -> str:
    """A database of its own, with the demo clinic full: each service a patient books online
    booked at its free times of the next eight weeks, taken in a random order, as the closed
    loop's patients take them."""
    from booking import create_app, scheduling
    from booking.clinic.reference import reference_data
    from booking.extensions import db
    from booking.models import utc_now
    from tests.servers import clinic_app, fresh_postgres_database

    url = fresh_postgres_database(server_url, "instructions_full")
    with clinic_app(url, load_bench.CLINIC_FILE.read_text(), secret_key=booking_bench.SECRET):
        pass
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": booking_bench.SECRET})
    chosen = random.Random(3)
    with app.app_context():
        services = [scheduling.bookable_service(service.slug)
                    for service in reference_data().services
                    if service.active and not service.requires_evaluation]
        first_day = (utc_now() + timedelta(days=2)).date()
        for service in services:
            slots = scheduling.free_slots(service, first_day, first_day + timedelta(days=55))
            chosen.shuffle(slots)
            for number, slot in enumerate(slots[:FULL_CLINIC_VISITS // len(services)]):
                _booked_if_free(service, slot, f"Full Patient {number}",
                                f"full{number}@example.com")
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    return url


MAIL_VISITS_PER_SERVICE = 5
MAIL_SERVICES = ("schedule-a-call", "pt-evaluation", "ot-evaluation", "slp-evaluation")


def _book_visits_to_write_about(url: str) -> None:
    """A few visits of each kind the demo clinic books online (a call, the evaluations)."""
    from booking import create_app, scheduling
    from booking.extensions import db
    from booking.models import utc_now

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": booking_bench.SECRET})
    with app.app_context():
        first_day = (utc_now() + timedelta(days=3)).date()
        for slug in MAIL_SERVICES:
            service = scheduling.bookable_service(slug)
            slots = scheduling.free_slots(service, first_day, first_day + timedelta(days=30))
            booked = 0
            for number, slot in enumerate(slots):
                if not _booked_if_free(service, slot, f"Mail Patient {number}",
                                       f"mail{number}@example.com"):
                    continue
                booked += 1
                if booked == MAIL_VISITS_PER_SERVICE:
                    break
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def _booked_if_free(service, slot, name: str, email: str) -> bool:
    """A visit of this service at this free slot for this patient, or False when a visit of
    another service has taken the time since (in an app context)."""
    from booking import scheduling
    from booking.extensions import db
    from booking.patients.details import PatientDetails

    try:
        scheduling.book_appointment(
            service, slot.start,
            PatientDetails(name=name, email=email, phone="+1 586 555 0100"),
            therapist_slug=slot.therapist,
        )
    except scheduling.SlotUnavailable:
        db.session.rollback()
        return False
    db.session.commit()
    return True


def _make_mail_due(url: str, count: int) -> None:
    """Exactly `count` messages due: confirmations, reminders and cancellations in turn, of
    the visits booked for them."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM notifications"))
        visits = connection.scalars(text("SELECT id FROM appointments ORDER BY id")).all()
        connection.execute(text(
            "INSERT INTO notifications (appointment_id, kind, step, due_at, status, attempts,"
            " last_error, message_id, created_at) VALUES (:visit, :kind, 0, now(), 'pending',"
            " 0, '', :message_id, now())"
        ), [{"visit": visits[number % len(visits)], "kind": MAIL_KINDS[number % 3],
             "message_id": f"<instructions-{number}@clinic-booking>"}
            for number in range(count)])
    engine.dispose()


def send_mail(url: str, count: int) -> None:
    """The dispatcher's run, as `flask scheduler run` makes it: an app context of its own."""
    from booking import create_app
    from booking.notifications.dispatcher import send_due

    url, _, smtp_port = url.partition("#")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": booking_bench.SECRET,
                      "SMTP_HOST": "127.0.0.1", "SMTP_PORT": int(smtp_port),
                      "MAIL_DELIVERY": "smtp"})
    with app.app_context():
        report = send_due()
    if report.sent != count:
        sys.exit(f"the dispatcher was to send {count}: {report}")


def run_requests(
    kind: str, url: str, count: int, first: int, *, rate_limits: bool = False
) -> None:
    from booking import create_app
    from booking.web.garbage_collection import collect_less_while_serving

    if kind == "mail":
        send_mail(url, count)
        return
    url, _, visits_path = url.partition("#")

    # Rate limits off, as in the other benchmarks: every request comes from one address. On,
    # they are counted in memory (production's default store), each raised out of reach.
    limits = ({"RATELIMIT_ENABLED": True, **{setting: "1000000 per minute" for setting in (
        "RATE_LIMIT_READ", "RATE_LIMIT_BOOKING", "RATE_LIMIT_MANAGE")}}
        if rate_limits else {"RATELIMIT_ENABLED": False})
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": booking_bench.SECRET,
                      **limits})
    collect_less_while_serving()  # as wsgi.py does for gunicorn's workers

    def call(
        method: str, path: str, body: dict | None = None, token: str | None = None
    ) -> tuple[str, bytes]:
        raw = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path.split("?")[0],
            "QUERY_STRING": path.partition("?")[2], "SERVER_NAME": "localhost",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(raw), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        }
        if body is not None:
            environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(raw)))
        if token is not None:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        status = []
        answer = app(environ, lambda given, _headers, _info=None: status.append(given))
        data = b"".join(answer)
        answer.close()
        return status[0], data

    if kind in CHANGES:
        visits = json.loads(Path(visits_path).read_text())[first:first + WARM_UP + count]
        requests = [visit_change(kind, visit) for visit in visits]
    else:
        asked = "availability" if kind == "availability-full" else kind
        requests = [(*request, None)
                    for request in requests_of_kind(asked, call, WARM_UP + count, first)]
    for method, path, body, token in requests:
        status, data = call(method, path, body, token)
        if not status.startswith(("200", "201")):
            sys.exit(f"{method} {path}: {status} {data[:300]!r}")


def visit_change(kind: str, visit: dict) -> tuple[str, str, dict, str]:
    """The patient's cancel or move of a visit, with its manage token."""
    path = f"/api/v1/appointments/{visit['id']}/"
    if kind == "cancel":
        return "POST", path + "cancel", {}, visit["token"]
    return ("POST", path + "reschedule",
            {"start": visit["move_to"], "therapist": visit["therapist"]}, visit["token"])


def requests_of_kind(
    kind: str, call, total: int, first_slot: int
) -> list[tuple[str, str, dict | None]]:
    """`total` requests of this kind as (method, path, body); `call` asks the app what the
    mix needs (the services, their therapists, the free slots to book from the `first_slot`)."""
    if kind == "healthz":
        return [("GET", "/healthz", None)] * total
    if kind == "services":
        return [("GET", "/api/v1/services", None)] * total
    chosen = random.Random(7)
    if kind == "booking":
        first = date.today() + timedelta(days=2)  # noqa: DTZ011
        _, data = call("GET", "/api/v1/availability?" + urlencode(
            {"service": "schedule-a-call", "start": first, "end": first + timedelta(days=40)}))
        slots = json.loads(data)["slots"]
        return [("POST", "/api/v1/appointments",
                 booking_bench.booking(slot["start"], slot["therapist"], number))
                for number, slot in enumerate(slots[first_slot:first_slot + total], first_slot)]
    _, data = call("GET", "/api/v1/services")
    offers = {}
    for service in json.loads(data):
        _, data = call("GET", f"/api/v1/therapists?service={service['slug']}")
        offers[service["slug"]] = [therapist["slug"] for therapist in json.loads(data)]
    looked_up = []
    for _ in range(total):
        service = chosen.choice(list(offers))
        first = date.today() + timedelta(days=chosen.randint(1, 56))  # noqa: DTZ011
        query = {"service": service, "start": first,
                 "end": first + timedelta(days=chosen.choice((6, 6, 6, 13)))}
        if chosen.random() < 0.5:
            query["therapist"] = chosen.choice(offers[service])
        looked_up.append(("GET", "/api/v1/availability?" + urlencode(query), None))
    return looked_up


if __name__ == "__main__":
    main()
