"""How the app talks to its database: SQLite's locking and PostgreSQL's URL dialect.

SQLite: foreign keys on, WAL so readers don't wait for writers, and transactions started by
us rather than by the driver, so that a booking can take the write lock first
(`BEGIN IMMEDIATE`) and then re-check the slot, with no one able to slip in between.
"""

import time
from collections.abc import Mapping
from functools import cache
from typing import TypeVar

import psycopg
from flask import g, has_app_context
from psycopg import pq
from sqlalchemy import ColumnElement, Integer, bindparam, event, inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import Executable

from booking.extensions import db

Row = TypeVar("Row")

# Connection option read when a transaction starts on SQLite: DEFERRED or IMMEDIATE.
SQLITE_BEGIN = "sqlite_begin"
_WRITE_LOCK_HELD = "write_lock_held"
# Rows read held (`mark_held`), not yet taken by `take_held_read` (their identity keys).
_JUST_READ_HELD = "rows_just_read_held"
# The engine of the requests that only read, on PostgreSQL (engine_binds), and where the
# request keeps its connection (flask.g).
READING_BIND = "reading"
_READING = "_reading_connection"


def normalise_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_options(url: str, configured: dict) -> dict:
    options = dict(configured)
    # A statement's error names its SQL, not its values: those are patients' names, contact
    # details and notes, and the error of a failed request goes to the log with its traceback.
    options.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        # Wait for the write lock rather than failing at once when bookings race.
        options.setdefault("connect_args", {}).setdefault("timeout", 30)
    elif url.startswith("postgresql"):
        # Instants come back in UTC, as the app keeps them, with nothing to convert (the
        # server's own zone may be any). No query depends on the session's zone.
        options.setdefault("connect_args", {}).setdefault("options", "-c TimeZone=UTC")
    return options


def engine_binds(url: str, engine_options: dict, configured: dict) -> dict:
    """The engines beside the main one (Flask-SQLAlchemy's binds). On PostgreSQL, the
    reading one: the same database, its connections always in autocommit, for the requests
    that only read (read_outside_a_transaction). A connection switched to autocommit for a
    request and back after it, inside a Session begun and ended around it, cost a reading
    request about 100 µs of CPU more than a connection checked out as it is."""
    binds = dict(configured)
    if url.startswith("postgresql"):
        binds.setdefault(
            READING_BIND, {**engine_options, "url": url, "isolation_level": "AUTOCOMMIT"}
        )
    return binds


def _on_sqlite_connect(dbapi_connection, _record):
    # The driver must not open transactions by itself; _on_sqlite_begin does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _on_sqlite_begin(connection):
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def init_app(app) -> None:
    with app.app_context():
        engine: Engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _on_sqlite_connect)
            event.listen(engine, "begin", _on_sqlite_begin)
        else:
            for each in db.engines.values():
                event.listen(each, "do_connect", _connect_keeping_prepared_statements)
                _ping_connections_left_idle(each, app.config["DATABASE_PING_AFTER_IDLE_SECONDS"])


class KeepingPreparedStatements(psycopg.Connection):
    """A PostgreSQL connection that keeps its prepared statements when it rolls back.

    psycopg prepares a statement the fifth time a connection runs it; PostgreSQL then plans it
    once, not at every run. At a rollback psycopg forgets them all and sends DEALLOCATE ALL, in
    case the transaction had created a table they name. PostgreSQL keeps a prepared statement
    through a rollback, and the app creates and drops no table on its connections (migrations
    run in a command of their own). A booking refused because the slot was just taken rolls
    back: under load every few seconds on each worker, so its statements were parsed and
    planned again most of the time (docs/request-costs.md, thirteenth pass).

    `rollback` is psycopg's own (`Connection.rollback`, through its internal `_exec_command`;
    psycopg is pinned in pyproject.toml), less the forgetting, and less the checks for
    psycopg's transaction blocks and pipelines, which the app does not use on these
    connections. A test holds that a refused booking leaves the statements prepared.
    """

    def rollback(self) -> None:
        with self.lock:
            if self.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                self.wait(self._exec_command(b"ROLLBACK"))


def _connect_keeping_prepared_statements(_dialect, _record, cargs, cparams):
    return KeepingPreparedStatements.connect(*cargs, **cparams)


_RETURNED_AT = "returned_to_pool_at"


def _ping_connections_left_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it sat unused for a while.

    A connection in steady use is known to be alive, and pinging it on every checkout (as
    `pool_pre_ping` does) was a round trip added to every request. One left idle may have been
    closed by the server, a restart or a firewall: that one is pinged, and replaced if dead.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()
        except Exception as error:
            # The pool discards this connection and checks out a new one.
            raise DisconnectionError("an idle connection was closed") from error


def is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def hold_write_lock() -> None:
    """Make the session's transaction a writing one: on SQLite it holds the write lock from its
    first statement, so what the caller re-checks stays true until it commits.

    A request that read outside a transaction until now reads in the session from here on.
    On PostgreSQL this is an ordinary transaction: the exclusion constraint is the arbiter.
    """
    release_reading_connection()
    session = db.session()
    if session.info.get(_WRITE_LOCK_HELD):
        return
    if session.get_bind().dialect.name != "sqlite":
        session.info[_WRITE_LOCK_HELD] = True
        return
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("hold_write_lock() called with unsaved changes in the session")
        session.commit()
    session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
    session.info[_WRITE_LOCK_HELD] = True


def read_outside_a_transaction() -> None:
    """The request only reads: on PostgreSQL its statements run on a connection of the
    reading engine (always in autocommit, outside the session), which spares the BEGIN and
    ROLLBACK round trips around them and the session's own work.

    Each statement sees what was committed when it began, as it would inside PostgreSQL's
    READ COMMITTED transaction (its default, and ours). SQLite keeps its transaction: it is
    in-process, a BEGIN costs it nothing. A write after it (hold_write_lock) starts a
    transaction of its own, in the session.
    """
    if READING_BIND not in db.engines:
        return
    if db.session.registry.has() and db.session().in_transaction():
        return  # already reading (or writing) in the session's transaction: stay there
    g.setdefault(_READING, None)  # connected on the first read (connection_for_reads)


def connection_for_reads() -> Connection:
    """The connection a read runs on: the request's own reading one when it only reads on
    PostgreSQL (read_outside_a_transaction), otherwise the session's."""
    if reading_outside_the_session():
        connection = g.get(_READING)
        if connection is None:
            connection = db.engines[READING_BIND].connect()
            setattr(g, _READING, connection)
        return connection
    return db.session.connection()


def reading_outside_the_session() -> bool:
    """Whether this request's reads run on the reading engine (connection_for_reads)."""
    return has_app_context() and _READING in g


def release_reading_connection() -> None:
    """The request's reading connection, if it took one, back to the pool (at its end, or
    when it starts writing); its reads are the session's from here on."""
    connection = g.pop(_READING, None) if has_app_context() else None
    if connection is not None:
        connection.close()


def holds_write_lock() -> bool:
    """Whether this request's transaction is a writing one (`hold_write_lock`)."""
    return bool(db.session().info.get(_WRITE_LOCK_HELD))


def mark_held(row) -> None:
    """`row` was just read as committed and held until this writing transaction ends (its
    lock taken by the statement that read it): the change about to be made to it may take
    that read as its own (`take_held_read`)."""
    db.session().info.setdefault(_JUST_READ_HELD, set()).add(inspect(row).identity_key)


def take_held_read(row) -> bool:
    """Whether `row` was read held (`mark_held`) in this transaction and not taken since: then it
    is as committed and held, and the caller, about to change it, needs no statement to read
    it again. Taken once: a second change reads it for itself."""
    held = db.session().info.get(_JUST_READ_HELD)
    if not held:
        return False
    key = inspect(row).identity_key
    if key not in held:
        return False
    held.discard(key)
    return True


@event.listens_for(Session, "after_transaction_end")
def _forget_write_lock(session, transaction):
    if transaction.parent is None:
        session.info.pop(_WRITE_LOCK_HELD, None)
        session.info.pop(_JUST_READ_HELD, None)


def one_of(column, name: str, *, dialect_name: str) -> ColumnElement[bool]:
    """`column` is one of the list passed as parameter `name`. On PostgreSQL `= ANY(array)`:
    one statement text whatever the list's length (psycopg prepares it once), and one
    parameter that driver_rows passes as it is; elsewhere `IN (...)`, expanded per length."""
    if dialect_name == "postgresql":
        return column == bindparam(name, type_=postgresql.ARRAY(Integer)).any_()
    return column.in_(bindparam(name, expanding=True))


def driver_rows(connection: Connection, statement: Executable, parameters: dict) -> list[tuple]:
    """The rows of a read on this connection (a session's), as plain tuples; on PostgreSQL
    through psycopg's own cursor.

    SQLAlchemy's execution context and Row objects were 40% of reading a week's busy times
    (about 160 of 400 µs), and most of the rest of a short request's statement. The statement
    is one whose parameters psycopg takes as they are (aware datetimes; lists given to
    `one_of`) and whose columns need no conversion (instants come back aware, in UTC, the
    connection's zone: as UTCDateTime reads them). Driver errors are SQLAlchemy's, as for any
    other statement: a connection the server ended is invalidated, and the request's answer
    is the 503 of an OperationalError. The engine's statement events fire as for any other.
    The statement is built once (a module's constant, or kept with @cache): its compiled
    text is kept for each statement object passed.
    """
    if connection.dialect.name != "postgresql":
        return connection.execute(statement, parameters).tuples().all()
    sql, constants = _driver_statement(statement)
    return _on_driver(connection, sql, {**constants, **parameters})


def converted_rows(
    connection: Connection, statement: Executable, parameters: dict
) -> list[tuple]:
    """driver_rows for a statement whose values need their types' conversions, such as a
    booking's `INSERT ... RETURNING`: each parameter is bound and each column read as
    SQLAlchemy would (UTCDateTime's instants, JSON), by the types of the statement's bind
    parameters and of its columns (declared by `TextClause.columns`, or RETURNING), without
    SQLAlchemy's execution context, its Row objects and the column descriptions it asks
    psycopg for (a booking's two writes spent as much there as psycopg spent sending them).
    The constants written in the statement are bound as driver_rows binds them (so a NULL is
    written `null()`, not None, which stands for a parameter).
    """
    if connection.dialect.name != "postgresql":
        return connection.execute(statement, parameters).tuples().all()
    sql, constants, bind_processors, column_processors = _converting_statement(statement)
    values = {**constants, **parameters}
    for name, process in bind_processors:
        if name in values:
            values[name] = process(values[name])
    rows = _on_driver(connection, sql, values)
    if not any(column_processors):
        return rows
    return [
        tuple(value if process is None else process(value)
              for process, value in zip(column_processors, row, strict=True))
        for row in rows
    ]


def _on_driver(connection: Connection, sql: str, values: dict) -> list[tuple]:
    driver_connection = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    # Who listens to the engine's statements (SQL logging, tracing, the tests' counts) sees
    # this one too.
    events = connection.dispatch
    try:
        with driver_connection.cursor() as cursor:
            events.before_cursor_execute(connection, cursor, sql, values, None, False)
            cursor.execute(sql, values)
            rows = cursor.fetchall()
            events.after_cursor_execute(connection, cursor, sql, values, None, False)
            return rows
    except dbapi.Error as error:
        ended = connection.dialect.is_disconnect(error, driver_connection, None)
        if ended:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, values, error, dbapi.Error, connection_invalidated=ended,
            dialect=connection.dialect, hide_parameters=connection.engine.hide_parameters,
        ) from error


_DIALECT = postgresql.psycopg.dialect()


@cache
def _driver_statement(statement: Executable) -> tuple[str, dict]:
    """psycopg's text of the statement, and the values of the constants written in it (a
    status compared with, say), converted as SQLAlchemy would bind them."""
    sql, constants, _ = _compiled_for_driver(statement)
    return sql, constants


@cache
def _converting_statement(statement: Executable) -> tuple[str, dict, tuple, tuple]:
    """_driver_statement, with the bind processors of its parameters (those that have one),
    and the result processor of each of its columns (None where there is none)."""
    sql, constants, bind_processors = _compiled_for_driver(statement)
    columns = tuple(
        column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
        for column in statement.exported_columns  # a select's, or a RETURNING's
    )
    return sql, constants, bind_processors, columns


def _compiled_for_driver(statement: Executable) -> tuple[str, dict, tuple]:
    """The statement's text for psycopg, its constants' bound values, and its parameters'
    bind processors (a parameter is a bind parameter given no value)."""
    compiled = statement.compile(dialect=_DIALECT)
    processors = {
        name: process
        for bind, name in compiled.bind_names.items()
        for process in (bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT),)
        if process is not None
    }
    constants = {
        name: processors[name](value) if name in processors else value
        for name, value in compiled.params.items()
        if value is not None
    }
    parameters = tuple(
        (name, processors[name])
        for name, value in compiled.params.items()
        if value is None and name in processors
    )
    return compiled.string, constants, parameters


def is_exclusion_violation(error: IntegrityError) -> bool:
    """PostgreSQL refused an overlapping appointment (SQLSTATE 23P01, exclusion_violation)."""
    return getattr(error.orig, "sqlstate", None) == "23P01"


def insert_for_dialect(table):
    """INSERT with this database's ON CONFLICT support (PostgreSQL's or SQLite's)."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def as_loaded(model: type[Row], values: Mapping[str, object], *, keep_held: bool = False) -> Row:
    """The row of these values, as committed, placed in the session as if a query had just
    loaded it: no statement, and none of the ORM's loading machinery (a booking's rows are
    written and read back as plain rows, then handed to the code that wants objects).

    A row the session already holds is given back with these values, as a query with
    populate_existing would; with `keep_held`, only its expired values are filled (the
    reference data, current but perhaps older than what this transaction holds).
    """
    session = db.session()
    held = session.identity_map.get(session.identity_key(model, (values["id"],)))
    if held is not None:
        state = inspect(held)
        names = state.expired_attributes & values.keys() if keep_held else values.keys()
        for name in names:
            set_committed_value(held, name, values[name])
        return held
    row = row_of(model, values)
    make_transient_to_detached(row)
    session.add(row)  # not held (looked up above): added as it is, as merge(load=False) would
    return row


def row_of(model: type[Row], values: Mapping[str, object]) -> Row:
    """A row object of these values in no session, made as the ORM's loader makes one: no
    constructor, the values straight in its dict (what the constructor's instrumented setters
    cost was most of handing a booking's rows over)."""
    row = inspect(model).class_manager.new_instance()
    row.__dict__.update(values)
    return row
