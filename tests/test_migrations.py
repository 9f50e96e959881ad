"""The migrations build exactly the tables the models describe, on each database."""

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from booking.extensions import db
from booking.models import Service


def test_the_migrated_database_matches_the_models(app):
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def _services_as_stored() -> dict[str, tuple]:
    """Each service's reminders and aftercare as the database holds them, read without models."""
    with db.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT slug, reminders, aftercare FROM services ORDER BY slug")
        ).all()
    # SQLite hands back JSON as text; PostgreSQL's driver decodes it.
    decoded = [
        [json.loads(value) if isinstance(value, str) else value for value in row[1:]]
        for row in rows
    ]
    return {row.slug: tuple(values) for row, values in zip(rows, decoded, strict=True)}


def test_reminder_offsets_go_from_text_to_minutes_and_back(app, clinic):
    db.session.remove()
    assert _services_as_stored()["dry-needling"] == ([2880, 120], [120, 2880])

    downgrade(revision="9e3a2b5c1d43")
    try:
        assert _services_as_stored()["dry-needling"] == (["48h", "2h"], ["2h", "48h"])
        assert _services_as_stored()["schedule-a-call"] == (["24h", "1h"], [])
        with db.engine.begin() as connection:  # a service the clinic wrote in minutes and days
            connection.execute(
                text("UPDATE services SET reminders = :written WHERE slug = 'pt-evaluation'"),
                {"written": json.dumps(["90m", "2d"])},
            )
    finally:
        upgrade()

    stored = _services_as_stored()
    assert stored["dry-needling"] == ([2880, 120], [120, 2880])
    assert stored["pt-evaluation"][0] == [90, 2880]
    advice = dict(db.session.execute(select(Service.slug, Service.aftercare_advice)).all())
    # Before the key existed, "needling" in the service said which advice it got.
    assert advice == {
        "dry-needling": "dry-needling",
        "pt-evaluation": "none",
        "schedule-a-call": "none",
    }
