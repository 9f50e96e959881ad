"""Every kind of message as a patient's mail client shows it, in Chromium at phone width.

A test mail client view: the headers, the text part as plain text, and the HTML part in a
frame of its own at 375 px. Screenshots go to test-output/screenshots/mail-*.png for people
to proof-read; the checks here are what a reader would notice first: nothing wider than the
phone, no line of the text part running on past 78 characters but a link, the greeting and
the therapist where they belong.
"""

from __future__ import annotations

import html
from datetime import date, timedelta
from email.message import EmailMessage

import pytest

from booking import scheduling
from booking.extensions import db
from booking.models import utc_now
from booking.notifications.dispatcher import send_due
from tests.conftest import local, next_weekday, screenshot

pytestmark = pytest.mark.usefixtures("smtp_settings", "clinic")

MONDAY = next_weekday(0)
TUESDAY = MONDAY + timedelta(days=1)
THURSDAY = MONDAY + timedelta(days=3)
PHONE_WIDTH = 375
FAMILY = {"name": "Lily Chen", "email": "wei@example.com", "guardian_name": "Wei Chen",
          "phone": "+1 586 555 0142", "date_of_birth": date(2019, 5, 4)}


def every_kind_of_message(book, smtp_inbox) -> dict[str, EmailMessage]:
    """A child's evaluation and dry needling, an adult's call: one of each message."""
    book("pt-evaluation", start=local(MONDAY, 9), **FAMILY)
    needling = book("dry-needling", start=local(THURSDAY, 9), **FAMILY)
    call = book("schedule-a-call", start=local(MONDAY, 14), name="Pat Example",
                email="pat@example.com", phone="+1 586 555 0177")
    send_due(utc_now())
    mail = {}
    for message in smtp_inbox.take():
        subject = str(message["Subject"])
        if "call" in subject:
            mail["call-confirmation"] = message
        elif "evaluation" in subject:
            mail["child-evaluation-confirmation"] = message
    scheduling.reschedule_appointment(call, local(TUESDAY, 14))
    db.session.commit()
    send_due(utc_now())
    [mail["call-reschedule"]] = smtp_inbox.take()
    send_due(local(TUESDAY, 9))  # 48 hours before the needling; the call's own reminder too
    for message in smtp_inbox.take():
        if "needling" in str(message["Subject"]):
            mail["child-needling-reminder"] = message
    scheduling.cancel_appointment(call)
    db.session.commit()
    send_due(utc_now())
    [mail["call-cancellation"]] = smtp_inbox.take()
    send_due(local(THURSDAY, 11, 45))
    [mail["child-aftercare"]] = smtp_inbox.take()
    send_due(needling.end_at + timedelta(hours=48))
    [mail["child-check-in"]] = smtp_inbox.take()
    return mail


def mail_client_view(message: EmailMessage) -> str:
    """A plain mail client: headers, the text part, then the HTML part in its own frame."""
    text = message.get_body(("plain",)).get_content()
    part = message.get_body(("html",)).get_content()
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body {{ margin: 0; font: 14px Arial, sans-serif; }}
header, pre {{ margin: 0; padding: 8px; border-bottom: 1px solid #ccc; }}
pre {{ white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; }}
iframe {{ border: 0; width: 100%; }}</style></head><body>
<header><b>{html.escape(str(message["Subject"]))}</b><br>
From: {html.escape(str(message["From"]))}<br>To: {html.escape(str(message["To"]))}<br>
Attachments: {", ".join(a.get_filename() for a in message.iter_attachments()) or "none"}
</header>
<pre>{html.escape(text)}</pre>
<iframe id="html-part" srcdoc="{html.escape(part)}"></iframe>
</body></html>"""


def test_every_message_reads_well_on_a_phone(book, smtp_inbox, page, request):
    messages = every_kind_of_message(book, smtp_inbox)
    assert sorted(messages) == [
        "call-cancellation", "call-confirmation", "call-reschedule", "child-aftercare",
        "child-check-in", "child-evaluation-confirmation", "child-needling-reminder",
    ]
    wanted_shots = request.node.callspec.params.get("database_url") == "sqlite"
    for name, message in messages.items():
        text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
        long_lines = [line for line in text.splitlines() if len(line) > 78 and "://" not in line]
        assert long_lines == [], name

        page.set_content(mail_client_view(message))
        frame = page.frame_locator("#html-part")
        body = frame.locator("body")
        height = body.evaluate("element => element.scrollHeight")
        page.locator("#html-part").evaluate(f"frame => frame.style.height = '{height + 20}px'")
        widest = body.evaluate("element => element.ownerDocument.documentElement.scrollWidth")
        assert widest <= PHONE_WIDTH, name
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE_WIDTH, name
        shown = body.inner_text()
        greeting = "Hello Pat Example," if name.startswith("call") else "Hello Wei Chen,"
        assert shown.startswith(greeting), name
        assert "Alex Rivera, PT, DPT" in shown, name
        assert "Lily Chen" not in shown, name
        if wanted_shots:
            screenshot(page, f"mail-{name}-{PHONE_WIDTH}")
