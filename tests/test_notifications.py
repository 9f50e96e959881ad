"""Confirmations, reminders and aftercare, sent to a real SMTP server and read from its inbox."""

from __future__ import annotations

import logging
import random
import re
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from email.charset import QP, Charset
from email.message import EmailMessage, Message
from email.mime.text import MIMEText
from email.policy import Compat32

import pytest
from icalendar import Calendar
from sqlalchemy import select

from booking import scheduling
from booking.clinic import clinic_file
from booking.extensions import db
from booking.models import Notification, utc_now
from booking.notifications import messages
from booking.notifications.dispatcher import DispatchReport, send_due
from booking.notifications.outbox import outside_quiet_hours
from booking.patients.manage_links import manage_url_for
from tests.conftest import CLINIC_FILE, CLINIC_ZONE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins
from tests.servers import free_port

# smtp_settings first: it must add the mail server to the settings before `app` is built.
pytestmark = pytest.mark.usefixtures("smtp_settings", "clinic")

MONDAY = next_weekday(0)
SUNDAY = MONDAY - timedelta(days=1)
TUESDAY = MONDAY + timedelta(days=1)
THURSDAY = MONDAY + timedelta(days=3)


def notifications_of(appointment) -> list[tuple[str, str]]:
    rows = db.session.scalars(
        select(Notification)
        .where(Notification.appointment_id == appointment.id)
        .order_by(Notification.due_at, Notification.id)
    )
    return [(row.kind, row.status) for row in rows]


def due_times(appointment, kind: str) -> list:
    return list(
        db.session.scalars(
            select(Notification.due_at)
            .where(Notification.appointment_id == appointment.id, Notification.kind == kind)
            .where(Notification.status == "pending")
            .order_by(Notification.due_at)
        )
    )


def text_of(mail: EmailMessage) -> str:
    return mail.get_body(("plain",)).get_content().replace("\r\n", "\n")


def words_of(mail: EmailMessage) -> str:
    """The text part as read, whatever its line breaks: the words, one space apart."""
    return " ".join(text_of(mail).split())


def calendar_of(mail: EmailMessage):
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    calendar = Calendar.from_ical(attachment.get_content())
    [event] = calendar.walk("VEVENT")
    return attachment, calendar, event


def test_the_confirmation_arrives_at_once_with_the_visit_and_a_calendar_file(book, smtp_inbox):
    appointment = book(phone="+1 586 555 0199")
    row = db.session.scalars(select(Notification).where(Notification.kind == "confirmation")).one()

    assert send_due(utc_now()) == DispatchReport(sent=1)

    [mail] = smtp_inbox.take()
    assert mail["To"] == "Pat Example <pat@example.com>"
    assert mail["From"] == "Test Therapy Clinic <frontdesk@clinic.example>"
    assert mail["Message-ID"] == row.message_id
    assert mail["X-Booking-Notification"] == "confirmation"
    assert mail["Subject"].startswith("Booked: a call from Alex Rivera, PT, DPT on Monday")
    text = words_of(mail)
    assert "Your call with Alex Rivera, PT, DPT is booked for Monday" in text
    assert "at 9:00 AM (clinic time)" in text
    assert "We will call you at +1 586 555 0199." in text
    assert manage_url_for(appointment) in text
    assert "Test Street" not in text  # a call happens on the phone, not at the clinic
    assert "Test Street" not in html_of(mail)
    assert "+1 586 555 0100" in text  # the clinic's own number, to call back

    attachment, calendar, event = calendar_of(mail)
    assert attachment.get_param("method") == "REQUEST"
    assert calendar["METHOD"] == "REQUEST"
    assert calendar["VERSION"] == "2.0"
    assert str(event["UID"]) == appointment.calendar_uid
    assert event["SEQUENCE"] == 0
    assert event["STATUS"] == "CONFIRMED"
    assert event["SUMMARY"] == "Call from Alex Rivera, PT, DPT (Test Therapy Clinic)"
    assert event["DESCRIPTION"] == "We will call you at +1 586 555 0199."
    assert "LOCATION" not in event
    assert event.decoded("DTSTART") == local(MONDAY, 9)
    assert event.decoded("DTEND") == local(MONDAY, 9, 15)
    assert str(event["ORGANIZER"]) == "mailto:frontdesk@clinic.example"
    assert str(event["ATTENDEE"]) == "mailto:pat@example.com"

    assert send_due(utc_now()) == DispatchReport()
    assert smtp_inbox.take() == []
    db.session.refresh(row)
    assert row.status == "sent"


def test_each_reminder_arrives_at_its_time_and_not_before(book, smtp_inbox):
    appointment = book("schedule-a-call", start=local(MONDAY, 9))
    assert notifications_of(appointment) == [
        ("confirmation", "pending"),
        ("reminder", "pending"),
        ("reminder", "pending"),
    ]
    send_due(utc_now())
    assert [mail["X-Booking-Notification"] for mail in smtp_inbox.take()] == ["confirmation"]

    assert send_due(local(SUNDAY, 8, 59)) == DispatchReport()
    assert send_due(local(SUNDAY, 9)) == DispatchReport(sent=1)
    [day_before] = smtp_inbox.take()
    assert day_before["X-Booking-Notification"] == "reminder"
    assert day_before["Subject"].startswith(
        "Reminder: a call from Alex Rivera, PT, DPT on Monday"
    )
    assert "A reminder: your call with Alex Rivera, PT, DPT is on Monday" in words_of(day_before)

    assert send_due(local(MONDAY, 7, 59)) == DispatchReport()
    assert send_due(local(MONDAY, 8)) == DispatchReport(sent=1)
    [hour_before] = smtp_inbox.take()
    assert hour_before["X-Booking-Notification"] == "reminder"
    assert hour_before["Message-ID"] != day_before["Message-ID"]


def test_booked_three_hours_ahead_there_is_no_day_before_reminder(clinic, smtp_inbox):
    booked_at = local(MONDAY, 6)
    appointment = scheduling.book_appointment(
        scheduling.bookable_service("schedule-a-call"),
        local(MONDAY, 9),
        scheduling.PatientDetails(name="Pat Example", email="pat@example.com"),
        therapist_slug="alex-rivera",
        now=booked_at,
    )
    db.session.commit()

    assert due_times(appointment, "reminder") == [local(MONDAY, 8)]
    assert send_due(booked_at) == DispatchReport(sent=1)
    assert send_due(local(MONDAY, 8)) == DispatchReport(sent=1)
    assert [mail["X-Booking-Notification"] for mail in smtp_inbox.take()] == [
        "confirmation",
        "reminder",
    ]


def test_dry_needling_brings_the_soreness_note_then_a_check_in(book, smtp_inbox):
    book("pt-evaluation", start=local(MONDAY, 9))
    needling = book("dry-needling", start=local(TUESDAY, 9))  # ends 09:45
    assert due_times(needling, "aftercare") == [local(TUESDAY, 11, 45), local(THURSDAY, 9, 45)]
    send_due(local(TUESDAY, 11, 44))
    assert "aftercare" not in [mail["X-Booking-Notification"] for mail in smtp_inbox.take()]

    assert send_due(local(TUESDAY, 11, 45)) == DispatchReport(sent=1)
    [note] = smtp_inbox.take()
    assert note["X-Booking-Notification"] == "aftercare"
    assert note["Subject"] == "After your dry needling session: what to expect"
    assert list(note.iter_attachments()) == []  # after the visit: no calendar file
    text = " ".join(text_of(note).split())
    assert "Mild soreness or tenderness where the needles went in is expected for 24-48 hours" in (
        text
    )
    assert "temporary fatigue" in text
    assert "the home exercises your therapist gave you" in text
    assert "if it is getting worse after 48 hours" in text
    assert "unusual swelling, redness or a fever" in text

    assert send_due(local(THURSDAY, 9, 44)) == DispatchReport()
    assert send_due(local(THURSDAY, 9, 45)) == DispatchReport(sent=1)
    [check_in] = smtp_inbox.take()
    assert check_in["Subject"] == "Checking in after your dry needling session"
    assert list(check_in.iter_attachments()) == []
    assert "after your dry needling session with Alex Rivera, PT, DPT" in words_of(check_in)
    assert "book your follow-up visit here:\nhttp://127.0.0.1:5000/" in text_of(check_in)


def test_a_call_brings_no_aftercare(book):
    call = book("schedule-a-call", start=local(MONDAY, 9))
    assert due_times(call, "aftercare") == []


@pytest.mark.parametrize(
    ("due", "sent"),
    [
        (local(MONDAY, 22, 30), local(TUESDAY, 8)),
        (local(MONDAY, 21), local(TUESDAY, 8)),
        (local(MONDAY, 7, 59), local(MONDAY, 8)),
        (local(MONDAY, 0, 1), local(MONDAY, 8)),
        (local(MONDAY, 8), local(MONDAY, 8)),
        (local(MONDAY, 20, 59), local(MONDAY, 20, 59)),
    ],
)
def test_quiet_hours_hold_a_note_until_eight_in_the_morning(due, sent):
    assert outside_quiet_hours(due, CLINIC_ZONE) == sent


def test_quiet_hours_end_at_eight_on_the_night_clocks_go_forward():
    before_dst = datetime(2027, 3, 13, 23, 0, tzinfo=CLINIC_ZONE)
    assert outside_quiet_hours(before_dst, CLINIC_ZONE) == local(date(2027, 3, 14), 8)
    assert local(date(2027, 3, 14), 8).utcoffset() == timedelta(hours=-4)


def test_a_reminder_due_at_half_past_ten_at_night_waits_for_eight(book, smtp_inbox):
    # 630 minutes before 09:00 is 22:30 the night before.
    scheduling.bookable_service("schedule-a-call").reminders = [timedelta(minutes=630)]
    db.session.commit()
    appointment = book("schedule-a-call", start=local(MONDAY, 9))
    assert due_times(appointment, "reminder") == [local(MONDAY, 8)]

    assert send_due(local(SUNDAY, 22, 30)) == DispatchReport(sent=1)
    assert [mail["X-Booking-Notification"] for mail in smtp_inbox.take()] == ["confirmation"]
    assert send_due(local(MONDAY, 7, 59)) == DispatchReport()
    assert send_due(local(MONDAY, 8)) == DispatchReport(sent=1)
    assert [mail["X-Booking-Notification"] for mail in smtp_inbox.take()] == ["reminder"]


def test_cancelling_drops_the_reminders_and_sends_a_cancellation(book, smtp_inbox):
    appointment = book("schedule-a-call", start=local(MONDAY, 9))
    send_due(utc_now())
    smtp_inbox.take()

    scheduling.cancel_appointment(appointment)
    db.session.commit()
    assert notifications_of(appointment) == [
        ("confirmation", "sent"),
        ("cancellation", "pending"),
        ("reminder", "dropped"),
        ("reminder", "dropped"),
    ]

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["X-Booking-Notification"] == "cancellation"
    assert "Your call with Alex Rivera, PT, DPT on Monday" in words_of(mail)
    assert "is cancelled" in text_of(mail)
    attachment, calendar, event = calendar_of(mail)
    assert attachment.get_param("method") == "CANCEL"
    assert calendar["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert str(event["UID"]) == appointment.calendar_uid
    assert event["SEQUENCE"] == 1

    assert send_due(local(MONDAY, 9)) == DispatchReport()
    assert smtp_inbox.take() == []


def test_mail_rows_held_by_the_transaction_read_dropped_once_their_visit_is_cancelled(book):
    """The rows the transaction already holds change with the statement that drops them:
    what reads them after the cancel, before the commit, sees them dropped too."""
    appointment = book("schedule-a-call", start=local(MONDAY, 9))
    db.session.commit()
    held = db.session.scalars(
        select(Notification)
        .where(Notification.appointment_id == appointment.id)
        .order_by(Notification.id)
    ).all()
    assert [(row.kind, row.status) for row in held] == [
        ("confirmation", "pending"), ("reminder", "pending"), ("reminder", "pending")]

    scheduling.cancel_appointment(appointment)

    assert [(row.kind, row.status) for row in held] == [
        ("confirmation", "dropped"), ("reminder", "dropped"), ("reminder", "dropped")]
    db.session.commit()
    assert notifications_of(appointment) == [
        ("confirmation", "dropped"), ("cancellation", "pending"),
        ("reminder", "dropped"), ("reminder", "dropped")]


def test_rescheduling_moves_the_reminders_and_sends_a_notice(book, smtp_inbox):
    appointment = book("schedule-a-call", start=local(MONDAY, 9))
    send_due(utc_now())
    smtp_inbox.take()

    scheduling.reschedule_appointment(appointment, local(TUESDAY, 10))
    db.session.commit()
    assert due_times(appointment, "reminder") == [local(MONDAY, 10), local(TUESDAY, 9)]

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [notice] = smtp_inbox.take()
    assert notice["X-Booking-Notification"] == "reschedule"
    assert "It is now on Tuesday" in words_of(notice)
    attachment, calendar, event = calendar_of(notice)
    assert calendar["METHOD"] == "REQUEST"
    assert event["SEQUENCE"] == 1
    assert str(event["UID"]) == appointment.calendar_uid
    assert event.decoded("DTSTART") == local(TUESDAY, 10)

    # Where the old reminders were due (Sunday 09:00, Monday 08:00) nothing goes out now.
    assert send_due(local(MONDAY, 9, 59)) == DispatchReport()
    assert send_due(local(MONDAY, 10)) == DispatchReport(sent=1)
    [reminder] = smtp_inbox.take()
    assert reminder["Subject"].startswith("Reminder: a call from Alex Rivera, PT, DPT on Tuesday")


def test_a_refused_message_is_deferred_then_sent_on_a_later_run(book, smtp_inbox):
    book()
    row = db.session.scalars(select(Notification).where(Notification.kind == "confirmation")).one()
    smtp_inbox.refuse_next = 2
    first_try = utc_now()

    assert send_due(first_try) == DispatchReport(deferred=1)
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.due_at == first_try + timedelta(minutes=2)
    assert "451" in row.last_error

    assert send_due(first_try + timedelta(minutes=1)) == DispatchReport()
    assert send_due(first_try + timedelta(minutes=2)) == DispatchReport(deferred=1)
    db.session.refresh(row)
    assert row.due_at == first_try + timedelta(minutes=2 + 4)
    assert smtp_inbox.take() == []

    assert send_due(first_try + timedelta(minutes=6)) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["Message-ID"] == row.message_id
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_message_refused_every_time_fails_after_the_last_try_and_others_still_go(
    book, smtp_inbox
):
    book(name="Lost Patient", email="lost@example.com", start=local(MONDAY, 9))
    book(name="Pat Example", email="pat@example.com", start=local(MONDAY, 10))
    smtp_inbox.refuse_always = {"lost@example.com"}
    run = utc_now()

    assert send_due(run) == DispatchReport(sent=1, deferred=1)
    for _ in range(3):
        run += timedelta(hours=1)
        assert send_due(run) == DispatchReport(deferred=1)
    run += timedelta(hours=1)
    assert send_due(run) == DispatchReport(failed=1)
    assert send_due(run + timedelta(hours=1)) == DispatchReport()

    [arrived] = smtp_inbox.take()
    assert arrived["To"] == "Pat Example <pat@example.com>"
    lost = db.session.scalars(select(Notification).where(Notification.status == "failed")).one()
    assert lost.attempts == 5
    assert lost.last_error == "SMTPDataError: 451 try again"


def test_a_claim_left_by_a_crashed_dispatcher_is_taken_over_when_its_lease_ends(book, smtp_inbox):
    book()
    row = db.session.scalars(select(Notification).where(Notification.kind == "confirmation")).one()
    now = utc_now()
    row.status, row.lease_until = "sending", now + timedelta(minutes=1)
    db.session.commit()

    assert send_due(now) == DispatchReport()
    assert send_due(now + timedelta(minutes=1, seconds=1)) == DispatchReport(sent=1)
    assert [mail["Message-ID"] for mail in smtp_inbox.take()] == [row.message_id]


def test_send_due_command_reports_what_it_sent(app, book, smtp_inbox):
    book()
    runner = app.test_cli_runner()
    answer = runner.invoke(args=["notifications", "send-due", "--now", utc_now().isoformat()])
    assert answer.exit_code == 0, answer.output
    assert answer.output == "sent 1, failed 0, deferred 0\n"
    assert len(smtp_inbox.take()) == 1


def test_send_due_command_refuses_a_time_without_an_offset(app):
    answer = app.test_cli_runner().invoke(
        args=["notifications", "send-due", "--now", "2026-12-01T09:00:00"]
    )
    assert answer.exit_code == 2
    assert "has no UTC offset; write it like 2026-12-01T09:00:00-05:00" in answer.output


# --- the HTML part, the dry needling advice, the clinic's own templates ------------------------


def html_of(mail: EmailMessage) -> str:
    return mail.get_body(("html",)).get_content()


def test_every_email_has_an_html_part_beside_the_text_with_the_patient_data_escaped(
    book, smtp_inbox
):
    appointment = book(name="Zoë <b>Bold</b> & Co", email="zoe@example.com")
    send_due(utc_now())
    scheduling.cancel_appointment(appointment)
    db.session.commit()
    send_due(utc_now())

    confirmation, cancellation = smtp_inbox.take()
    for mail in (confirmation, cancellation):
        assert mail.get_content_type() == "multipart/mixed"
        html = html_of(mail)
        assert "Hello Zoë &lt;b&gt;Bold&lt;/b&gt; &amp; Co," in html
        assert "<b>Bold</b>" not in html
        assert "Hello Zoë <b>Bold</b> & Co," in text_of(mail)
        assert mail["To"].addresses[0].display_name == "Zoë <b>Bold</b> & Co"
        assert "Test Therapy Clinic" in html
    assert f'<a href="{manage_url_for(appointment)}">Manage your visit</a>' in html_of(confirmation)
    assert "is booked for <strong>Monday" in html_of(confirmation)
    assert "is cancelled" in html_of(cancellation)


def test_the_dry_needling_reminder_says_what_to_wear_and_to_eat_beforehand(book, smtp_inbox):
    book("pt-evaluation", start=local(MONDAY, 9))
    book("dry-needling", start=local(THURSDAY, 9))
    send_due(utc_now())
    smtp_inbox.take()

    send_due(local(MONDAY, 8))  # the evaluation's reminders, before it begins
    send_due(local(TUESDAY, 9))  # 48 hours before the needling
    sent = smtp_inbox.take()
    subjects = [" ".join(mail["Subject"].split()).split(" on ")[0] for mail in sent]
    evaluation = "Reminder: your physical therapy evaluation with Alex Rivera, PT, DPT"
    assert subjects == [evaluation] * 2 + [
        "Reminder: your dry needling session with Alex Rivera, PT, DPT"
    ]
    *evaluation_reminders, reminder = sent
    assert "loose" not in text_of(evaluation_reminders[0])  # an evaluation: no advice
    text = " ".join(text_of(reminder).split())
    assert "wear loose, comfortable clothing that lets your therapist uncover the area" in text
    assert "eat a light meal an hour or two beforehand" in text
    html = " ".join(html_of(reminder).split())
    assert "wear loose, comfortable clothing" in html
    assert "eat a light meal" in html


def test_the_clinic_file_says_which_service_gets_the_dry_needling_advice(clinic, book, smtp_inbox):
    # The advice follows the service's aftercare_advice key, not the word in its name.
    written = CLINIC_FILE.read_text(encoding="utf-8")
    moved = written.replace('aftercare_advice = "dry-needling"\n', "").replace(
        'slug = "pt-evaluation"\n', 'slug = "pt-evaluation"\naftercare_advice = "dry-needling"\n'
    )
    assert moved.count("aftercare_advice") == 1
    clinic_file.apply_clinic(clinic_file.parse_clinic_file(moved, "clinic.toml"))
    db.session.commit()
    book("pt-evaluation", start=local(MONDAY, 9))
    book("dry-needling", start=local(THURSDAY, 9))
    send_due(utc_now())
    smtp_inbox.take()

    send_due(local(MONDAY, 8, 30))  # the evaluation's reminders, before it begins
    send_due(local(TUESDAY, 9))  # the dry needling session's, two days ahead
    reminders = {
        " ".join(mail["Subject"].split()).split(" with ")[0]: mail for mail in smtp_inbox.take()
    }

    assert "wear loose, comfortable clothing" in " ".join(
        text_of(reminders["Reminder: your physical therapy evaluation"]).split()
    )
    assert "loose" not in text_of(reminders["Reminder: your dry needling session"])


def test_a_call_reminder_has_no_dry_needling_advice(book, smtp_inbox):
    book("schedule-a-call", start=local(MONDAY, 9))
    send_due(local(SUNDAY, 9))
    reminder = smtp_inbox.take()[-1]
    assert reminder["X-Booking-Notification"] == "reminder"
    assert "loose" not in text_of(reminder)
    assert "light meal" not in html_of(reminder)


def test_the_clinic_replaces_a_template_from_its_own_folder(app, book, smtp_inbox, tmp_path):
    (tmp_path / "confirmation.txt").write_text(
        "Dear {{ patient.name }}, see you {{ when }} at {{ clinic.name }}.\n"
        '{% include "_signature.txt" %}'
    )
    app.config["MAIL_TEMPLATES_FOLDER"] = str(tmp_path)
    book()

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    text = words_of(mail)
    assert text.startswith("Dear Pat Example, see you Monday")
    assert "at Test Therapy Clinic." in text
    assert "+1 586 555 0100" in text  # the built-in signature, included from the override
    assert "Your call with Alex Rivera, PT, DPT is booked for <strong>Monday" in html_of(mail)


def test_a_template_the_clinic_adds_is_used_from_the_next_run_on(app, book, smtp_inbox, tmp_path):
    app.config["MAIL_TEMPLATES_FOLDER"] = str(tmp_path)
    book()
    with app.app_context():  # each scheduler run has its own app context
        assert send_due(utc_now()) == DispatchReport(sent=1)
    (tmp_path / "confirmation.txt").write_text("Dear {{ patient.name }}.\n")
    book(start=local(TUESDAY, 9))
    with app.app_context():
        assert send_due(utc_now()) == DispatchReport(sent=1)

    before, after = smtp_inbox.take()
    assert text_of(before).startswith("Hello Pat Example,\n\nYour call with Alex Rivera")
    assert text_of(after) == "Dear Pat Example.\n"


def _only_row(kind: str) -> Notification:
    return db.session.scalars(select(Notification).where(Notification.kind == kind)).one()


def test_an_override_cannot_include_a_file_outside_the_template_folders(app, book, tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("not a template for patients")
    (folder / "confirmation.txt").write_text('{% include "../secret.txt" %}')
    app.config["MAIL_TEMPLATES_FOLDER"] = str(folder)
    book()

    assert send_due(utc_now()) == DispatchReport(deferred=1)
    row = _only_row("confirmation")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "the email could not be rendered: TemplateNotFound: ../secret.txt"


def test_a_template_that_raises_is_retried_then_failed_and_others_still_go(
    app, book, smtp_inbox, tmp_path
):
    (tmp_path / "reminder.txt").write_text("Hello {{ patient.nickname }}\n")
    app.config["MAIL_TEMPLATES_FOLDER"] = str(tmp_path)
    book("schedule-a-call", start=local(MONDAY, 9))
    run = utc_now()
    assert send_due(run) == DispatchReport(sent=1)  # the confirmation is unaffected

    run = local(SUNDAY, 9)
    for attempt in range(1, 5):
        assert send_due(run) == DispatchReport(deferred=1)
        row = db.session.scalars(
            select(Notification).where(Notification.kind == "reminder").order_by(Notification.id)
        ).first()
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.due_at == run + timedelta(minutes=2**attempt)
        run = row.due_at
    assert send_due(run) == DispatchReport(failed=1)
    db.session.refresh(row)
    assert (row.status, row.attempts, row.lease_until) == ("failed", 5, None)
    assert "could not be rendered: UndefinedError" in row.last_error
    assert "nickname" in row.last_error

    # The hour-before reminder fails on its own; the patient got only the confirmation.
    assert [mail["X-Booking-Notification"] for mail in smtp_inbox.take()] == ["confirmation"]


def test_a_line_break_in_a_name_cannot_add_a_header(book, smtp_inbox):
    appointment = book()
    appointment.patient.name = "Pat\r\nBcc: someone@example.com"
    db.session.commit()

    assert send_due(utc_now()) == DispatchReport(sent=1)
    [mail] = smtp_inbox.take()
    assert mail["Bcc"] is None
    assert mail["To"] == '"Pat Bcc: someone@example.com" <pat@example.com>'


@pytest.mark.parametrize(
    "value",
    [
        "Booked: a call from Alex Rivera on Monday",
        "x" * 66,  # with "Subject: ", 75 characters: one line
        "x" * 70,  # 79: compat32's to fold
        "two  spaces and a tab\there",
        " a leading space",
        "a last space ",
        "Zoë Müller",
        "",
    ],
)
def test_headers_are_written_as_the_standard_library_writes_them(value):
    message = Message()
    message["Subject"] = value
    message["Message-ID"] = "<a@clinic.example>"
    message.set_payload("Hello")
    assert messages.as_bytes(message) == message.as_bytes(policy=Compat32(linesep="\r\n"))


def _long_values(count: int) -> list[str]:
    """Header values of words one space apart, mostly too long for one line: words of every
    length (some longer than a line), some ending in the characters compat32 prefers to cut
    after."""
    chosen = random.Random(13)
    values = []
    for _ in range(count):
        words = []
        for _ in range(chosen.randint(1, 30)):
            length = chosen.choice((1, 2, 3, 5, 8, 13, 20, 40, 69, 70, 75, 90))
            word = "".join(chosen.choice("abcdefghij") for _ in range(length))
            if chosen.random() < 0.15:
                word += chosen.choice(";,:.")
            words.append(chosen.choice((";", ",")) if chosen.random() < 0.05 else word)
        values.append(" ".join(words))
    return values


@pytest.mark.parametrize("name", ["Subject", "To", "S", "X-A-Rather-Long-Header-Name"])
def test_long_headers_are_folded_as_the_standard_library_folds_them(name):
    standard = Compat32(linesep="\r\n")
    values = [
        "Booked: an evaluation with Dr. Alexandra Rivera-Montgomery on Wednesday, December 9,"
        " 2026 at 10:30 AM",
        "Cancelled; rebooked: a call on Monday, then a call on Tuesday; then needling on Friday",
        "x" * 100,
        "x" * 100 + " and a few words after a word too long for its line",
        *_long_values(3000),
    ]
    folded = [messages._SMTP.fold_binary(name, value) for value in values]
    assert folded == [standard.fold_binary(name, value) for value in values]
    assert sum(header.count(b"\r\n") > 1 for header in folded) > 2000  # most were folded


@pytest.mark.parametrize("subtype", ["plain", "html", "calendar"])
@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello Pat,\n\nyour call is booked.\n",
        "Zoë Müller-Lüdenscheidt, تقييم العلاج الطبيعي, 9:30\u202fAM\n",
        "a = sign, =3D, a trailing space \nand tab\t\nFrom the desk\n.\n",
        "x" * 200 + "\n" + "é" * 100,
        "BEGIN:VCALENDAR\r\nSUMMARY:Call\\, with a comma\r\nEND:VCALENDAR\r\n",
    ],
)
def test_a_text_part_is_the_standard_librarys_mimetext_byte_for_byte(text, subtype):
    charset = Charset("utf-8")
    charset.body_encoding = QP
    expected = MIMEText(text, subtype, charset)
    written = messages.text_part(text, subtype)
    if subtype == "calendar":
        expected.set_param("method", "CANCEL")
        written = messages.text_part(text, subtype, '; method="CANCEL"')
    for part in (expected, written):
        part.add_header("Content-Disposition", "attachment", filename="appointment.ics")
    assert messages.as_bytes(written) == expected.as_bytes(policy=Compat32(linesep="\r\n"))


def test_each_kind_of_message_is_written_byte_for_byte_as_the_standard_library_writes_it(
    book, smtp_inbox
):
    book(name="Zoë Müller-Lüdenscheidt with a name longer than a header's line")
    book(start=local(TUESDAY, 10), guardian_name="Wei Chen", name="Lily Chen")
    rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    assert {row.kind for row in rows} >= {"confirmation", "reminder"}
    for row in rows:
        message = messages.email_for(row, now=utc_now())
        written = messages.as_bytes(message)
        assert written == message.as_bytes(policy=Compat32(linesep="\r\n"))
        assert b"\r\nSubject: " in written


def test_a_multipart_boundary_is_on_its_header_line_and_nowhere_in_the_parts(book, smtp_inbox):
    book(name="Zoë Müller-Lüdenscheidt")  # "=C3=AB" and the like in the quoted-printable parts
    row = db.session.scalars(select(Notification).where(Notification.kind == "confirmation")).one()
    raw = messages.as_bytes(messages.email_for(row, now=utc_now()))  # what the dispatcher sends
    mail = message_from_bytes(raw, policy=policy.default)
    lines = raw.split(b"\r\n")
    boundaries = [part.get_boundary() for part in mail.walk() if part.is_multipart()]
    assert len(boundaries) == 2 and len(set(boundaries)) == 2
    for part, boundary in zip([mail, mail.get_payload()[0]], boundaries, strict=True):
        assert re.fullmatch(r"=_[0-9a-f]{24}", boundary)
        [header] = [line for line in lines if line.startswith(b"Content-Type: multipart/")
                    and boundary.encode() in line]
        assert len(header) <= 78  # one line, not folded
        # The boundary appears only as its header's parameter and its delimiter lines.
        delimiter = b"--" + boundary.encode()
        assert [line for line in lines if boundary.encode() in line] == (
            [header] + [delimiter] * len(part.get_payload()) + [delimiter + b"--"]
        )
    assert [part.get_content_type() for part in mail.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/calendar"
    ]
    assert "Zoë Müller-Lüdenscheidt" in mail.get_body(("plain",)).get_content()


# --- a family's mail, a call, a dispatcher that was down ---------------------------------------


def test_a_parent_booking_for_a_child_is_greeted_and_told_of_the_child_and_the_therapist(
    book, smtp_inbox
):
    family = {"name": "Lily Chen", "email": "wei@example.com", "guardian_name": "Wei Chen",
              "phone": "+1 586 555 0142", "date_of_birth": date(2019, 5, 4)}
    book("pt-evaluation", start=local(MONDAY, 9), **family)
    book("dry-needling", start=local(THURSDAY, 9), **family)  # ends 09:45
    send_due(utc_now())
    confirmations = smtp_inbox.take()
    send_due(local(TUESDAY, 9))  # 48 hours before the needling
    reminder = smtp_inbox.take()[-1]
    send_due(local(THURSDAY, 11, 45))  # the aftercare note, two hours after
    aftercare = smtp_inbox.take()[-1]

    evaluation = confirmations[0]
    assert evaluation["Subject"].startswith(
        "Booked: Lily's physical therapy evaluation with Alex Rivera, PT, DPT on Monday"
    )
    assert " ".join(text_of(evaluation).split()).startswith(
        "Hello Wei Chen, Lily's physical therapy evaluation with Alex Rivera, PT, DPT is booked "
        "for Monday"
    )
    assert reminder["X-Booking-Notification"] == "reminder"
    assert reminder["Subject"].startswith(
        "Reminder: Lily's dry needling session with Alex Rivera, PT, DPT on Thursday"
    )
    assert "A reminder: Lily's dry needling session with Alex Rivera, PT, DPT is on Thursday" in (
        " ".join(text_of(reminder).split())
    )
    assert aftercare["X-Booking-Notification"] == "aftercare"
    assert aftercare["Subject"] == "After Lily's dry needling session: what to expect"
    assert "Thank you for coming in for Lily's dry needling session with Alex Rivera, PT, DPT." in (
        " ".join(text_of(aftercare).split())
    )
    for mail in (*confirmations, reminder, aftercare):
        assert mail["To"] == "Wei Chen <wei@example.com>"
        assert text_of(mail).startswith("Hello Wei Chen,\n")
        assert "Hello Wei Chen," in html_of(mail)
        assert "Lily Chen" not in text_of(mail)
        assert "Alex Rivera, PT, DPT" in words_of(mail)


def test_a_call_reminder_gives_the_number_to_be_called_and_no_street(book, smtp_inbox):
    book("schedule-a-call", start=local(MONDAY, 9), phone="+1 586 555 0177")
    send_due(local(SUNDAY, 9))
    confirmation, reminder = smtp_inbox.take()
    for mail in (confirmation, reminder):
        assert "We will call you at +1 586 555 0177." in words_of(mail)
        assert "We will call you at +1 586 555 0177." in html_of(mail)
        assert "Test Street" not in text_of(mail) + html_of(mail)
        _, _, event = calendar_of(mail)
        assert str(event["DESCRIPTION"]) == "We will call you at +1 586 555 0177."
        assert "LOCATION" not in event


def test_a_reminder_due_while_the_dispatcher_was_down_is_skipped_once_the_visit_has_begun(
    app, book, smtp_inbox
):
    appointment = book("schedule-a-call", start=local(MONDAY, 9))  # reminders: Sun 9, Mon 8
    assert send_due(utc_now()) == DispatchReport(sent=1)
    smtp_inbox.take()

    # No dispatcher ran from before Sunday 09:00 until Monday 09:05, after the call began.
    answer = app.test_cli_runner().invoke(
        args=["notifications", "send-due", "--now", local(MONDAY, 9, 5).isoformat()]
    )

    assert answer.output == "sent 0, failed 0, deferred 0, skipped 2\n"
    assert smtp_inbox.take() == []
    assert notifications_of(appointment) == [
        ("confirmation", "sent"),
        ("reminder", "skipped"),
        ("reminder", "skipped"),
    ]
    assert send_due(local(MONDAY, 10)) == DispatchReport()

    desk = signed_in(app, staff_logins()["front_desk"])
    page = desk.get(f"/desk/patients/{appointment.patient_id}")
    assert page.status_code == 200
    assert page.text.count("skipped (came due after the visit began)") == 2


def test_a_reminder_still_goes_when_the_dispatcher_catches_up_before_the_visit(book, smtp_inbox):
    book("schedule-a-call", start=local(MONDAY, 9))
    assert send_due(local(MONDAY, 8, 59)) == DispatchReport(sent=3)
    assert [mail["X-Booking-Notification"] for mail in smtp_inbox.take()] == [
        "confirmation", "reminder", "reminder",
    ]


def test_a_mail_server_out_of_reach_is_warned_about_once_per_outage(
    app, book, smtp_inbox, caplog
):
    book("schedule-a-call", start=local(MONDAY, 9))
    assert send_due(utc_now()) == DispatchReport(sent=1)
    book("schedule-a-call", start=local(MONDAY, 11))
    nowhere = free_port()  # nothing listens there
    app.config["SMTP_PORT"] = nowhere
    with caplog.at_level(logging.INFO, logger="booking.notifications.dispatcher"):
        for _ in range(3):
            assert send_due(utc_now()) == DispatchReport(deferred=1)
        app.config["SMTP_PORT"] = smtp_inbox.port
        assert send_due(utc_now()) == DispatchReport(sent=1)
        book("schedule-a-call", start=local(MONDAY, 10))
        app.config["SMTP_PORT"] = nowhere
        assert send_due(utc_now()) == DispatchReport(deferred=1)

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2  # the first run of each outage
    assert all("the mail server cannot be reached" in record.getMessage() for record in warnings)
    assert len(smtp_inbox.take()) == 2
