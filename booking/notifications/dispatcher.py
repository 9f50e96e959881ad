"""Sending what is due: claim due notifications, send them over one SMTP connection, record.

A claim is a short transaction that marks rows `sending` with a lease, so that any number of
dispatchers on any number of hosts never take the same row (PostgreSQL: FOR UPDATE SKIP
LOCKED; SQLite: the write lock). A lease that runs out (a dispatcher died mid-batch) makes the
row claimable again. Failures are retried with backoff, then marked `failed` for staff.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select

from booking.calendars import current_clinic
from booking.database import hold_write_lock, is_postgresql
from booking.extensions import db
from booking.models import Notification, NotificationStatus
from booking.notifications.messages import email_for, sender_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0

    def __str__(self) -> str:
        return f"sent {self.sent}, failed {self.failed}, deferred {self.deferred}"


def send_due(now: datetime) -> DispatchReport:
    """Send every notification due at `now`, batch after batch, until none is left."""
    if now.tzinfo is None:
        raise ValueError("send_due needs an aware datetime")
    sent = failed = deferred = 0
    with _MailServer() as server:
        while claimed := _claim_due(now):
            for notification_id in claimed:
                outcome = _send_one(server, notification_id, now)
                sent += outcome == NotificationStatus.SENT
                failed += outcome == NotificationStatus.FAILED
                deferred += outcome == NotificationStatus.PENDING
    report = DispatchReport(sent=sent, failed=failed, deferred=deferred)
    log.info("notifications: %s", report)
    return report


def _claim_due(now: datetime) -> list[int]:
    hold_write_lock()
    due = (
        select(Notification)
        .where(
            or_(
                and_(
                    Notification.status == NotificationStatus.PENDING,
                    Notification.due_at <= now,
                ),
                and_(
                    Notification.status == NotificationStatus.SENDING,
                    Notification.lease_until < now,
                ),
            )
        )
        .order_by(Notification.due_at, Notification.id)
        .limit(current_app.config["NOTIFICATION_BATCH_SIZE"])
    )
    if is_postgresql():
        due = due.with_for_update(skip_locked=True)
    lease_until = now + timedelta(seconds=current_app.config["NOTIFICATION_LEASE_SECONDS"])
    claimed = []
    for notification in db.session.scalars(due):
        notification.status = NotificationStatus.SENDING
        notification.lease_until = lease_until
        claimed.append(notification.id)
    db.session.commit()
    return claimed


def _send_one(server: _MailServer, notification_id: int, now: datetime) -> str:
    notification = db.session.get(Notification, notification_id)
    message = email_for(notification, now=now)
    recipient = notification.appointment.patient.email
    sender = sender_address(current_clinic())
    db.session.rollback()  # end the read: nothing is held while the mail server answers
    try:
        server.send(message, sender, recipient)
        error = None
    except (smtplib.SMTPException, OSError) as problem:
        error = _describe(problem)

    hold_write_lock()
    notification = db.session.get(Notification, notification_id)
    notification.lease_until = None
    if error is None:
        notification.status = NotificationStatus.SENT
        notification.sent_at = now
    else:
        notification.attempts += 1
        notification.last_error = error
        if notification.attempts < current_app.config["NOTIFICATION_MAX_ATTEMPTS"]:
            notification.status = NotificationStatus.PENDING
            notification.due_at = now + timedelta(minutes=2**notification.attempts)
        else:
            notification.status = NotificationStatus.FAILED
        # The notification id, never the address: patient data stays out of logs.
        log.warning(
            "notification %s not sent (try %s): %s", notification_id, notification.attempts, error
        )
    outcome = notification.status
    db.session.commit()
    return outcome


def _describe(problem: Exception) -> str:
    """What went wrong, without the addresses some SMTP errors carry."""
    if isinstance(problem, smtplib.SMTPResponseException):
        reply = problem.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return f"{type(problem).__name__}: {problem.smtp_code} {text}"[:500]
    if isinstance(problem, smtplib.SMTPRecipientsRefused):
        return "SMTPRecipientsRefused: the mail server refused the recipient"
    return f"{type(problem).__name__}: {problem}"[:500]


class _MailServer:
    """One SMTP connection for a whole run, opened at the first message, reopened if lost."""

    def __init__(self):
        self._connection: smtplib.SMTP | None = None

    def __enter__(self) -> _MailServer:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                self._connection.close()

    def send(self, message, sender: str, recipient: str) -> None:
        if self._connection is None:
            self._connection = self._connect()
        try:
            self._connection.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPServerDisconnected:
            self._connection = None
            raise

    def _connect(self) -> smtplib.SMTP:
        config = current_app.config
        connection = smtplib.SMTP(
            config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT_SECONDS"]
        )
        try:
            if config["SMTP_STARTTLS"]:
                connection.starttls()
            if config.get("SMTP_USERNAME"):
                connection.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
        except BaseException:
            connection.close()
            raise
        return connection
