"""A throwaway PostgreSQL server for the test suite.

`python tests/postgres_server.py -- COMMAND...` runs COMMAND with TEST_POSTGRES_URL pointing at
a fresh server in a temporary folder, stopped and removed afterwards. With DATABASE_URL set
(a PostgreSQL URL), that server is used instead and nothing is started.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _pg_bin(name: str) -> str:
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} was not found: install postgresql")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the packaged `postgres` account runs it then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


# The data folder and options of each server running_postgres() started, by URL (for
# restart_postgres).
_STARTED: dict[str, tuple[Path, str]] = {}


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a private server on a free loopback port; yield its URL."""
    base = Path(tempfile.mkdtemp(prefix="booking-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    try:
        subprocess.run(
            _as_server_user(
                [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-sync"]
            ),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300 -c shared_buffers=128MB"
        )
        subprocess.run(
            _as_server_user(
                [_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"),
                 "-w", "-t", "60", "start"]
            ),
            check=True, stdout=subprocess.DEVNULL,
        )
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        _STARTED[url] = (data, options)
        yield url
    finally:
        _STARTED.pop(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", None)
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_server_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(base, ignore_errors=True)


def restart_postgres(url: str, *, down_seconds: float = 0) -> None:
    """Stop a server running_postgres() started (fast: connections are cut, as in a failover),
    leave it down this long, and start it again with its options; return once it serves."""
    data, options = _STARTED[url]
    pg_ctl = _pg_bin("pg_ctl")
    subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                   check=True, stdout=subprocess.DEVNULL)
    time.sleep(down_seconds)
    subprocess.run(
        _as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(data.parent / "log"),
                         "-w", "-t", "60", "start"]),
        check=True, stdout=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    given = os.environ.get("DATABASE_URL", "")
    if given.startswith(("postgres://", "postgresql")):
        return subprocess.call(command, env={**os.environ, "TEST_POSTGRES_URL": given})
    with running_postgres() as url:
        started = time.monotonic()
        code = subprocess.call(command, env={**os.environ, "TEST_POSTGRES_URL": url})
        print(f"(tests ran against PostgreSQL at {url} for {time.monotonic() - started:.0f} s)")
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
