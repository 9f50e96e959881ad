"""The whole service under load: a waiting room's worth of patients on gunicorn and PostgreSQL.

gunicorn (as `gunicorn.conf.py` sets it up: one worker a core; rate limits off) serves the
demo clinic on PostgreSQL while two `flask scheduler run` processes send the mail to a local
SMTP sink that counts Message-IDs.
50 clients (threads, each on a fresh connection per request) run a patient's mix for 60 s:
availability look-ups 80% (varied services, therapists and weeks), bookings 15% (a slot from
the client's latest look-up; 409 under contention is a normal answer), and cancels and
reschedules 5% (of the client's own visits, through their manage tokens). A warm-up of 3 s of
the same mix, not counted, comes first, then ANALYZE, as autovacuum keeps a clinic's statistics.

Prints requests/s (and the fewest, median and most answered in a second of the run: the
machine's own speed wanders), p50/p95/p99 per endpoint and answers by status, beside the
targets, and the CPU a request cost gunicorn, PostgreSQL, the schedulers and the clients (from
/proc, on Linux) with the throughput the cores allow at that cost; then stops the
schedulers, drains the outbox with one `send-due`, and checks the invariants: no overlapping
live appointments, every visit has its audit entry and its confirmation, every due
notification sent exactly once (rows `sent` against Message-IDs in the sink), no 5xx.
Exits non-zero when an invariant breaks or a 5xx was answered.

Run: make bench-load (starts a throwaway PostgreSQL), or with TEST_POSTGRES_URL or
DATABASE_URL set to a PostgreSQL server: python bench/load.py [--seconds 20] [--clients 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.notifications import Sink  # noqa: E402
from bench.plain_http import exchange  # noqa: E402
from bench.process_cpu import processes, workers_of  # noqa: E402
from tests.servers import (  # noqa: E402
    PROJECT_ROOT,
    clinic_app,
    free_port,
    fresh_postgres_database,
    gather_statistics,
    running_gunicorn,
)

CLIENTS = 50
SECONDS = 60
SCHEDULERS = 2
# How often each scheduler wakes its dispatcher here (production default: 15 s), so that
# several dispatcher runs overlap the load even in a short run.
DISPATCH_SECONDS = 5
# A patient reads the page between two clicks; 0 makes every client a closed loop that
# measures the saturation throughput instead of the latency at this load.
THINK_SECONDS = 0.5
WARM_UP_SECONDS = 3
CLINIC_FILE = PROJECT_ROOT / "booking" / "clinic" / "demo_clinic.toml"
SECRET = "bench-secret-key"
TARGETS_MS = {"availability": 50, "book": 150}
_ZONE_DAYS_AHEAD = (1, 56)  # look-ups start this many days from today


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    answered_at: list[float] = field(default_factory=list)  # time.monotonic() of each answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, endpoint: str, status: int, seconds: float) -> None:
        answered_at = time.monotonic()
        with self.lock:
            self.latencies[endpoint].append(seconds)
            self.statuses[endpoint][status] += 1
            if endpoint != "setup":
                self.answered_at.append(answered_at)


class Server:
    """One HTTP request per fresh connection, as a browser behind a proxy would mostly do."""

    def __init__(self, base_url: str, results: Results):
        self.host, port = base_url.removeprefix("http://").split(":")
        self.port = int(port)
        self.results = results

    def call(self, endpoint: str, method: str, path: str, body=None, token: str = "",
             *, read: bool = True):
        """The answer's status and its JSON; with `read=False`, its body as bytes, for the
        caller to read only if it needs it (the clients share the server's two cores)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        began = time.perf_counter()
        try:
            status, payload = exchange(
                self.host, self.port, method, path,
                None if body is None else json.dumps(body).encode(), headers,
            )
        except OSError:
            status, payload = 0, b""  # 0: no answer at all (refused, reset, timed out)
        self.results.add(endpoint, status, time.perf_counter() - began)
        if not read:
            return status, payload
        try:
            return status, orjson.loads(payload) if payload else None
        except ValueError:
            return status, None


@dataclass
class Patient:
    """One client: a patient (or a parent) looking for a time, booking, changing their mind."""

    number: int
    server: Server
    offers: dict[str, list[str]]  # service -> therapists offering it
    bookable: list[str]  # services a new patient may book online
    random: random.Random
    # service -> the latest look-up's answer, read when the patient books from it
    answers: dict[str, bytes] = field(default_factory=dict)
    slots: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    visits: list[dict] = field(default_factory=list)  # live ones booked by this client

    def look_up(self, service: str | None = None) -> None:
        service = service or self.random.choice(list(self.offers))
        first = date.today() + timedelta(days=self.random.randint(*_ZONE_DAYS_AHEAD))  # noqa: DTZ011
        query = {"service": service, "start": str(first),
                 "end": str(first + timedelta(days=self.random.choice((6, 6, 6, 13))))}
        if self.random.random() < 0.5:
            query["therapist"] = self.random.choice(self.offers[service])
        status, answer = self.server.call(
            "availability", "GET", f"/api/v1/availability?{urlencode(query)}", read=False
        )
        if status == 200:
            self.answers[service] = answer
            self.slots.pop(service, None)

    def _slot_for(self, service: str) -> tuple[str, str] | None:
        if not self.slots.get(service) and service not in self.answers:
            self.look_up(service)  # the patient looks before they book
        if service in self.answers:
            answer = orjson.loads(self.answers.pop(service))
            self.slots[service] = [(slot["start"], slot["therapist"]) for slot in answer["slots"]]
        if not self.slots.get(service):
            return None
        return self.slots[service].pop(self.random.randrange(len(self.slots[service])))

    def book(self) -> None:
        service = self.random.choice(self.bookable)
        slot = self._slot_for(service)
        if slot is None:
            return
        start, therapist = slot
        status, answer = self.server.call("book", "POST", "/api/v1/appointments", {
            "service": service, "start": start, "therapist": therapist,
            "patient": {"name": f"Load Patient {self.number}",
                        "email": f"load-{self.number}@example.com",
                        "phone": "+1 586 555 0100"},  # a call needs the number to call
        })
        if status == 201:
            self.visits.append(answer)

    def change_mind(self) -> None:
        if not self.visits:
            self.look_up()
            return
        visit = self.visits[self.random.randrange(len(self.visits))]
        path, token = f"/api/v1/appointments/{visit['id']}", visit["manage_token"]
        if self.random.random() < 0.5:
            status, _ = self.server.call("cancel", "POST", f"{path}/cancel", {}, token)
            if status == 200:
                self.visits.remove(visit)
            return
        slot = self._slot_for(visit["service"])
        if slot is None:
            return
        start, therapist = slot
        status, answer = self.server.call(
            "reschedule", "POST", f"{path}/reschedule", {"start": start, "therapist": therapist},
            token,
        )
        if status == 200:
            visit.update(answer)

    def run(self, deadline: float, think: float) -> None:
        while time.monotonic() < deadline:
            roll = self.random.random()
            if roll < 0.80:
                self.look_up()
            elif roll < 0.95:
                self.book()
            else:
                self.change_mind()
            if think:
                time.sleep(self.random.expovariate(1 / think))


def prepare_database(server_url: str) -> str:
    url = fresh_postgres_database(server_url, "booking_load")
    with clinic_app(url, CLINIC_FILE.read_text(), secret_key=SECRET):
        pass
    return url


def clinic_offers(server: Server) -> tuple[dict[str, list[str]], list[str]]:
    _, services = server.call("setup", "GET", "/api/v1/services")
    offers = {}
    for service in services:
        _, therapists = server.call("setup", "GET", f"/api/v1/therapists?service={service['slug']}")
        offers[service["slug"]] = [therapist["slug"] for therapist in therapists]
    bookable = [service["slug"] for service in services if not service["requires_evaluation"]]
    return offers, bookable


def start_schedulers(url: str, smtp_port: int, log_folder: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET, "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_port), "BOOKING_SCHEDULER": "off",
           "NOTIFICATION_DISPATCH_SECONDS": str(DISPATCH_SECONDS)}
    env.pop("MAIL_TEMPLATES_FOLDER", None)
    flask = Path(sys.executable).with_name("flask")
    return [
        subprocess.Popen(
            [str(flask), "--app", "wsgi", "scheduler", "run"], cwd=PROJECT_ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=(log_folder / f"scheduler-{n}.log").open("w"),
            start_new_session=True,
        )
        for n in range(SCHEDULERS)
    ]


def drain_outbox(url: str, smtp_port: int) -> str:
    """What the schedulers left due (a run cut short by SIGTERM finishes its batch first)."""
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET, "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_port), "BOOKING_SCHEDULER": "off"}
    env.pop("MAIL_TEMPLATES_FOLDER", None)
    flask = Path(sys.executable).with_name("flask")
    return subprocess.run(
        [str(flask), "--app", "wsgi", "notifications", "send-due"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout.strip()


def invariant_breaks(url: str, sink: Sink) -> dict[str, int]:
    """Each invariant and how many times it is broken (all must be 0)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        def count(sql: str) -> int:
            return connection.execute(text(sql)).scalar()

        breaks = {
            "overlapping live appointments": count(
                "SELECT count(*) FROM appointments a JOIN appointments b "
                "ON a.therapist_id = b.therapist_id AND a.id < b.id "
                "AND a.status <> 'cancelled' AND b.status <> 'cancelled' "
                "AND a.start_at < b.busy_until AND b.start_at < a.busy_until"),
            "appointments without an audit entry": count(
                "SELECT count(*) FROM appointments a WHERE NOT EXISTS "
                "(SELECT 1 FROM audit_entries e WHERE e.appointment_id = a.id)"),
            "appointments without a confirmation row": count(
                "SELECT count(*) FROM appointments a WHERE NOT EXISTS (SELECT 1 FROM "
                "notifications n WHERE n.appointment_id = a.id AND n.kind = 'confirmation')"),
            "cancelled appointments without a cancellation row": count(
                "SELECT count(*) FROM appointments a WHERE a.status = 'cancelled' AND NOT "
                "EXISTS (SELECT 1 FROM notifications n WHERE n.appointment_id = a.id "
                "AND n.kind = 'cancellation')"),
            "due notifications not sent": count(
                "SELECT count(*) FROM notifications WHERE status IN ('pending', 'sending') "
                "AND due_at <= now()"),
            "failed notifications": count(
                "SELECT count(*) FROM notifications WHERE status = 'failed'"),
        }
        sent = {row[0] for row in connection.execute(
            text("SELECT message_id FROM notifications WHERE status = 'sent'"))}
        totals = connection.execute(text(
            "SELECT (SELECT count(*) FROM appointments), "
            "(SELECT count(*) FROM appointments WHERE status = 'cancelled'), "
            "(SELECT count(*) FROM notifications WHERE status = 'sent')")).one()
    engine.dispose()
    arrived = {message_id.decode() for message_id in sink.arrived}
    breaks["rows sent that never arrived"] = len(sent - arrived)
    breaks["messages that arrived with no row sent"] = len(arrived - sent)
    breaks["messages that arrived more than once"] = sum(
        1 for seen in sink.arrived.values() if seen > 1)
    print(f"appointments: {totals[0]} ({totals[1]} cancelled); notifications sent: {totals[2]}; "
          f"messages in the sink: {sink.total()}")
    return breaks


def quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(results: Results, began: float, elapsed: float) -> int:
    """Print the figures; return how many 5xx answers there were."""
    total = sum(len(values) for name, values in results.latencies.items() if name != "setup")
    print(f"{total} requests in {elapsed:.1f} s: {total / elapsed:.0f} requests/s")
    # The same load, second by second: how far the machine's own speed wandered in the run.
    each_second = Counter(int(at - began) for at in results.answered_at)
    whole_seconds = sorted(each_second[second] for second in range(int(elapsed)))
    if whole_seconds:
        print(f"answered in each second: fewest {whole_seconds[0]}, median "
              f"{whole_seconds[len(whole_seconds) // 2]}, most {whole_seconds[-1]}")
    print(f"{'endpoint':<14}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  statuses")
    server_errors = 0
    for name in ("availability", "book", "cancel", "reschedule"):
        values = results.latencies.get(name, [])
        statuses = results.statuses.get(name, Counter())
        server_errors += sum(n for status, n in statuses.items() if status >= 500)
        if not values:
            print(f"{name:<14}{0:>9}")
            continue
        p50, p95, p99 = (quantile(values, q) * 1000 for q in (0.50, 0.95, 0.99))
        target = TARGETS_MS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"  target p95 <= {target} ms: {'met' if p95 <= target else 'MISSED'}"
        print(f"{name:<14}{len(values):>9}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}  "
              f"{dict(sorted(statuses.items()))}{verdict}")
    print(f"5xx answers: {server_errors} (target 0); status 0 = no answer at all")
    return server_errors


def cpu_by_role(schedulers: list[subprocess.Popen]) -> Counter:
    """CPU seconds (user and system) used so far by the run's processes on this machine, by
    role: gunicorn's, PostgreSQL's, the schedulers', and this one's (the clients and the SMTP
    sink). Empty where there is no /proc."""
    scheduler_pids = {scheduler.pid for scheduler in schedulers}
    used: Counter = Counter()
    for each in processes():
        if each.pid == os.getpid():
            role = "clients and SMTP sink"
        elif each.pid in scheduler_pids:
            role = "schedulers"
        elif b"gunicorn" in each.command:
            role = "gunicorn"
        elif each.command.startswith(b"postgres:") or b"bin/postgres\0" in each.command:
            role = "PostgreSQL"
        else:
            continue
        used[role] += each.seconds
    return used


def report_cpu(before: Counter, after: Counter, requests: int) -> None:
    """What each role's CPU cost a request, and the throughput the cores allow at that."""
    if not after or not requests:
        return
    roles = ("gunicorn", "PostgreSQL", "schedulers", "clients and SMTP sink")
    each = {role: (after[role] - before[role]) * 1000 / requests for role in roles}
    total = sum(each.values())
    print("CPU a request (ms, from /proc): "
          + ", ".join(f"{role} {ms:.2f}" for role, ms in each.items())
          + f"; in all {total:.2f}, so {os.cpu_count()} cores answer at most "
          f"{os.cpu_count() * 1000 / total:.0f} requests/s at this cost")


def run_patients(patients: list[Patient], deadline: float, think: float) -> None:
    threads = [threading.Thread(target=patient.run, args=(deadline, think))
               for patient in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--think", type=float, default=THINK_SECONDS,
                        help="mean pause between a client's requests, in seconds (0: none)")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    server_url = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not server_url.startswith("postgres"):
        sys.exit("set TEST_POSTGRES_URL or DATABASE_URL to a PostgreSQL server (or: make bench)")
    url = prepare_database(server_url)

    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    log_folder = PROJECT_ROOT / "test-output" / "bench-load"
    log_folder.mkdir(parents=True, exist_ok=True)
    schedulers = start_schedulers(url, smtp.port, log_folder)
    results = Results()
    try:
        with running_gunicorn(url, workers=None, secret_key=SECRET,
                              extra_env={"RATE_LIMITS": "off"}) as base_url:
            offers, bookable = clinic_offers(Server(base_url, results))
            print(f"gunicorn {len(workers_of(b'gunicorn'))} workers on PostgreSQL, "
                  f"{SCHEDULERS} schedulers (every {DISPATCH_SECONDS} s); "
                  f"{options.clients} clients for {options.seconds:.0f} s, "
                  f"think time {options.think} s; {len(offers)} services, "
                  f"{len({t for ts in offers.values() for t in ts})} therapists "
                  f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
            # A warm-up of the same mix, answers not counted, then ANALYZE, as autovacuum keeps
            # a clinic's statistics (`gather_statistics`): the demo clinic has no visits yet.
            warm_up = [
                Patient(n, Server(base_url, Results()), offers, bookable,
                        random.Random(options.seed * 1000 + n))
                for n in range(options.clients)
            ]
            run_patients(warm_up, time.monotonic() + WARM_UP_SECONDS, options.think)
            gather_statistics(url)
            patients = [
                Patient(n, Server(base_url, results), offers, bookable,
                        random.Random(options.seed * 1000 + options.clients + n))
                for n in range(options.clients)
            ]
            cpu_before = cpu_by_role(schedulers)
            began = time.monotonic()
            own_cpu = time.process_time()
            run_patients(patients, began + options.seconds, options.think)
            elapsed = time.monotonic() - began
            own_cpu = time.process_time() - own_cpu
            cpu_after = cpu_by_role(schedulers)
            load = os.getloadavg()[0]
    finally:
        for scheduler in schedulers:
            if scheduler.poll() is None:
                os.killpg(scheduler.pid, signal.SIGTERM)
        codes = [scheduler.wait(timeout=60) for scheduler in schedulers]
    print(f"(load average at the end {load:.1f}; this process, the clients and the SMTP sink, "
          f"used {own_cpu / elapsed:.0%} of a core; schedulers stopped with {codes})")
    server_errors = report(results, began, elapsed)
    report_cpu(cpu_before, cpu_after, len(results.answered_at))
    print(f"final send-due: {drain_outbox(url, smtp.port)}")
    time.sleep(0.5)  # the sink's last answers
    smtp.stop()
    breaks = invariant_breaks(url, sink)
    for name, broken in breaks.items():
        print(f"  {name}: {broken}")
    broken_total = sum(breaks.values())
    print(f"invariant breaks: {broken_total} (target 0)")
    if server_errors or broken_total or any(codes):
        sys.exit("FAILED: a 5xx answer, an invariant broken, or a scheduler that failed")


if __name__ == "__main__":
    main()
