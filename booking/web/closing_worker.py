"""gunicorn's sync worker, closing a connection as soon as its answer is written when the
request was read whole.

gunicorn closes each connection gracefully (RFC 9112, section 9.6): it half-closes, then
reads until the client closes its side too, for up to 2 s. That protects an answer from being
cut short by a reset, which the kernel sends when a socket is closed with request bytes still
unread in it. But the worker serves no one while it waits: about a third of a millisecond a
request in the benchmark's closed loop with one worker a core (`docs/request-costs.md`), and
a slow client can hold it for the 2 s.

A request read whole, with nothing more waiting on its socket, leaves nothing to reset: the
socket is closed at once. Anything else (a body the app did not read to its end, a chunked
body, bytes of a pipelined request, gunicorn's own TLS) still gets gunicorn's graceful close.
A client that sends more after a complete request on a connection the answer closes
(`Connection: close`) may see that answer reset: nginx, in front of the workers in
production, never does.

Named in `gunicorn.conf.py`, which gunicorn reads from the directory it runs in.
"""

from __future__ import annotations

import socket

from gunicorn.http.body import LengthReader
from gunicorn.workers.sync import SyncWorker


class ClosingSyncWorker(SyncWorker):
    """A sync worker that closes at once after a request it read whole."""

    def handle_request(self, listener, req, client, addr) -> None:
        super().handle_request(listener, req, client, addr)
        # Still open after an answer that raised nothing: gunicorn's own close follows, and
        # does nothing more on a socket closed here. TLS (gunicorn's certfile; nginx ends it
        # in production) is left to gunicorn's close.
        if not self.cfg.is_ssl and request_read_whole(req) and nothing_waiting(client):
            client.close()


def request_read_whole(req) -> bool:
    """The request's body (none, for most requests) was read to its last byte."""
    reader = req.body.reader
    return isinstance(reader, LengthReader) and reader.length == 0 and not req.body.failed


def nothing_waiting(client: socket.socket) -> bool:
    """No byte has arrived on the connection that was not read."""
    try:
        waiting = client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    # b"": the client has closed its side, which leaves nothing unread either; a byte: more
    # than the request was sent.
    return not waiting
