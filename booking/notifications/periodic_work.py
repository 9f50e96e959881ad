"""APScheduler wiring: when the clinic's periodic work runs, and in which process. Nothing else.

The work itself lives elsewhere (the dispatcher sends what the outbox holds); APScheduler only
wakes it. Its job store is in memory and never shared: any number of `flask scheduler run`
processes may run at once, because the dispatcher's claims, not the scheduler, keep a message
from going out twice.

Two ways to run it:
- `flask --app wsgi scheduler run`: a BlockingScheduler in the foreground, its own process
  (production: one or more next to the gunicorn hosts).
- BOOKING_SCHEDULER=on (what `make run` sets): create_app starts a BackgroundScheduler in the
  serving process, once. Never under gunicorn, whose workers would each start one.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import click
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask, current_app
from flask.cli import AppGroup
from flask.helpers import get_debug_flag
from werkzeug.serving import is_running_from_reloader

from booking.calendars.busy_calendars import refresh_external_calendars
from booking.models import utc_now
from booking.notifications import dispatcher
from booking.scheduling.waitlist_offers import pass_on_lapsed_offers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicWork:
    """One piece of work the scheduler runs every `interval_setting` seconds (a config key)."""

    name: str
    run: Callable[[], object]  # called inside the app context, with no arguments
    interval_setting: str


def send_due_notifications() -> None:
    dispatcher.send_due()


PERIODIC_WORK: list[PeriodicWork] = [
    PeriodicWork("send due notifications", send_due_notifications, "NOTIFICATION_DISPATCH_SECONDS"),
    PeriodicWork(
        "refresh external calendars",
        refresh_external_calendars,
        "EXTERNAL_CALENDAR_REFRESH_SECONDS",
    ),
    PeriodicWork(
        "pass on lapsed waitlist offers", pass_on_lapsed_offers, "WAITLIST_EXPIRY_SECONDS"
    ),
]
"""Everything the scheduler runs. To add periodic work (say, refreshing the therapists'
external calendars), append a PeriodicWork here, with its interval as a setting in config.py;
every process that runs the scheduler then runs it too, with the same guarantees:
one run at a time per process (max_instances=1), missed runs collapsed into one (coalesce),
a run late by more than SCHEDULER_MISFIRE_GRACE_SECONDS skipped. The work must be safe to
run in several processes at once, as the dispatcher is."""


def build_scheduler(app: Flask, kind: type[BaseScheduler]) -> BaseScheduler:
    """A scheduler of this kind with every PERIODIC_WORK job, each first due right away."""
    scheduler = kind(
        timezone=UTC,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(app.config["SCHEDULER_MISFIRE_GRACE_SECONDS"]),
        },
    )
    for work in PERIODIC_WORK:
        scheduler.add_job(
            _in_app_context,
            "interval",
            args=(app, work),
            seconds=float(app.config[work.interval_setting]),
            id=work.name,
            name=work.name,
            next_run_time=utc_now(),
        )
    return scheduler


def _in_app_context(app: Flask, work: PeriodicWork) -> None:
    # The app context gives the work its own database session, removed when it ends.
    with app.app_context():
        work.run()


# --- in the web process (BOOKING_SCHEDULER=on) ----------------------------------------------

_in_process: BackgroundScheduler | None = None
_in_process_lock = threading.Lock()


def wanted_in_this_process(enabled: bool, *, reloader_child: bool, debug: bool) -> bool:
    """Whether create_app should start the in-process scheduler.

    Under the development server's reloader there are two processes: the watcher (which loads
    the app too) and the child that serves (WERKZEUG_RUN_MAIN=true). Only the child runs it.
    `flask run --debug` turns the reloader on, so with debug the watcher is the process that
    is not the child; without debug there is one process, and it serves.
    """
    if not enabled:
        return False
    if reloader_child:
        return True
    return not debug


def start_in_process(app: Flask) -> BackgroundScheduler | None:
    """Start the background scheduler for this app if config and process call for it.

    One per process: a second create_app in the same process (tests, a CLI loading the app
    twice) finds it started and starts nothing.
    """
    global _in_process
    wanted = wanted_in_this_process(
        app.config["BOOKING_SCHEDULER"],
        reloader_child=is_running_from_reloader(),
        debug=get_debug_flag(),
    )
    if not wanted:
        return None
    with _in_process_lock:
        if _in_process is None:
            scheduler = build_scheduler(app, BackgroundScheduler)
            scheduler.start()
            atexit.register(stop_in_process, wait=False)
            _in_process = scheduler
            log.info("scheduler: started in this process")
        return _in_process


def stop_in_process(*, wait: bool = True) -> None:
    """Stop this process's background scheduler, if it runs (at exit, or before a foreground
    one takes over); with `wait`, after the run in progress ends."""
    global _in_process
    with _in_process_lock:
        if _in_process is not None:
            _in_process.shutdown(wait=wait)
            _in_process = None


# --- `flask scheduler run` ------------------------------------------------------------------

# Linux's autogroup (on by default) shares the CPU between sessions before it shares it between
# processes, and a service is a session of its own: without this, one scheduler would get as
# much CPU as all the web's workers together, and each of its runs (a batch of mail rendered
# as fast as it goes) would slow every patient's page on the host while it lasts.
_SESSION_PRIORITY = Path("/proc/self/autogroup")


def yield_cpu_to_the_web(nice: int) -> str:
    """Lower this process's CPU priority to `nice` (never raise it), and its session's when
    it leads a session of its own; say what was done, for the log.

    A scheduler started by hand from a shell belongs to the shell's session, whose priority
    is left alone.
    """
    if os.getpriority(os.PRIO_PROCESS, 0) < nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    done = f"nice {os.getpriority(os.PRIO_PROCESS, 0)}"
    if os.getsid(0) != os.getpid() or not _SESSION_PRIORITY.exists():
        return done
    try:
        if int(_SESSION_PRIORITY.read_text().split()[-1]) < nice:
            _lower_session_priority(nice)
    except (OSError, ValueError, IndexError) as error:
        log.warning("scheduler: the session's CPU priority stays as it was (%s)", error)
        return done
    return f"{done}, its session's too"


def _lower_session_priority(nice: int) -> None:
    # The kernel takes one such change a tenth of a second on the whole host (EAGAIN),
    # and several schedulers may start at once.
    tries = 20
    for tried in range(1, tries + 1):
        try:
            _SESSION_PRIORITY.write_text(str(nice))
            return
        except OSError as error:
            if error.errno != errno.EAGAIN or tried == tries:
                raise
        time.sleep(0.11)


def stop_on_sigterm(scheduler: BaseScheduler) -> None:
    """On SIGTERM, no new runs; the one in progress finishes (its messages marked sent) before
    the process exits.

    A thread of its own waits for SIGTERM, not a signal handler: a handler runs in the main
    thread wherever that thread is, and a shutdown from there waited forever for a lock the
    main thread held when SIGTERM came as it was starting a run.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # and in threads started later

    def wait_for_sigterm() -> None:
        signal.sigwait({signal.SIGTERM})
        scheduler.shutdown(wait=False)

    threading.Thread(target=wait_for_sigterm, name="SIGTERM", daemon=True).start()


scheduler_commands = AppGroup("scheduler", help="Run the reminder scheduler.")


@scheduler_commands.command("run")
def run_scheduler():
    """Run the reminder scheduler in the foreground until stopped (Ctrl-C or SIGTERM)."""
    app = current_app._get_current_object()
    stop_in_process()  # BOOKING_SCHEDULER=on in this environment: this process runs one only
    scheduler = build_scheduler(app, BlockingScheduler)
    stop_on_sigterm(scheduler)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per wake-up
    priority = yield_cpu_to_the_web(app.config["SCHEDULER_NICE"])
    log.info("scheduler: runs at CPU priority %s", priority)
    names = ", ".join(
        f"{work.name} every {app.config[work.interval_setting]:g} s" for work in PERIODIC_WORK
    )
    click.echo(f"Scheduler running: {names}. Ctrl-C stops it.")
    try:
        scheduler.start()
    except KeyboardInterrupt:
        scheduler.shutdown(wait=False)
