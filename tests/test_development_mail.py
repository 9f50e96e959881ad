"""Mail under the development settings: with no mail server, each message is an .eml file
in the outbox folder, listed and readable in the back office by admins."""

from __future__ import annotations

import logging
from email import message_from_bytes, policy

import pytest

from booking.models import utc_now
from booking.notifications.dispatcher import DispatchReport, send_due
from config import TestConfig, load_config
from tests.conftest import local, next_weekday
from tests.desk_staff import signed_in, staff_logins

MONDAY = next_weekday(0)


@pytest.fixture
def outbox(app_settings, tmp_path):
    """The development settings: mail written to files, in this test's own folder."""
    folder = tmp_path / "outbox"
    app_settings.update(MAIL_DELIVERY="files", MAIL_OUTBOX_FOLDER=str(folder))
    return folder


@pytest.mark.usefixtures("outbox", "clinic")
def test_a_booking_writes_an_eml_that_the_back_office_lists_for_admins(
    app, book, outbox, caplog
):
    book("schedule-a-call", start=local(MONDAY, 9), phone="+1 586 555 0188")
    with caplog.at_level(logging.WARNING, logger="booking.notifications.dispatcher"):
        assert send_due(utc_now()) == DispatchReport(sent=1)
        book("schedule-a-call", start=local(MONDAY, 10), name="Sam Second", email="sam@example.com")
        assert send_due(utc_now()) == DispatchReport(sent=1)

    written = sorted(outbox.glob("*.eml"))
    assert len(written) == 2
    mail = message_from_bytes(written[0].read_bytes(), policy=policy.default)
    assert mail["To"] == "Pat Example <pat@example.com>"
    assert mail["X-Booking-Notification"] == "confirmation"
    assert sorted(outbox.iterdir()) == written  # no half-written file left behind
    # Said once where the mail went, not once per message.
    notices = [record.getMessage() for record in caplog.records]
    assert len(notices) == 1
    assert str(outbox) in notices[0]
    assert "/desk/sent-mail" in notices[0]

    staff = staff_logins()
    admin = signed_in(app, staff["admin"])
    listing = admin.get("/desk/sent-mail")
    assert listing.status_code == 200
    assert "Booked: a call from Alex Rivera, PT, DPT on Monday" in listing.text
    assert "Pat Example &lt;pat@example.com&gt;" in listing.text
    # Newest first.
    assert listing.text.index("Sam Second") < listing.text.index("Pat Example")

    name = written[0].name
    assert f'href="/desk/sent-mail/{name}"' in listing.text
    shown = admin.get(f"/desk/sent-mail/{name}")
    assert shown.status_code == 200
    assert "Hello Pat Example," in shown.text
    assert "We will call you at +1 586 555 0188." in shown.text
    assert "BEGIN:VCALENDAR" in shown.text
    html = admin.get(f"/desk/sent-mail/{name}/html")
    assert html.status_code == 200
    # The viewer's own, stricter policy is the only one sent (not the site's beside it).
    (viewer_policy,) = html.headers.getlist("Content-Security-Policy")
    assert viewer_policy.startswith("sandbox;")
    assert "Hello Pat Example," in html.text

    for role in ("front_desk", "therapist"):
        assert signed_in(app, staff[role]).get("/desk/sent-mail").status_code == 403
        assert signed_in(app, staff[role]).get(f"/desk/sent-mail/{name}").status_code == 403
    assert signed_in(app, None).get("/desk/sent-mail").status_code == 302


@pytest.mark.usefixtures("outbox", "clinic")
def test_only_the_files_the_dispatcher_wrote_can_be_read(app, tmp_path, outbox):
    outbox.mkdir()
    (tmp_path / "secret.eml").write_text("Subject: not for the back office\n\nsecret\n")
    (outbox / "notes.eml").write_text("Subject: not written by the dispatcher\n\nnotes\n")
    admin = signed_in(app, staff_logins()["admin"])

    assert "No messages yet." in admin.get("/desk/sent-mail").text
    for path in ("/desk/sent-mail/notes.eml", "/desk/sent-mail/..%2Fsecret.eml",
                 "/desk/sent-mail/20261202T030000000000Z-notification-1.eml"):
        assert admin.get(path).status_code == 404


@pytest.mark.usefixtures("clinic")
def test_with_a_mail_server_the_back_office_keeps_no_mail(app):
    page = signed_in(app, staff_logins()["admin"]).get("/desk/sent-mail")
    assert page.status_code == 200
    assert "Mail goes to the mail server (<code>SMTP_HOST</code>); none is kept here." in page.text


def test_mail_delivery_is_smtp_or_files():
    assert load_config(TestConfig)["MAIL_DELIVERY"] == "smtp"
    with pytest.raises(ValueError, match="MAIL_DELIVERY is one of smtp, files, not 'pigeon'"):
        load_config({"MAIL_DELIVERY": "pigeon"})
