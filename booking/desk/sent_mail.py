"""Sent mail, for admins: the messages written as .eml files when no mail server is set.

With MAIL_DELIVERY "files" (development: `make run` without SMTP_HOST) the dispatcher writes
each message to MAIL_OUTBOX_FOLDER instead of sending it; these pages list them, newest
first, and show one as a mail client would: its headers, the text part, the HTML part (on
its own page, sandboxed) and the calendar file. Admins only: the mail holds patient details.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from flask import Blueprint, Response, abort, current_app, render_template

from booking.desk.access import ADMIN, allowed

# Only names the dispatcher writes: nothing else in (or outside) the folder can be read.
_WRITTEN_NAME = re.compile(r"\d{8}T\d{12}Z-notification-\d+\.eml")

# The HTML part of a message is shown as the patient's mail client would, on a page of its
# own with no script, no form and no request to anywhere (its styles are inline).
HTML_PART_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


sent_mail = Blueprint("sent_mail", __name__)


@dataclass(frozen=True)
class SentMessage:
    filename: str
    sent_at: datetime | None
    to: str
    subject: str
    kind: str


@sent_mail.get("/sent-mail")
@allowed(*ADMIN)
def message_list():
    delivery = current_app.config["MAIL_DELIVERY"]
    messages = _written_messages() if delivery == "files" else []
    return render_template(
        "desk/sent_mail.html",
        delivery=delivery,
        folder=current_app.config["MAIL_OUTBOX_FOLDER"],
        messages=messages,
    )


@sent_mail.get("/sent-mail/<filename>")
@allowed(*ADMIN)
def message(filename: str):
    mail = _read(filename)
    text = mail.get_body(("plain",))
    calendars = [
        part.get_content()
        for part in mail.iter_attachments()
        if part.get_content_type() == "text/calendar"
    ]
    return render_template(
        "desk/sent_message.html",
        filename=filename,
        summary=_summary(filename, mail),
        sender=str(mail["From"] or ""),
        text=text.get_content() if text is not None else "",
        has_html=mail.get_body(("html",)) is not None,
        calendars=calendars,
    )


@sent_mail.get("/sent-mail/<filename>/html")
@allowed(*ADMIN)
def message_html(filename: str):
    html = _read(filename).get_body(("html",))
    if html is None:
        abort(404)
    response = Response(html.get_content(), content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = HTML_PART_POLICY
    return response


def _written_messages() -> list[SentMessage]:
    folder = current_app.config["MAIL_OUTBOX_FOLDER"]
    try:
        names = [name for name in os.listdir(folder) if _WRITTEN_NAME.fullmatch(name)]
    except FileNotFoundError:
        return []
    # The names start with the time they were written: newest first by name alone.
    return [_summary(name, _read(name)) for name in sorted(names, reverse=True)]


def _read(filename: str) -> EmailMessage:
    if not _WRITTEN_NAME.fullmatch(filename):
        abort(404)
    path = os.path.join(current_app.config["MAIL_OUTBOX_FOLDER"], filename)
    try:
        with open(path, "rb") as handle:
            return message_from_bytes(handle.read(), policy=policy.default)
    except FileNotFoundError:
        abort(404)


def _summary(filename: str, mail: EmailMessage) -> SentMessage:
    try:
        sent_at = parsedate_to_datetime(str(mail["Date"]))
    except (TypeError, ValueError):
        sent_at = None
    return SentMessage(
        filename=filename,
        sent_at=sent_at,
        to=str(mail["To"] or ""),
        subject=str(mail["Subject"] or ""),
        kind=str(mail["X-Booking-Notification"] or ""),
    )
