"""Real server processes for tests and benchmarks: gunicorn serving the app on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def all_at_once(
    calls: list[Callable[[requests.Session], requests.Response]],
) -> list[requests.Response]:
    """Each call from a thread and a session of its own, all released at the same moment, as
    patients or staff clicking at the same second; the answers in the calls' order."""
    gate = threading.Barrier(len(calls))

    def send(call):
        with requests.Session() as session:
            gate.wait()
            return call(session)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_gunicorn(
    database_url: str, *, workers: int | None = 4,
    secret_key: str = "test-secret-key-not-for-production",
    extra_env: dict | None = None, gunicorn_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """gunicorn with `workers` processes on this database (None: as many as
    `gunicorn.conf.py` starts, one a core); yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret_key,
        "RATE_LIMITS": "off",
        "BOOKING_SCHEDULER": "off",
        **(extra_env or {}),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), *(("--workers", str(workers)) if workers else ()),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", *gunicorn_args, "wsgi:app"],
        cwd=PROJECT_ROOT, env=env, start_new_session=True,
    )
    # gunicorn's own TLS (`--certfile`): its certificate is the one to trust.
    certificate = (gunicorn_args[gunicorn_args.index("--certfile") + 1]
                   if "--certfile" in gunicorn_args else None)
    base_url = f"{'https' if certificate else 'http'}://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, server, certificate or True)
        yield base_url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_until_serving(
    base_url: str, server: subprocess.Popen, verify: str | bool, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=5, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not start serving in time")


def fresh_postgres_database(server_url: str, name: str) -> str:
    """Drop and create database `name` on that PostgreSQL server; return its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def gather_statistics(database_url: str) -> None:
    """ANALYZE that database, as PostgreSQL's autovacuum does in a clinic's (a table's
    statistics are gathered again once a tenth of it has changed). A benchmark that grows a
    table from nothing to thousands of rows in seconds calls it after a warm-up: the plans
    PostgreSQL made for an empty table, which a connection keeps for its prepared statements
    until the statistics change, would make it measure sequential scans."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()


@contextlib.contextmanager
def clinic_app(database_url: str, clinic_text: str, *, secret_key: str):
    """An app on that database, migrated, with this clinic file loaded; inside its context."""
    from flask_migrate import upgrade

    from booking import create_app
    from booking.clinic import clinic_file
    from booking.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": secret_key})
    with app.app_context():
        upgrade()
        clinic_file.apply_clinic(clinic_file.parse_clinic_file(clinic_text, "bench.toml"))
        db.session.commit()
        yield app
        db.session.remove()
        dispose_engines()


def dispose_engines() -> None:
    """Close the pooled connections of every engine of the app in context (the main one, and
    on PostgreSQL the reading one)."""
    from booking.extensions import db

    for engine in db.engines.values():
        engine.dispose()


@contextlib.contextmanager
def serving_in_a_thread(server) -> Iterator[object]:
    """Run a socketserver-style server (serve_forever/shutdown) in a thread while inside."""
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
