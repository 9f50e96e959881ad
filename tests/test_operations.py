"""Running the service for real: the health check, the dispatcher's heartbeat, backups that
restore, and the app behind a TLS-terminating reverse proxy (docs/deploy.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from booking import create_app
from booking.extensions import db
from booking.models import Notification, record_dispatcher_run, utc_now
from booking.notifications.dispatcher import send_due
from booking.patients.manage_links import manage_token_for
from config import TestConfig, load_config
from tests.conftest import _worker, local, next_weekday
from tests.postgres_server import _pg_bin
from tests.servers import dispose_engines, free_port, fresh_postgres_database

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BACKUP_SCRIPT = PROJECT_ROOT / "docs" / "deploy" / "clinic-booking-backup"
MONDAY = next_weekday(0)


def health(client) -> tuple[int, dict]:
    answer = client.get("/healthz")
    return answer.status_code, answer.json


# --- the health check ------------------------------------------------------------------------


def test_health_is_ok_right_after_the_dispatcher_ran(app, client, clinic):
    before = utc_now()
    result = app.test_cli_runner().invoke(args=["notifications", "send-due"])
    assert result.exit_code == 0, result.output

    status, body = health(client)

    assert status == 200
    assert body["database"] == "ok"
    assert body["dispatcher"] == "ok"
    last_run = datetime.fromisoformat(body["dispatcher_last_run"])
    assert before <= last_run <= utc_now()


def test_health_says_never_when_no_dispatcher_has_run(client, clinic):
    assert health(client) == (
        200, {"database": "ok", "dispatcher": "never", "dispatcher_last_run": None}
    )


def test_a_dispatcher_silent_for_minutes_is_late_but_the_web_still_serves(client, clinic):
    five_minutes_ago = utc_now() - timedelta(minutes=5)
    record_dispatcher_run(five_minutes_ago)
    db.session.commit()

    status, body = health(client)

    assert status == 200
    assert body["dispatcher"] == "late"
    assert datetime.fromisoformat(body["dispatcher_last_run"]) == five_minutes_ago
    # A dispatcher run, even one driven at a made-up instant, brings it back to "ok".
    send_due(now=utc_now() + timedelta(days=3))
    assert health(client)[1]["dispatcher"] == "ok"


@pytest.mark.parametrize("where", ["postgresql-on-a-closed-port", "sqlite-in-a-missing-folder"])
def test_health_is_503_when_the_database_cannot_be_reached(where, tmp_path):
    url = (
        f"postgresql+psycopg://booking@127.0.0.1:{free_port()}/booking"
        if where.startswith("postgresql")
        else f"sqlite:///{tmp_path / 'no-such-folder' / 'booking.db'}"
    )
    unreachable = create_app({**load_config(TestConfig), "SQLALCHEMY_DATABASE_URI": url})

    answer = unreachable.test_client().get("/healthz")

    assert answer.status_code == 503
    assert answer.json == {"database": "unavailable"}
    assert answer.headers["Cache-Control"] == "no-store"


# --- behind nginx ----------------------------------------------------------------------------


@pytest.mark.parametrize(("trusted_proxies", "hsts"), [(1, True), (0, False)])
def test_https_at_the_proxy_makes_the_app_send_hsts_only_when_the_proxy_is_trusted(
    app_settings, trusted_proxies, hsts
):
    behind_nginx = create_app({**app_settings, "TRUSTED_PROXIES": trusted_proxies})
    answer = behind_nginx.test_client().get(
        "/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    )
    assert answer.status_code == 200
    assert ("Strict-Transport-Security" in answer.headers) is hsts
    with behind_nginx.app_context():
        dispose_engines()


def test_rate_limits_count_each_client_behind_the_proxy_separately(app_settings):
    behind_nginx = create_app(
        {**app_settings, "TRUSTED_PROXIES": 1, "RATELIMIT_ENABLED": True,
         "RATE_LIMIT_LOGIN": "2 per minute"}
    )
    client = behind_nginx.test_client()

    def log_in_from(address: str) -> int:
        return client.post(
            "/desk/login",
            data={"email": "nobody@clinic.example", "password": "a wrong guess"},
            headers={"X-Forwarded-For": address},
        ).status_code

    assert [log_in_from("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    # Another patient behind the same proxy is not held up by the first one's tries.
    assert log_in_from("198.51.100.20") == 401
    with behind_nginx.app_context():
        dispose_engines()


# --- backups -----------------------------------------------------------------------------------


def run_backup_script(database_url: str, backup_dir: Path) -> Path:
    """The documented daily backup (docs/deploy/clinic-booking-backup), run as the timer would."""
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "CLINIC_BOOKING_DIR": str(PROJECT_ROOT),
        "CLINIC_BOOKING_VENV": str(Path(sys.executable).parent.parent),
        "BACKUP_DIR": str(backup_dir),
        "PG_DUMP": _pg_bin("pg_dump"),
    }
    finished = subprocess.run(
        [str(BACKUP_SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    [backup] = backup_dir.glob("booking-2*")
    return backup


def restore_postgresql(backup: Path, server_url: str) -> str:
    """docs/deploy.md's restore: a new database owned by the app's role, then pg_restore."""
    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = 'clinic_booking'")):
            connection.execute(text("CREATE ROLE clinic_booking LOGIN"))
    admin.dispose()
    url = fresh_postgres_database(server_url, f"booking_restored_{_worker()}")
    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(f'ALTER DATABASE "{make_url(url).database}" OWNER TO clinic_booking')
        )
    admin.dispose()
    libpq_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    finished = subprocess.run(
        [_pg_bin("pg_restore"), "--no-owner", "--role=clinic_booking", "--exit-on-error",
         "--dbname", libpq_url, str(backup)],
        capture_output=True, text=True, timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    return url


def notifications_of(appointment_id: int) -> list[tuple[str, str, datetime]]:
    return [
        (row.kind, row.status, row.due_at)
        for row in db.session.scalars(
            select(Notification)
            .where(Notification.appointment_id == appointment_id)
            .order_by(Notification.due_at, Notification.id)
        )
    ]


@pytest.mark.usefixtures("smtp_settings")
def test_a_nightly_backup_of_the_live_database_restores_the_booked_visit_and_its_emails(
    app, app_settings, book, smtp_inbox, database_url, tmp_path, request
):
    visit = book(start=local(MONDAY, 9), name="Robin Park", email="robin@example.com")
    token = manage_token_for(visit)
    owed = notifications_of(visit.id)
    old_backup = tmp_path / "backups" / "booking-20000101T000000Z.dump"
    old_backup.parent.mkdir()
    old_backup.write_bytes(b"a backup from long ago")
    os.utime(old_backup, (time.time() - 30 * 86400,) * 2)
    db.session.scalar(select(Notification.id))  # a reader holds the database open meanwhile

    backup = run_backup_script(database_url, tmp_path / "backups")
    later = book(start=local(MONDAY, 11), name="Kim Lee", email="kim@example.com")

    assert not old_backup.exists()  # older than BACKUP_KEEP_DAYS: pruned after the backup
    if database_url.startswith("sqlite"):
        restored_url = f"sqlite:///{tmp_path / 'restored.db'}"
        shutil.copy(backup, tmp_path / "restored.db")
    else:
        restored_url = restore_postgresql(backup, request.getfixturevalue("postgres_server_url"))
    restored = create_app({**app_settings, "SQLALCHEMY_DATABASE_URI": restored_url})
    client = restored.test_client()
    try:
        shown = client.get(
            f"/api/v1/appointments/{visit.id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert shown.status_code == 200
        assert shown.json["status"] == "confirmed"
        assert datetime.fromisoformat(shown.json["start"]) == local(MONDAY, 9)
        # What was booked after the backup is not in it.
        later_token = manage_token_for(later)
        assert client.get(
            f"/api/v1/appointments/{later.id}", headers={"Authorization": f"Bearer {later_token}"}
        ).status_code == 404
        with restored.app_context():
            assert notifications_of(visit.id) == owed
            smtp_inbox.take()
            send_due()
            [confirmation] = smtp_inbox.take()
            db.session.remove()
            dispose_engines()
        assert confirmation["X-Booking-Notification"] == "confirmation"
        assert confirmation["To"].addresses[0].addr_spec == "robin@example.com"
    finally:
        if not restored_url.startswith("sqlite"):
            admin = create_engine(
                make_url(request.getfixturevalue("postgres_server_url")),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as connection:
                connection.execute(
                    text(f'DROP DATABASE "{make_url(restored_url).database}" WITH (FORCE)')
                )
            admin.dispose()


def test_a_backup_into_a_missing_folder_fails_clearly(app, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["backup", str(tmp_path / "no-such-folder" / "booking.dump")]
    )
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert not (tmp_path / "no-such-folder").exists()
