"""Sending what is due: claim due notifications, send them over one SMTP connection, record.

A claim is one short UPDATE that marks a batch of rows `sending` with a lease, so that any
number of dispatchers on any number of hosts never take the same row (PostgreSQL: FOR UPDATE
SKIP LOCKED; SQLite: the write lock). A lease that runs out (a dispatcher died mid-batch) makes
the row claimable again. Each message is marked sent the moment the mail server takes it, so a
dispatcher killed mid-batch leaves at most the one message in flight to be sent twice.
Failures (the mail server refused, or the email could not even be rendered) are retried with
backoff, then marked `failed` for staff. A reminder that comes due once its visit has begun
(a dispatcher that was down all night) is not sent but marked `skipped`: it would only confuse.

Where mail goes is a setting: MAIL_DELIVERY "smtp" (the mail server) or "files" (one .eml
file per message in MAIL_OUTBOX_FOLDER, for development without a mail server; the back
office lists them for admins).
"""

from __future__ import annotations

import logging
import os
import smtplib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, and_, bindparam, null, or_, select, update
from sqlalchemy.orm import joinedload

from booking.clinic.reference import current_clinic
from booking.database import converted_rows, hold_write_lock, is_postgresql
from booking.extensions import db
from booking.models import (
    Appointment,
    Notification,
    NotificationKind,
    NotificationStatus,
    WaitlistOffer,
    WaitlistStatus,
    record_dispatcher_run,
    utc_now,
)
from booking.notifications.messages import as_bytes, email_for, sender_address
from booking.patients.health_forms import missing_forms
from booking.rules.waitlist import offer_expiry
from booking.scheduling import waitlist_offers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0  # reminders that came due after their visit began

    def __str__(self) -> str:
        counts = f"sent {self.sent}, failed {self.failed}, deferred {self.deferred}"
        return counts + (f", skipped {self.skipped}" if self.skipped else "")


@dataclass(frozen=True)
class _Claim:
    """A batch this dispatcher holds until `lease_until`."""

    ids: list[int]
    lease_until: datetime


@dataclass(frozen=True)
class _Outgoing:
    notification_id: int
    message: bytes | None  # as the mail server receives it
    sender: str
    recipient: str
    error: str | None  # set when the email could not be rendered
    too_late: bool = False  # a reminder whose visit has begun: recorded as skipped, not sent
    # A forms reminder whose forms were completed meanwhile: recorded as dropped, not sent.
    not_needed: bool = False
    # A waitlist offer's mail: its time to claim starts when the mail server takes it.
    offer_id: int | None = None
    offer_claim_by: datetime | None = None


def send_due(now: datetime | None = None) -> DispatchReport:
    """Send every notification due at `now`, batch after batch, until none is left.

    With no `now` the clock is read afresh for every claim (what the scheduler does), so the
    last batch of a long run gets as long a lease as the first.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("send_due needs an aware datetime")
    clock: Callable[[], datetime] = utc_now if now is None else (lambda: now)
    # The health check's heartbeat: one statement per run, at the real time (not `now`).
    hold_write_lock()
    record_dispatcher_run(utc_now())
    db.session.commit()
    counts = {
        NotificationStatus.SENT: 0,
        NotificationStatus.FAILED: 0,
        NotificationStatus.SKIPPED: 0,
    }
    deferred = 0
    with _mail_delivery() as server, _SentMarks() as marks:
        unreachable = False
        while not unreachable and (claim := _claim_due(clock())):
            batch = _render_batch(claim, clock())
            for position, outgoing in enumerate(batch):
                try:
                    outcome = _send_one(server, marks, outgoing, claim, clock)
                except MailServerUnreachable as problem:
                    # Not the messages' fault: they wait, untried, for the next run.
                    unsent = [later.notification_id for later in batch[position:]]
                    deferred += _release(unsent, claim)
                    # Said once per outage, not at every run (every 15 s) until it ends.
                    log.log(
                        logging.INFO if _outage.noticed else logging.WARNING,
                        "notifications: the mail server cannot be reached (%s); "
                        "%s left for the next run",
                        problem,
                        len(unsent),
                    )
                    _outage.noticed = True
                    unreachable = True
                    break
                if outcome in counts:
                    counts[outcome] += 1
                elif outcome == NotificationStatus.PENDING:
                    deferred += 1
    report = DispatchReport(
        sent=counts[NotificationStatus.SENT],
        failed=counts[NotificationStatus.FAILED],
        deferred=deferred,
        skipped=counts[NotificationStatus.SKIPPED],
    )
    if report != DispatchReport():
        log.info("notifications: %s", report)
    return report


def _claim_due(now: datetime) -> _Claim | None:
    hold_write_lock()
    due = (
        select(Notification.id)
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
    claimed = db.session.scalars(
        update(Notification)
        .where(Notification.id.in_(due.scalar_subquery()))
        .values(status=NotificationStatus.SENDING, lease_until=lease_until)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return _Claim(ids=sorted(claimed), lease_until=lease_until) if claimed else None


def _render_batch(claim: _Claim, now: datetime) -> list[_Outgoing]:
    """Every email of the batch, from one query for the rows, their visits, patients, services.

    The read ends before any mail is sent: nothing is held while the mail server answers.
    """
    notifications = db.session.scalars(
        select(Notification)
        .where(Notification.id.in_(claim.ids))
        .order_by(Notification.due_at, Notification.id)
        .options(
            joinedload(Notification.appointment).joinedload(Appointment.patient),
            joinedload(Notification.appointment).joinedload(Appointment.service),
            joinedload(Notification.appointment).joinedload(Appointment.therapist),
            joinedload(Notification.waitlist_offer).joinedload(WaitlistOffer.entry),
            joinedload(Notification.waitlist_offer).joinedload(WaitlistOffer.therapist),
        )
    ).all()
    clinic = current_clinic()
    sender = sender_address(clinic)
    batch = []
    for notification in notifications:
        offer = notification.waitlist_offer
        recipient = (
            offer.entry.patient_email if offer is not None
            else notification.appointment.patient.email
        )
        offer_id = offer.id if offer is not None else None
        if is_too_late(notification, now):
            batch.append(_Outgoing(notification.id, None, sender, recipient, None, too_late=True))
            continue
        if notification.kind == NotificationKind.FORMS_REMINDER and not missing_forms(
            notification.appointment
        ):
            batch.append(
                _Outgoing(notification.id, None, sender, recipient, None, not_needed=True)
            )
            continue
        try:
            message = as_bytes(email_for(notification, clinic=clinic, now=now))
        except Exception as problem:  # a clinic's own template may raise anything
            error = _unrenderable(problem)
            batch.append(_Outgoing(notification.id, None, sender, recipient, error))
        else:
            batch.append(_Outgoing(notification.id, message, sender, recipient, None,
                                   offer_id=offer_id,
                                   offer_claim_by=offer.claim_by if offer else None))
    db.session.rollback()
    return batch


def is_too_late(notification: Notification, now: datetime) -> bool:
    """A reminder (of the visit or of its forms) is worth sending only before the visit
    begins; a waitlist offer only while it can still be claimed."""
    offer = notification.waitlist_offer
    if offer is not None:
        return not waitlist_offers.is_open(offer, now) or (
            offer.entry.status != WaitlistStatus.WAITING
        )
    return (
        notification.kind in (NotificationKind.REMINDER, NotificationKind.FORMS_REMINDER)
        and notification.appointment.start_at <= now
    )


def _send_one(
    server: _MailServer,
    marks: _SentMarks,
    outgoing: _Outgoing,
    claim: _Claim,
    clock: Callable[[], datetime],
) -> str | None:
    """Send one message and record the outcome; None when the row is no longer ours."""
    if outgoing.too_late:
        marked = marks.mark_done(outgoing.notification_id, claim, clock(), sent=False)
        return NotificationStatus.SKIPPED if marked else None
    if outgoing.not_needed:
        marks.mark_done(
            outgoing.notification_id, claim, clock(), sent=False,
            status=NotificationStatus.DROPPED,
        )
        return None
    error = outgoing.error
    if error is None:
        try:
            server.send(outgoing)
        except (smtplib.SMTPException, OSError) as problem:
            error = _describe(problem)
    if error is None:
        sent_at = clock()
        marked = marks.mark_done(outgoing.notification_id, claim, sent_at)
        if marked and outgoing.offer_id is not None:
            marks.start_claim_clock(outgoing, sent_at)
        return NotificationStatus.SENT if marked else None
    return _mark_failed_try(outgoing.notification_id, claim, error, clock())


# A claimed row, marked done: still ours (a row whose lease ran out may have been taken over
# meanwhile), its lease given up.
_MARK_DONE = (
    update(Notification)
    .where(
        Notification.id == bindparam("notification"),
        Notification.status == NotificationStatus.SENDING,
        Notification.lease_until == bindparam("lease"),
    )
    .values(status=bindparam("status"), sent_at=bindparam("sent_at"), lease_until=null())
    .returning(Notification.id)
    .execution_options(synchronize_session=False)
)


class _SentMarks:
    """Marks a message sent the moment the mail server took it (or skipped, when it came due
    too late to send): one statement, committed.

    On PostgreSQL through an autocommit connection kept for the run, so that it is one round
    trip per message (the session's way takes three: BEGIN, UPDATE, COMMIT), and by the
    driver (`converted_rows`): built anew and run by SQLAlchemy's execution, this one UPDATE
    had cost a fifth of the dispatcher's work per message. On SQLite through the session,
    which takes the write lock first.
    """

    def __init__(self):
        self._connection: Connection | None = None

    def __enter__(self) -> _SentMarks:
        if is_postgresql():
            self._connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._connection is not None:
            self._connection.close()

    def mark_done(
        self, notification_id: int, claim: _Claim, now: datetime, *, sent: bool = True,
        status: NotificationStatus = NotificationStatus.SKIPPED,
    ) -> bool:
        values = {
            "notification": notification_id,
            "lease": claim.lease_until,
            "status": NotificationStatus.SENT if sent else status,
            "sent_at": now if sent else None,
        }
        if self._connection is not None:
            return len(converted_rows(self._connection, _MARK_DONE, values)) == 1
        hold_write_lock()
        marked = db.session.execute(_MARK_DONE, values).all()
        db.session.commit()
        return len(marked) == 1

    def start_claim_clock(self, outgoing: _Outgoing, sent_at: datetime) -> None:
        """The offer's time to claim runs from now: the quiet hours held mail and clock."""
        statement = (
            update(WaitlistOffer)
            .where(WaitlistOffer.id == outgoing.offer_id)
            .values(
                sent_at=sent_at,
                expires_at=offer_expiry(
                    sent_at, waitlist_offers.claim_window(), outgoing.offer_claim_by
                ),
            )
        )
        if self._connection is not None:
            self._connection.execute(statement)
            return
        hold_write_lock()
        db.session.execute(statement.execution_options(synchronize_session=False))
        db.session.commit()


class MailServerUnreachable(Exception):
    """No connection to the mail server (down, unreachable, refusing the login)."""


def _release(notification_ids: list[int], claim: _Claim) -> int:
    """Hand claimed rows back as they were before the claim: due, with no try counted."""
    hold_write_lock()
    released = db.session.execute(
        update(Notification)
        .where(
            Notification.id.in_(notification_ids),
            Notification.status == NotificationStatus.SENDING,
            Notification.lease_until == claim.lease_until,
        )
        .values(status=NotificationStatus.PENDING, lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return released


def _mark_failed_try(notification_id: int, claim: _Claim, error: str, now: datetime) -> str | None:
    hold_write_lock()
    notification = db.session.get(Notification, notification_id, populate_existing=True)
    if (
        notification is None
        or notification.status != NotificationStatus.SENDING
        or notification.lease_until != claim.lease_until
    ):
        db.session.rollback()
        return None
    notification.lease_until = None
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


def _unrenderable(problem: Exception) -> str:
    return f"the email could not be rendered: {type(problem).__name__}: {problem}"[:500]


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

    def send(self, outgoing: _Outgoing) -> None:
        if self._connection is None:
            try:
                self._connection = self._connect()
                _outage.noticed = False
            except (smtplib.SMTPException, OSError) as problem:
                raise MailServerUnreachable(_describe(problem)) from problem
        try:
            self._connection.sendmail(outgoing.sender, [outgoing.recipient], outgoing.message)
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


class _Outage:
    """Whether this process has already warned that the mail server cannot be reached."""

    noticed = False


_outage = _Outage()


class _MailFolder:
    """Development mail: each message written whole as an .eml file, for the back office.

    Written under a temporary name and renamed, so the list never shows half a message.
    """

    def __init__(self, folder: str):
        self._folder = folder

    def __enter__(self) -> _MailFolder:
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def send(self, outgoing: _Outgoing) -> None:
        os.makedirs(self._folder, exist_ok=True)
        name = f"{utc_now():%Y%m%dT%H%M%S%fZ}-notification-{outgoing.notification_id}.eml"
        handle, temporary = tempfile.mkstemp(dir=self._folder, suffix=".part")
        with os.fdopen(handle, "wb") as written:
            written.write(outgoing.message)
        os.replace(temporary, os.path.join(self._folder, name))
        if self._folder not in _announced_folders:
            _announced_folders.add(self._folder)
            log.warning(
                "notifications: no mail server (MAIL_DELIVERY=files); messages are written "
                "to %s and listed in the back office at /desk/sent-mail",
                self._folder,
            )


_announced_folders: set[str] = set()  # said once per process where the mail goes


def _mail_delivery() -> _MailServer | _MailFolder:
    config = current_app.config
    if config["MAIL_DELIVERY"] == "files":
        return _MailFolder(config["MAIL_OUTBOX_FOLDER"])
    return _MailServer()
