"""Fixtures: an app on a fresh database (SQLite and PostgreSQL), the test clinic, factories.

Every database test runs twice, once per database. PostgreSQL comes from TEST_POSTGRES_URL
(`make test` starts a throwaway server) or, when that is unset, a server started here.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from booking import create_app, scheduling
from booking.clinic import clinic_file
from booking.clinic.reference import current_clinic
from booking.extensions import db
from booking.models import utc_now
from config import TestConfig, load_config
from tests.mail_server import Inbox
from tests.servers import dispose_engines, free_port, fresh_postgres_database, serving_in_a_thread

TESTS = Path(__file__).parent
CLINIC_FILE = TESTS / "clinic.toml"
CLINIC_ZONE = ZoneInfo("America/Detroit")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_server_url():
    url = os.environ.get("TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.postgres_server import running_postgres

    with running_postgres() as started:
        yield started


def _migrate(url: str) -> None:
    app = create_app({**load_config(TestConfig), "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        dispose_engines()


@pytest.fixture(scope="session")
def postgres_database_url(postgres_server_url):
    """This worker's own database, migrated once; tests empty it rather than recreate it."""
    url = fresh_postgres_database(postgres_server_url, f"booking_test_{_worker()}")
    _migrate(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "booking.db"
    _migrate(f"sqlite:///{path}")
    return path


def _empty_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = connection.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ).scalars()
        names = ", ".join(f'"{table}"' for table in tables)
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "booking.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def app_settings(database_url):
    """Settings for an app on this test's database; tests may add to them before `app`."""
    return {**load_config(TestConfig), "SQLALCHEMY_DATABASE_URI": database_url}


@pytest.fixture
def app(app_settings):
    app = create_app(app_settings)
    with app.app_context():
        yield app
        db.session.remove()
        dispose_engines()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def clinic(app):
    """The test clinic (tests/clinic.toml) loaded into the app's database."""
    clinic_file.apply_clinic(clinic_file.read_clinic_file(CLINIC_FILE))
    db.session.commit()
    return current_clinic()


def next_weekday(weekday: int, *, at_least_days: int = 3) -> date:
    """The first local date with this weekday (0 = Monday) at least that many days ahead."""
    day = utc_now().astimezone(CLINIC_ZONE).date() + timedelta(days=at_least_days)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time at the clinic as an aware datetime."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CLINIC_ZONE)


@pytest.fixture
def book(clinic):
    """Book through scheduling with sensible defaults; each test overrides what matters to it."""

    def book(
        service: str = "schedule-a-call",
        start: datetime | None = None,
        therapist: str | None = "alex-rivera",
        name: str = "Pat Example",
        email: str = "pat@example.com",
        **details,
    ):
        start = start or local(next_weekday(0), 9)
        appointment = scheduling.book_appointment(
            scheduling.bookable_service(service),
            start,
            scheduling.PatientDetails(name=name, email=email, **details),
            therapist_slug=therapist,
        )
        db.session.commit()
        return appointment

    return book


# --- mail ----------------------------------------------------------------------------------


@pytest.fixture
def smtp_inbox():
    """A real SMTP server on a free port; its `messages` are what arrived."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def smtp_settings(app_settings, smtp_inbox):
    """Point the app at smtp_inbox. List it before `app` (or `clinic`) in usefixtures."""
    app_settings.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_inbox.port, SMTP_STARTTLS=False)


# --- a real server and a real browser --------------------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def live_server(app):
    """The test's app served over HTTP on a free port, in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    with serving_in_a_thread(server):
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) at phone width; tests may resize it."""
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a screenshot under test-output/ for people to look at (ignored by git)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
