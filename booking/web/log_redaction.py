"""Secrets out of the logs: the token of a manage link (/manage/TOKEN) or of a calendar feed
(/feeds/TOKEN.ics) opens a patient's visit or a therapist's whole calendar, and paths land in
every log line about a request: Flask's "Exception on /manage/TOKEN/cancel [POST]" with its
traceback, werkzeug's and gunicorn's access lines.

`redact_tokens` is the one rule; `install` applies it to every log record the process makes,
through the record factory, so it holds for loggers and handlers set up before or after the
app (gunicorn's access log included) without knowing each of them.
"""

from __future__ import annotations

import logging
import re

# A path segment after /manage/ or /feeds/, in a path or a full address, up to the next
# slash, query, fragment, space or quote; a feed keeps its ".ics".
_TOKEN_IN_PATH = re.compile(r"(/(?:manage|feeds)/)[^/?#\s\"'<>]+?(\.ics)?(?=[/?#\s\"'<>]|$)")
REDACTED = "[token]"


def redact_tokens(text: str) -> str:
    """text with the token of every manage or feed path in it replaced by [token]."""
    return _TOKEN_IN_PATH.sub(lambda found: found[1] + REDACTED + (found[2] or ""), text)


def install() -> None:
    """Redact tokens in every log record made from now on in this process (once)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts_tokens", False):
        return

    def redacting_factory(*args, **kwargs) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging to report
            return record
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_tokens(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact_tokens(record.stack_info)
        return record

    redacting_factory.redacts_tokens = True
    logging.setLogRecordFactory(redacting_factory)
