"""The reminder scheduler: real `flask scheduler run` processes sharing one outbox, and the
in-process scheduler that `make run` starts once.

The process tests give each scheduler its own SMTP server, both delivering into one inbox that
counts Message-IDs, so the test knows which process sent what, and can stall one of them in
the middle of a batch to kill it there.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete, func, insert, select

from booking import create_app
from booking.extensions import db
from booking.models import DispatcherHeartbeat, Notification, utc_now
from booking.notifications.periodic_work import (
    build_scheduler,
    start_in_process,
    stop_in_process,
    wanted_in_this_process,
)
from config import TestConfig, load_config
from tests.conftest import local, next_weekday
from tests.servers import PROJECT_ROOT, dispose_engines, free_port

MONDAY = next_weekday(0)
MESSAGES = 1000
BATCH = 20


class Inbox:
    """Every Message-ID that arrived, how often, and through which server."""

    def __init__(self):
        self.arrived: Counter[str] = Counter()
        self.by_server: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, message_id: str, server: str) -> None:
        with self._lock:
            self.arrived[message_id] += 1
            self.by_server[server] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.arrived.values())


class MailServer:
    """An SMTP server delivering into `inbox`; told to, it holds its Nth message unanswered,
    or its first one until `hold_first_until()` is true."""

    def __init__(
        self, inbox: Inbox, name: str, *, stall_at: int | None = None,
        hold_first_until: Callable[[], bool] | None = None,
    ):
        self.inbox, self.name, self.stall_at = inbox, name, stall_at
        self.hold_first_until = hold_first_until
        self.received = 0
        self.stalled = threading.Event()  # set while the stalled message waits
        self.release = threading.Event()
        self.stalled_message_id = ""
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server, session, envelope):
        message_id = BytesHeaderParser(policy=policy.default).parsebytes(envelope.content)[
            "Message-ID"
        ]
        self.received += 1
        self.inbox.add(message_id, self.name)
        if self.received == self.stall_at:
            # The message is in; the answer is what never reaches the sender (the worst case).
            self.stalled_message_id = message_id
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        if self.received == 1 and self.hold_first_until is not None:
            while not (self.hold_first_until() or self.release.is_set()):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.001)  # a mail server takes a moment: batches overlap
        return "250 OK"


@pytest.fixture
def mail_servers():
    inbox = Inbox()
    started: list[MailServer] = []

    def start(name: str, **options) -> MailServer:
        server = MailServer(inbox, name, **options)
        server.controller.start()
        started.append(server)
        return server

    yield inbox, start
    for server in started:
        server.release.set()
        server.controller.stop()


@pytest.fixture
def scheduler_processes(database_url, tmp_path):
    """Start `flask --app wsgi scheduler run` processes on the test's database."""
    running: list[subprocess.Popen] = []

    def start(
        name: str, smtp_port: int, *, own_session: bool = True, **settings: str
    ) -> subprocess.Popen:
        """A scheduler in a session of its own, as a service runs; or, not `own_session`, in
        the test's session, as one started by hand from a shell (its own process group still,
        for the clean-up to stop)."""
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "NOTIFICATION_BATCH_SIZE": str(BATCH),
            "NOTIFICATION_DISPATCH_SECONDS": "0.5",
            "BOOKING_SCHEDULER": "off",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        env.pop("MAIL_TEMPLATES_FOLDER", None)
        flask = Path(sys.executable).with_name("flask")
        with (
            (tmp_path / f"{name}.out").open("w") as out,
            (tmp_path / f"{name}.err").open("w") as err,
        ):
            process = subprocess.Popen(
                [str(flask), "--app", "wsgi", "scheduler", "run"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=own_session,
                process_group=None if own_session else 0,
            )
        process.log_name = name
        running.append(process)
        return process

    def wait_until_running(*processes: subprocess.Popen) -> None:
        for process in processes:
            until(
                lambda p=process: "Scheduler running" in output_of(p),
                what="scheduler start",
                process=process,
            )

    def output_of(process: subprocess.Popen, stream: str = "out") -> str:
        return (tmp_path / f"{process.log_name}.{stream}").read_text()

    yield start, wait_until_running, output_of
    for process in running:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def until(condition, *, what: str, timeout: float = 120, process=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the scheduler exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; rows: {rows_by_status()}")
        time.sleep(0.05)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def four_visits(book) -> list[int]:
    """Visits for the reminders to be about, with none of their own mail waiting."""
    visits = [
        book(start=local(MONDAY, 9, 15 * n), name=f"Patient {n}", email=f"p{n}@example.com").id
        for n in range(4)
    ]
    db.session.execute(delete(Notification))
    db.session.commit()
    return visits


def thousand_due_reminders(visits: list[int]) -> list[str]:
    """1,000 reminders due a minute ago, over these visits; their Message-IDs."""
    due = utc_now() - timedelta(minutes=1)
    message_ids = [f"<reminder-{number}@scheduler-test>" for number in range(MESSAGES)]
    db.session.execute(
        insert(Notification),
        [
            {
                "appointment_id": visits[number % len(visits)],
                "kind": "reminder",
                "step": 0,
                "due_at": due,
                "status": "pending",
                "attempts": 0,
                "last_error": "",
                "message_id": message_id,
                "created_at": due,
            }
            for number, message_id in enumerate(message_ids)
        ],
    )
    db.session.commit()
    return message_ids


def two_dispatcher_runs_since(instant) -> Callable[[], bool]:
    """A condition for `until`: two dispatcher runs (their heartbeats) began after `instant`."""
    seen = set()

    def two_seen() -> bool:
        db.session.rollback()  # see what the scheduler processes wrote
        began = db.session.scalar(select(DispatcherHeartbeat.last_run_at))
        if began is not None and began > instant:
            seen.add(began)
        return len(seen) >= 2

    return two_seen


def rows_by_status() -> dict[str, int]:
    db.session.rollback()  # see what the scheduler processes wrote
    counts = db.session.execute(
        select(Notification.status, func.count()).group_by(Notification.status)
    )
    return dict(counts.all())


@pytest.mark.slow
def test_two_scheduler_processes_deliver_a_thousand_reminders_exactly_once(
    book, mail_servers, scheduler_processes
):
    inbox, start_mail_server = mail_servers
    start, wait_until_running, output_of = scheduler_processes
    visits = four_visits(book)
    # Each mail server holds its first message until the other has had one: both processes
    # take part, however the machine shares its cores between them (the one held claims no
    # more; the other's dispatcher runs meanwhile).
    first_server = start_mail_server("first", hold_first_until=lambda: second_server.received > 0)
    second_server = start_mail_server("second", hold_first_until=lambda: first_server.received > 0)
    first = start("first", first_server.controller.port)
    second = start("second", second_server.controller.port)
    wait_until_running(first, second)

    message_ids = thousand_due_reminders(visits)
    until(
        lambda: inbox.total() >= MESSAGES and rows_by_status() == {"sent": MESSAGES},
        what="every reminder to arrive",
    )
    # Dispatcher runs that began once every reminder was sent find nothing more to send.
    until(two_dispatcher_runs_since(utc_now()), what="two more dispatcher runs")
    assert stop(first) == 0
    assert stop(second) == 0

    assert sorted(inbox.arrived) == sorted(message_ids)
    assert set(inbox.arrived.values()) == {1}
    assert inbox.by_server["first"] > 0
    assert inbox.by_server["second"] > 0
    assert inbox.by_server["first"] + inbox.by_server["second"] == MESSAGES
    logs = output_of(first, "err") + output_of(second, "err")
    assert "notifications: sent" in logs
    assert "@example.com" not in logs  # what was sent, never to whom


@pytest.mark.slow
def test_a_scheduler_killed_mid_batch_leaves_only_the_message_in_flight_to_go_twice(
    app, book, mail_servers, scheduler_processes
):
    # Driven by events (the mail server says when the doomed process is mid-batch) and by
    # instants (--now around the lease's end), never by how fast a process runs.
    inbox, start_mail_server = mail_servers
    start, wait_until_running, _ = scheduler_processes
    visits = four_visits(book)
    message_ids = thousand_due_reminders(visits)
    # The doomed process stalls on its 31st message: the 11th of its second batch of 20. Its
    # lease is an hour, so no clock reaches it while the test runs; only --now does.
    doomed_server = start_mail_server("doomed", stall_at=31)
    doomed = start("doomed", doomed_server.controller.port, NOTIFICATION_LEASE_SECONDS="3600")
    wait_until_running(doomed)

    until(doomed_server.stalled.is_set, what="the doomed process to be mid-batch", process=doomed)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    assert rows_by_status() == {"sent": 30, "sending": 10, "pending": MESSAGES - 40}

    # Another dispatcher, up to the last second of the lease, sends everything but the ten
    # the dead process still holds; at the lease's end, still not those.
    survivor_server = start_mail_server("survivor")
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=survivor_server.controller.port)
    lease_ends = db.session.scalar(select(func.max(Notification.lease_until)))
    runner = app.test_cli_runner()
    before_lease_ends = (lease_ends - timedelta(seconds=1)).isoformat()
    survivor = runner.invoke(args=["notifications", "send-due", "--now", before_lease_ends])
    assert survivor.output == f"sent {MESSAGES - 40}, failed 0, deferred 0\n"
    assert rows_by_status() == {"sent": MESSAGES - 10, "sending": 10}
    assert len(inbox.arrived) == MESSAGES - 9  # the one in flight arrived, unrecorded
    early = runner.invoke(args=["notifications", "send-due", "--now", lease_ends.isoformat()])
    assert early.output == "sent 0, failed 0, deferred 0\n"

    after_lease = (lease_ends + timedelta(seconds=1)).isoformat()
    answer = runner.invoke(args=["notifications", "send-due", "--now", after_lease])
    assert answer.exit_code == 0, answer.output
    assert answer.output == "sent 10, failed 0, deferred 0\n"

    assert rows_by_status() == {"sent": MESSAGES}
    assert sorted(inbox.arrived) == sorted(message_ids)
    twice = [message_id for message_id, count in inbox.arrived.items() if count > 1]
    assert twice == [doomed_server.stalled_message_id]
    assert inbox.arrived[doomed_server.stalled_message_id] == 2


def test_sigterm_stops_a_scheduler_whatever_it_is_doing(mail_servers, scheduler_processes):
    # Waking every few milliseconds, the scheduler is nearly always starting a run: a stop
    # made inside a signal handler deadlocked there (the handler waited for a lock that its
    # own thread held), until systemd's SIGKILL.
    _, start_mail_server = mail_servers
    start, wait_until_running, _ = scheduler_processes
    schedulers = [
        start(f"busy {n}", start_mail_server(f"busy {n}").controller.port,
              NOTIFICATION_DISPATCH_SECONDS="0.002")
        for n in range(3)
    ]
    wait_until_running(*schedulers)
    for scheduler in schedulers:
        assert stop(scheduler) == 0


def session_priority(pid: int | str) -> int | None:
    """The nice value of a process's session, as Linux's autogroup shares the CPU between
    sessions: None where the kernel shows none (no such file, or, in some containers, an
    empty one; the scheduler then leaves its session's priority as it is)."""
    try:
        fields = Path(f"/proc/{pid}/autogroup").read_text().split()
    except OSError:
        return None
    return int(fields[-1]) if fields else None


def test_a_scheduler_run_as_a_service_yields_the_cpu_to_the_web_and_still_sends(
    book, mail_servers, scheduler_processes
):
    inbox, start_mail_server = mail_servers
    start, wait_until_running, output_of = scheduler_processes
    scheduler = start("service", start_mail_server("service").controller.port, SCHEDULER_NICE="7")
    wait_until_running(scheduler)

    assert os.getpriority(os.PRIO_PROCESS, scheduler.pid) == 7
    if session_priority("self") is not None:
        assert session_priority(scheduler.pid) == 7
        assert "runs at CPU priority nice 7, its session's too" in output_of(scheduler, "err")
    book(start=local(MONDAY, 9), name="Ada Patient", email="ada@example.com")
    until(lambda: inbox.total() == 1, what="the confirmation", process=scheduler)
    assert stop(scheduler) == 0


def test_a_scheduler_started_from_a_shell_leaves_the_shells_priority_alone(
    mail_servers, scheduler_processes
):
    _, start_mail_server = mail_servers
    start, wait_until_running, output_of = scheduler_processes
    shell_priority = session_priority("self")
    scheduler = start("by hand", start_mail_server("by hand").controller.port, own_session=False)
    wait_until_running(scheduler)

    assert os.getpriority(os.PRIO_PROCESS, scheduler.pid) == 10  # the default
    assert session_priority("self") == shell_priority
    assert "runs at CPU priority nice 10\n" in output_of(scheduler, "err")
    assert stop(scheduler) == 0


@pytest.mark.parametrize("value", ["fast", "20", "-3", "", "1.5", "\u00b2"])
def test_a_scheduler_priority_that_is_no_nice_value_is_refused_by_name(value):
    refusal = f"SCHEDULER_NICE is a whole number from 0 to 19, not '{value}'"
    with pytest.raises(ValueError, match=re.escape(refusal)):
        load_config({"SCHEDULER_NICE": value})


def test_the_scheduler_priority_takes_every_nice_value_and_defaults_to_ten():
    assert load_config(TestConfig)["SCHEDULER_NICE"] == 10
    assert load_config({"SCHEDULER_NICE": " 0"})["SCHEDULER_NICE"] == 0
    assert load_config({"SCHEDULER_NICE": "19"})["SCHEDULER_NICE"] == 19


# --- the in-process scheduler ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("enabled", "reloader_child", "debug", "wanted"),
    [
        (False, False, False, False),  # the WSGI default: gunicorn workers never start one
        (False, True, True, False),
        (True, False, False, True),  # `make run`: one process, it serves
        (True, False, True, False),  # the reloader's watcher: its child will start it
        (True, True, True, True),  # the reloader's serving child
    ],
)
def test_the_in_process_scheduler_starts_only_in_the_serving_process(
    enabled, reloader_child, debug, wanted
):
    assert wanted_in_this_process(enabled, reloader_child=reloader_child, debug=debug) is wanted


def _scheduler_threads() -> int:
    return sum(thread.name == "APScheduler" for thread in threading.enumerate())


def test_two_apps_in_one_process_start_one_scheduler(app_settings, monkeypatch):
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    settings = {**app_settings, "BOOKING_SCHEDULER": True}
    before = _scheduler_threads()
    try:
        first = create_app(settings)
        second = create_app(settings)
        assert start_in_process(first) is start_in_process(second) is not None
        assert _scheduler_threads() == before + 1
    finally:
        stop_in_process()
        for started in (first, second):
            with started.app_context():
                dispose_engines()
    assert _scheduler_threads() == before


def test_with_the_scheduler_off_create_app_starts_none(app_settings):
    before = _scheduler_threads()
    create_app({**app_settings, "BOOKING_SCHEDULER": False})
    assert _scheduler_threads() == before


def test_the_dispatcher_runs_every_fifteen_seconds_one_run_at_a_time(app):
    scheduler = build_scheduler(app, BackgroundScheduler)
    scheduler.start(paused=True)  # the job defaults apply as jobs enter the store
    job = scheduler.get_job("send due notifications")
    scheduler.shutdown(wait=False)
    assert job.trigger.interval == timedelta(seconds=15)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 60)
