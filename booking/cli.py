"""The `flask --app wsgi ...` commands of CONTRACT section 1."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from booking import scheduling
from booking.clinic import clinic_file
from booking.clinic.reference import clinic_zone
from booking.database.backups import backup_command
from booking.desk.commands import user_commands
from booking.extensions import db
from booking.feeds.commands import feed_commands
from booking.models import Appointment, Clinic, utc_now
from booking.notifications import dispatcher
from booking.notifications.periodic_work import scheduler_commands
from booking.patients.details import PatientDetails, details_context

clinic_commands = AppGroup("clinic", help="Load or export the clinic file.")


@clinic_commands.command("load")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def load_clinic(path: Path):
    """Create or update the clinic, its services and therapists from a clinic file."""
    try:
        spec = clinic_file.read_clinic_file(path)
    except clinic_file.ClinicFileError as error:
        raise click.ClickException(str(error)) from None
    changes = clinic_file.apply_clinic(spec)
    db.session.commit()
    if changes:
        for change in changes:
            click.echo(change)
    else:
        click.echo("Nothing to change: the clinic already matches the file.")


@clinic_commands.command("export")
def export_clinic():
    """Print the current clinic as a clinic file."""
    click.echo(clinic_file.export_clinic(), nl=False)


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when a clinic is already loaded.")
def seed_demo(if_empty: bool):
    """Load the demo clinic (Crawl Walk Jump Run) with a few sample appointments."""
    if if_empty and db.session.scalar(select(func.count()).select_from(Clinic)):
        click.echo("A clinic is already loaded; leaving it as it is.")
        return
    clinic_file.apply_clinic(clinic_file.read_clinic_file(clinic_file.DEMO_CLINIC_FILE))
    db.session.commit()
    booked = _book_sample_appointments()
    click.echo(f"Demo clinic loaded, with {booked} sample appointments.")


SAMPLE_VISITS = (
    ("schedule-a-call", "Jordan Miller", "jordan.miller@example.com", "", None),
    ("pt-evaluation", "Sam Okafor", "sam.okafor@example.com", "", None),
    ("slp-evaluation", "Maya Chen", "lin.chen@example.com", "Lin Chen", "2019-04-12"),
    ("ot-evaluation", "Leo Chen", "lin.chen@example.com", "Lin Chen", "2017-09-30"),
)


def _book_sample_appointments() -> int:
    if db.session.scalar(select(func.count()).select_from(Appointment)):
        return 0
    first_day = (utc_now() + timedelta(days=2)).astimezone(clinic_zone()).date()
    booked = 0
    for index, (service_slug, name, email, guardian, born) in enumerate(SAMPLE_VISITS):
        service = scheduling.bookable_service(service_slug)
        slots = scheduling.free_slots(service, first_day, first_day + timedelta(days=13))
        if not slots:
            continue
        slot = slots[min(index * 7, len(slots) - 1)]
        scheduling.book_appointment(
            service,
            slot.start,
            PatientDetails.model_validate(
                {"name": name, "email": email, "phone": f"+1 586 555 01{20 + index:02d}",
                 "date_of_birth": born, "guardian_name": guardian},
                context=details_context(service),
            ),
            therapist_slug=slot.therapist,
            booked_by="seed-demo",
        )
        db.session.commit()
        booked += 1
    return booked


notification_commands = AppGroup("notifications", help="Send confirmations and reminders.")


def _instant(_context, _parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time like 2026-12-01T09:00:00-05:00"
        ) from None
    if instant.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset; write it like 2026-12-01T09:00:00-05:00"
        )
    return instant


@notification_commands.command("send-due")
@click.option(
    "--now",
    callback=_instant,
    metavar="ISO8601",
    help="Send what is due at this time (with an offset) instead of the current time.",
)
def send_due(now: datetime | None):
    """Send every notification due now (or at --now) once, then exit."""
    click.echo(str(dispatcher.send_due(now)))  # no --now: the clock, read per batch


def register_commands(app: Flask) -> None:
    app.cli.add_command(clinic_commands)
    app.cli.add_command(seed_demo)
    app.cli.add_command(notification_commands)
    app.cli.add_command(feed_commands)
    app.cli.add_command(user_commands)
    app.cli.add_command(scheduler_commands)
    app.cli.add_command(backup_command)
