"""Secrets and patients' details out of the logs.

The token of a manage link (/manage/TOKEN) or of a calendar feed (/feeds/TOKEN.ics) opens a
patient's visit or a therapist's whole calendar, and paths land in every log line about a
request: Flask's "Exception on /manage/TOKEN/cancel [POST]" with its traceback, werkzeug's and
gunicorn's access lines. A database error's traceback may carry a row's values: PostgreSQL's
DETAIL line of a refused row ("Failing row contains (..., Jane Doe, ...)", "Key (identity)=
(...)"); the statement's parameters are not shown at all (the engines' `hide_parameters`).

`redact` is the one rule; `install` applies it to every log record the process makes,
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
# PostgreSQL's DETAIL line, as psycopg puts it in an error's text, up to the end of its line.
_DATABASE_DETAIL = re.compile(r"^(DETAIL: +).*$", re.MULTILINE)
WITHHELD = "[withheld]"


def redact(text: str) -> str:
    """text with the token of every manage or feed path in it replaced by [token], and the
    detail of every database error (a row's values) by [withheld]."""
    text = _TOKEN_IN_PATH.sub(lambda found: found[1] + REDACTED + (found[2] or ""), text)
    return _DATABASE_DETAIL.sub(lambda found: found[1] + WITHHELD, text)


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
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    redacting_factory.redacts_tokens = True
    logging.setLogRecordFactory(redacting_factory)
