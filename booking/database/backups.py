"""Backing up the clinic's database while it serves: `flask --app wsgi backup PATH`.

PostgreSQL: `pg_dump` in its custom format (restore with `pg_restore`, docs/deploy.md), given
the connection through PG* variables so the password never shows in the process list.
SQLite: the online backup API, which copies a consistent snapshot page by page while the
app keeps reading and writing. Either way the file appears complete or not at all.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import click
from flask import current_app
from sqlalchemy.engine import make_url

from booking.extensions import db


class BackupFailed(Exception):
    pass


def back_up_database(path: Path) -> None:
    """Write a backup of the app's database to `path` (replaced if it exists)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        if db.engine.dialect.name == "postgresql":
            _dump_postgresql(partial)
        else:
            _copy_sqlite(partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _dump_postgresql(path: Path) -> None:
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    env = {**os.environ}
    for variable, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            env[variable] = str(value)
    command = [current_app.config["PG_DUMP"], "--format=custom", "--file", str(path)]
    try:
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
    except FileNotFoundError:
        raise BackupFailed(
            f"{command[0]} was not found: install postgresql-client, or set PG_DUMP"
        ) from None
    if finished.returncode != 0:
        raise BackupFailed(f"pg_dump failed: {finished.stderr.strip()}")


def _copy_sqlite(path: Path) -> None:
    source = db.engine.raw_connection()
    try:
        target = sqlite3.connect(path)
        try:
            source.driver_connection.backup(target)
        finally:
            target.close()
    finally:
        source.close()


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def backup_command(path: Path):
    """Back up the database to PATH while the app runs (pg_dump -Fc, or SQLite's backup)."""
    try:
        back_up_database(path)
    except (BackupFailed, OSError, sqlite3.Error) as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(f"Backed up to {path} ({path.stat().st_size} bytes).")
