"""A real SMTP server for the tests (aiosmtpd), and its inbox."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage


class Inbox:
    """An SMTP server's mailbox: what it accepted, and whom it refuses with a 451."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.refuse_next = 0
        self.refuse_always: set[str] = set()
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_next > 0 or self.refuse_always & set(envelope.rcpt_tos):
            self.refuse_next = max(0, self.refuse_next - 1)
            return "451 try again"
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def take(self) -> list[EmailMessage]:
        arrived, self.messages = self.messages, []
        return arrived
