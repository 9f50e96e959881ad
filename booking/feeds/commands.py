"""`flask feeds url|rotate THERAPIST_SLUG` (CONTRACT section 1), and `--clinic` for the front
desk's clinic-wide feed."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from booking.calendars.feed_tokens import (
    clinic_feed_url,
    feed_url_for,
    rotate_clinic_feed_token,
    rotate_feed_token,
)
from booking.clinic.reference import ClinicNotConfigured, current_clinic
from booking.extensions import db
from booking.models import Clinic, Therapist

feed_commands = AppGroup("feeds", help="Show or replace the secret calendar feed URLs.")


def _owner(slug: str | None, clinic_wide: bool) -> Therapist | Clinic:
    if clinic_wide == (slug is not None):
        raise click.UsageError("name a therapist (THERAPIST_SLUG) or give --clinic, not both")
    try:
        clinic = current_clinic()
    except ClinicNotConfigured as error:
        raise click.ClickException(str(error)) from None
    if clinic_wide:
        return clinic
    therapist = db.session.scalars(
        select(Therapist).where(Therapist.slug == slug, Therapist.active.is_(True))
    ).first()
    if therapist is None:
        known = ", ".join(
            db.session.scalars(
                select(Therapist.slug).where(Therapist.active.is_(True)).order_by(Therapist.slug)
            )
        )
        raise click.ClickException(f"there is no therapist {slug!r} (therapists: {known})")
    return therapist


@feed_commands.command("url")
@click.argument("slug", metavar="THERAPIST_SLUG", required=False)
@click.option("--clinic", "clinic_wide", is_flag=True, help="The front desk's clinic-wide feed.")
def feed_url(slug: str | None, clinic_wide: bool):
    """Print a therapist's secret feed URL (or, with --clinic, the clinic-wide one)."""
    owner = _owner(slug, clinic_wide)
    click.echo(clinic_feed_url(owner) if isinstance(owner, Clinic) else feed_url_for(owner))


@feed_commands.command("rotate")
@click.argument("slug", metavar="THERAPIST_SLUG", required=False)
@click.option("--clinic", "clinic_wide", is_flag=True, help="The front desk's clinic-wide feed.")
def rotate_feed(slug: str | None, clinic_wide: bool):
    """Replace a feed URL: the old one answers 404 from now on. Prints the new one."""
    owner = _owner(slug, clinic_wide)
    if isinstance(owner, Clinic):
        rotate_clinic_feed_token(owner)
        url = clinic_feed_url(owner)
    else:
        rotate_feed_token(owner)
        url = feed_url_for(owner)
    db.session.commit()
    click.echo(url)
