"""Instants in the database: stored in UTC, always timezone-aware in Python."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    TypeDecorator,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An instant: timestamptz on PostgreSQL, UTC text on SQLite; aware UTC in Python either way."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime as an instant")
        value = value.astimezone(UTC)
        # SQLite keeps text: store naive UTC so that text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect, coltype):
        if dialect.name == "postgresql":
            # psycopg hands back aware datetimes in the session's zone, UTC on our connections
            # (database.engine_options): those are kept as they are. A month of busy times is
            # thousands of them.
            def read_aware(value):
                if value is None or value.tzinfo is UTC:
                    return value
                return value.astimezone(UTC)

            return read_aware
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        # SQLite hands back its text, naive UTC ("2026-12-03 13:00:00.000000"). Read with the
        # offset added, by datetime's own parser: several times faster than the dialect's
        # regular expression and a replace(tzinfo=), which were most of the cost of reading a
        # month of busy times.
        def read_instant(value):
            if value is None:
                return None
            try:
                return datetime.fromisoformat(value + "+00:00")
            except ValueError:  # written with an offset by something else
                return datetime.fromisoformat(value).astimezone(UTC)

        return read_instant
