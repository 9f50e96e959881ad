"""`flask users create|token|revoke-tokens`: staff logins and their personal API tokens, from
the command line (CONTRACT section 1)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from booking.desk.accounts import (
    AccountRefused,
    create_staff_user,
    issue_api_token,
    revoke_api_tokens,
    staff_user_by_email,
)
from booking.extensions import db
from booking.models import StaffRole

user_commands = AppGroup("users", help="Staff logins for the back office (/desk).")

_OPTION_FOR_FIELD = {
    "email": "--email",
    "role": "--role",
    "therapist": "--therapist",
    "password": "password (stdin)",
}


@user_commands.command("create")
@click.option("--email", required=True, help="The login's email address.")
@click.option(
    "--role", required=True, type=click.Choice([str(role) for role in StaffRole]),
    help="admin: everything; front_desk: every calendar and patient; therapist: their own.",
)
@click.option("--therapist", "therapist_slug", metavar="SLUG", help="For a therapist login.")
@click.option(
    "--password-stdin", is_flag=True, required=True,
    help="Read the password from the first line of standard input (never the command line).",
)
def create_user(email: str, role: str, therapist_slug: str | None, password_stdin: bool):
    """Create a staff login."""
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = create_staff_user(email, role, therapist_slug, password, by="cli")
    except AccountRefused as refused:
        raise click.BadParameter(
            refused.message, param_hint=_OPTION_FOR_FIELD[refused.field]
        ) from None
    db.session.commit()
    who = f" for {user.therapist.name}" if user.therapist else ""
    click.echo(f"Created the {role} login {user.email}{who}.")


@user_commands.command("token")
@click.option("--email", required=True, help="The login's email address.")
def issue_token(email: str):
    """Print a new personal API token for /api/v1/staff (earlier tokens keep working)."""
    try:
        token = issue_api_token(staff_user_by_email(email), by="cli")
    except AccountRefused as refused:
        raise click.BadParameter(refused.message, param_hint="--email") from None
    db.session.commit()
    click.echo(token)


@user_commands.command("revoke-tokens")
@click.option("--email", required=True, help="The login's email address.")
def revoke_tokens(email: str):
    """End every API token of that login at once."""
    try:
        ended = revoke_api_tokens(staff_user_by_email(email), by="cli")
    except AccountRefused as refused:
        raise click.BadParameter(refused.message, param_hint="--email") from None
    db.session.commit()
    click.echo(f"Ended {ended} API token{'s' if ended != 1 else ''} of {email.strip().lower()}.")
