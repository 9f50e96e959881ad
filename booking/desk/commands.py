"""`flask users create`: staff logins, made from the command line (CONTRACT section 1)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from booking.desk.accounts import AccountRefused, create_staff_user
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
