"""The dispatcher's heartbeat: when a dispatcher last ran, for the health check.

One row, written with one statement at the start of every dispatcher run (by whichever
scheduler process runs it), so that `/healthz` on any web host can say whether reminders are
going out. An upsert rather than an UPDATE of a seeded row: the row appears on the first run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, Integer, select
from sqlalchemy.orm import Mapped, mapped_column

from booking.database import connection_for_reads, insert_for_dialect
from booking.extensions import db
from booking.models.instants import UTCDateTime

_THE_ROW = 1


class DispatcherHeartbeat(db.Model):
    __tablename__ = "dispatcher_heartbeat"
    __table_args__ = (CheckConstraint("id = 1", name="dispatcher_heartbeat_single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime)


def record_dispatcher_run(at: datetime) -> None:
    """Note that a dispatcher ran at `at`. The caller holds the write lock and commits."""
    statement = insert_for_dialect(DispatcherHeartbeat).values(id=_THE_ROW, last_run_at=at)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[DispatcherHeartbeat.id],
            set_={"last_run_at": statement.excluded.last_run_at},
        )
    )


def last_dispatcher_run() -> datetime | None:
    return connection_for_reads().scalar(
        select(DispatcherHeartbeat.last_run_at).where(DispatcherHeartbeat.id == _THE_ROW)
    )


def dispatcher_state(last_run: datetime | None, now: datetime, late_after: timedelta) -> str:
    """"ok" when a dispatcher ran within `late_after`, "late" when longer ago, "never"."""
    if last_run is None:
        return "never"
    return "ok" if now - last_run <= late_after else "late"
