"""One visit cancelled from several places at the same moment (a patient clicking twice, the
desk at the same time): it is cancelled once, with one audit entry and one mail. Real
gunicorn workers against each database, as test_double_booking."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, func, select, text

from booking.extensions import db
from booking.models import AuditEntry, Notification
from booking.patients.manage_links import manage_token_for
from tests.conftest import local, next_weekday
from tests.servers import all_at_once, running_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clinic")]

WORKERS = 4
AT_ONCE = 8


@contextlib.contextmanager
def every_worker_held_at_the_visit(database_url: str, visit_id: int):
    """On PostgreSQL, another transaction holds the visit's row until a cancel waits for it
    in every worker: each of them has begun before the first can end. (SQLite's writing
    transactions take the whole database one at a time.)"""
    if not database_url.startswith("postgresql"):
        yield
        return
    engine = create_engine(database_url)
    # Each look at who waits in a transaction of its own: one sees a snapshot of them.
    watcher = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as holder, watcher.connect() as watching:
            holder.execute(text("SELECT id FROM appointments WHERE id = :id FOR UPDATE"),
                           {"id": visit_id})
            yield
            deadline = time.monotonic() + 30
            while watching.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )) < WORKERS:
                assert time.monotonic() < deadline, "the cancels never reached the visit"
                time.sleep(0.01)
            holder.rollback()
    finally:
        engine.dispose()


def rows_about(visit_id: int, model, **where) -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count()).select_from(model).filter_by(appointment_id=visit_id, **where)
    )


def test_a_visit_cancelled_eight_times_at_once_is_cancelled_once_with_one_mail(
    book, database_url
):
    visit = book(start=local(next_weekday(1, at_least_days=3), 10))
    cancel = f"/api/v1/appointments/{visit.id}/cancel"
    bearer = {"Authorization": f"Bearer {manage_token_for(visit)}"}

    with running_gunicorn(database_url, workers=WORKERS) as base_url, \
            ThreadPoolExecutor(max_workers=1) as background:
        with every_worker_held_at_the_visit(database_url, visit.id):
            sent = background.submit(all_at_once, [
                lambda session: session.post(f"{base_url}{cancel}", json={}, headers=bearer,
                                             timeout=60)
            ] * AT_ONCE)
        answers = sent.result(timeout=120)

    assert [answer.status_code for answer in answers] == [200] * AT_ONCE
    assert {answer.json()["status"] for answer in answers} == {"cancelled"}
    assert rows_about(visit.id, Notification, kind="cancellation") == 1
    assert rows_about(visit.id, AuditEntry, action="cancelled") == 1
