"""How long a cancellation takes when 5,000 patients wait: the visit cancelled and its offers
written (outbox rows included), in-process, beside the same cancellation with no one waiting.

The benchmark clinic of bench/booking.py (20 therapists, weekdays 08:00-16:00), with a
45-minute treatment beside its call, a few hundred visits booked, and 5,000 waiting entries
of every shape (a service, one therapist or anyone, dates, weekdays, parts of the day).
On SQLite, and on PostgreSQL when TEST_POSTGRES_URL or DATABASE_URL names one.

Run: make bench-waitlist (starts a throwaway PostgreSQL), or python bench/waitlist.py
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text, update  # noqa: E402

from tests.servers import clinic_app, fresh_postgres_database  # noqa: E402

SEED = 16
THERAPISTS = 20
WAITING = 5_000
RUNS = 40
TARGET_MEDIAN_MS = 20.0
SECRET = "bench-secret-key"


def clinic_file() -> str:
    lines = [
        "[clinic]",
        'name = "Benchmark Clinic"',
        'timezone = "America/Detroit"',
        'email = "frontdesk@clinic.example"',
        'phone = "+1 586 555 0100"',
        "slot_step_minutes = 15",
        "",
        "[[services]]",
        'slug = "schedule-a-call"',
        'name = "Schedule a call"',
        'kind = "call"',
        "duration_minutes = 15",
        "min_notice_hours = 2",
        "max_advance_days = 60",
        "",
        "[[services]]",
        'slug = "treatment"',
        'name = "Treatment"',
        'kind = "treatment"',
        "duration_minutes = 45",
        "buffer_after_minutes = 15",
        "min_notice_hours = 24",
        "max_advance_days = 60",
    ]
    for number in range(THERAPISTS):
        lines += [
            "",
            "[[therapists]]",
            f'slug = "therapist-{number:02d}"',
            f'name = "Therapist {number:02d}"',
            'disciplines = ["PT"]',
            'services = ["schedule-a-call", "treatment"]',
            *(f'hours.{day} = ["08:00-16:00"]' for day in ("mon", "tue", "wed", "thu", "fri")),
        ]
    return "\n".join(lines) + "\n"


def measure(database_url: str, label: str) -> None:
    from booking import scheduling
    from booking.clinic.reference import clinic_zone
    from booking.extensions import db
    from booking.models import (
        Service,
        Therapist,
        WaitlistEntry,
        WaitlistOffer,
        patient_identity,
        utc_now,
    )
    from booking.rules.waitlist import PARTS_OF_DAY, as_mask

    with clinic_app(database_url, clinic_file(), secret_key=SECRET):
        rng = random.Random(SEED)
        zone = clinic_zone()
        now = utc_now()
        today = now.astimezone(zone).date()
        treatment = scheduling.bookable_service("treatment")
        therapists = db.session.scalars(select(Therapist).order_by(Therapist.slug)).all()
        services = db.session.scalars(select(Service)).all()

        # Visits to cancel: two sets, one cancelled with the waitlist full, one with it empty.
        visits = []
        days = [today + timedelta(days=n) for n in range(3, 45)
                if (today + timedelta(days=n)).weekday() < 5]
        for number in range(2 * RUNS):
            day = rng.choice(days)
            therapist = therapists[number % THERAPISTS]
            hour = 8 + (number // THERAPISTS) % 7
            start = scheduling.free_slots(treatment, day, day, therapist_slug=therapist.slug)
            if not start:
                continue
            slot = rng.choice([s for s in start if s.start.astimezone(zone).hour >= hour]
                              or start)
            visits.append(scheduling.book_appointment(
                treatment, slot.start,
                scheduling.PatientDetails(name=f"Visit {number}",
                                          email=f"visit{number}@example.com"),
                therapist_slug=therapist.slug,
            ))
            db.session.commit()
        with_waitlist, without_waitlist = visits[:RUNS], visits[RUNS:2 * RUNS]

        rows = []
        for number in range(WAITING):
            first = today + timedelta(days=rng.randrange(0, 40))
            name = f"Waiting Patient {number}"
            email = f"waiting{number}@example.com"
            rows.append({
                "manage_token": f"bench-{number}",
                "status": "waiting",
                "service_id": rng.choice(services).id,
                "therapist_id": rng.choice(therapists).id if rng.random() < 0.5 else None,
                "available_from": first,
                "until": first + timedelta(days=rng.randrange(3, 30)),
                "weekday_mask": as_mask(rng.sample(range(5), rng.randrange(0, 4)), range(7)),
                "part_of_day_mask": as_mask(rng.sample(PARTS_OF_DAY, rng.randrange(0, 3)),
                                            PARTS_OF_DAY),
                "patient_identity": patient_identity(email, name),
                "patient_name": name, "patient_email": email, "patient_phone": "",
                "patient_guardian_name": "", "patient_language": "en",
                "added_by": "bench",
                "created_at": now - timedelta(minutes=WAITING - number),
            })
        db.session.execute(insert(WaitlistEntry), rows)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            # The statistics a live database keeps (autovacuum would gather them within a
            # minute): without them the planner takes 5,000 fresh rows for two.
            db.session.execute(text("ANALYZE waitlist_entries"))
            db.session.commit()

        def cancel_all(appointments) -> list[float]:
            timings = []
            for visit in appointments:
                began = time.perf_counter()
                scheduling.cancel_appointment(visit, cancelled_by="bench")
                db.session.commit()
                timings.append((time.perf_counter() - began) * 1000)
            return timings

        full = cancel_all(with_waitlist)
        offers = db.session.scalar(select(func.count()).select_from(WaitlistOffer))
        db.session.execute(update(WaitlistEntry).values(status="removed"))
        db.session.commit()
        empty = cancel_all(without_waitlist)

    full_median, empty_median = statistics.median(full), statistics.median(empty)
    print(f"{label}: {len(full)} cancellations with {WAITING:,} waiting: median "
          f"{full_median:.1f} ms (p90 {statistics.quantiles(full, n=10)[-1]:.1f} ms), "
          f"{offers} offers written; without a waitlist: median {empty_median:.1f} ms; "
          f"target under {TARGET_MEDIAN_MS:.0f} ms: "
          f"{'met' if full_median < TARGET_MEDIAN_MS else 'MISSED'}")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        measure(f"sqlite:///{folder}/waitlist-bench.db", "SQLite")
    server = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if server.startswith("postgres"):
        measure(fresh_postgres_database(server, "waitlist_bench"), "PostgreSQL")
    else:
        print("PostgreSQL: skipped (set TEST_POSTGRES_URL or DATABASE_URL, or: make bench)")


if __name__ == "__main__":
    main()
