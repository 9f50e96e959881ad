"""Messages per second out of the outbox: 10,000 due notifications, two dispatchers, PostgreSQL.

Two `flask notifications send-due` processes (the dispatcher the scheduler runs) share the
outbox and send to one local SMTP sink (aiosmtpd, in a thread of this process) that counts
Message-IDs. Prints messages per second and duplicates, which must be 0.

Run: make bench-notifications (starts a throwaway PostgreSQL), or with TEST_POSTGRES_URL or
DATABASE_URL set to a PostgreSQL server: python bench/notifications.py
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

from tests.servers import (  # noqa: E402
    PROJECT_ROOT,
    clinic_app,
    free_port,
    fresh_postgres_database,
)

NOTIFICATIONS = 10_000
DISPATCHERS = 2
PATIENTS = 50
SECRET = "bench-secret-key"
CLINIC_FILE = PROJECT_ROOT / "tests" / "clinic.toml"
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Sink:
    """An SMTP server that keeps nothing but the Message-ID of each message, and when."""

    def __init__(self):
        self.arrived: Counter[bytes] = Counter()
        self.first = self.last = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        headers = envelope.content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(headers)
        now = time.monotonic()
        with self._lock:
            self.arrived[found.group(1) if found else b""] += 1
            self.first = self.first or now
            self.last = now
        return "250 OK"

    def total(self) -> int:
        with self._lock:
            return sum(self.arrived.values())


def prepare_database(server_url: str) -> str:
    """A fresh database with the test clinic, a few visits, and 10,000 reminders due now."""
    url = fresh_postgres_database(server_url, "booking_bench_notifications")

    from booking import scheduling
    from booking.extensions import db
    from booking.models import Notification, utc_now

    with clinic_app(url, CLINIC_FILE.read_text(), secret_key=SECRET):
        service = scheduling.bookable_service("schedule-a-call")
        first_day = (utc_now() + timedelta(days=3)).date()
        slots = scheduling.free_slots(service, first_day, first_day + timedelta(days=30))
        visits = []
        for number, slot in enumerate(slots[:PATIENTS]):
            visits.append(
                scheduling.book_appointment(
                    service,
                    slot.start,
                    scheduling.PatientDetails(
                        name=f"Bench Patient {number}", email=f"bench{number}@example.com"
                    ),
                    therapist_slug=slot.therapist,
                ).id
            )
            db.session.commit()
        db.session.execute(text("DELETE FROM notifications"))
        due = utc_now() - timedelta(minutes=1)
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
                    "message_id": f"<bench-{number}@clinic-booking>",
                    "created_at": due,
                }
                for number in range(NOTIFICATIONS)
            ],
        )
        db.session.commit()
    return url


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def statuses(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, count(*) FROM notifications GROUP BY status ORDER BY status")
        ).all()
    engine.dispose()
    return dict(rows)


def main() -> None:
    server = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        sys.exit("set TEST_POSTGRES_URL or DATABASE_URL to a PostgreSQL server (or: make bench)")
    url = prepare_database(server)

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(controller.port),
        "BOOKING_SCHEDULER": "off",
    }
    env.pop("MAIL_TEMPLATES_FOLDER", None)
    flask = Path(sys.executable).with_name("flask")
    began = time.monotonic()
    children_cpu = _cpu_seconds(resource.getrusage(resource.RUSAGE_CHILDREN))
    sink_cpu = time.process_time()
    dispatchers = [
        subprocess.Popen(
            [str(flask), "--app", "wsgi", "notifications", "send-due"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(DISPATCHERS)
    ]
    reports = [process.communicate(timeout=600)[0].strip() for process in dispatchers]
    elapsed = time.monotonic() - began
    dispatcher_cpu = _cpu_seconds(resource.getrusage(resource.RUSAGE_CHILDREN)) - children_cpu
    sink_cpu = time.process_time() - sink_cpu
    controller.stop()

    arrived = sink.total()
    duplicates = arrived - len(sink.arrived)
    sending = sink.last - sink.first
    print(f"{NOTIFICATIONS} due notifications, {DISPATCHERS} dispatcher processes, PostgreSQL")
    for number, report in enumerate(reports, 1):
        print(f"dispatcher {number}: {report}")
    print(f"arrived: {arrived} messages, {len(sink.arrived)} distinct Message-IDs")
    print(f"rows: {statuses(url)}")
    print(
        f"{arrived / sending:.0f} messages/s from first to last message ({sending:.1f} s); "
        f"{arrived / elapsed:.0f} messages/s including process start ({elapsed:.1f} s)"
    )
    print(
        f"CPU per message: dispatchers {dispatcher_cpu / arrived * 1000:.2f} ms, "
        f"SMTP sink {sink_cpu / arrived * 1000:.2f} ms (load average now "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(f"duplicates: {duplicates}")
    if duplicates or len(sink.arrived) != NOTIFICATIONS:
        sys.exit("FAILED: every message must arrive exactly once")


if __name__ == "__main__":
    main()
