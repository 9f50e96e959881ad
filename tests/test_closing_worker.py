"""gunicorn's workers close a connection at once after a request they read whole, and close
gracefully after one they did not (`booking/web/closing_worker.py`), through a real gunicorn
started from the project's root, where it reads `gunicorn.conf.py`."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from tests.servers import running_gunicorn


def connected(base_url: str) -> socket.socket:
    address = urlsplit(base_url)
    return socket.create_connection((address.hostname, address.port), timeout=10)


def read_to_the_close(connection: socket.socket) -> bytes:
    """Everything the server sent until it closed its side; ConnectionResetError if it reset
    the connection instead."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def one_worker(app, database_url):
    with running_gunicorn(database_url, workers=1) as base_url:
        yield base_url


def test_after_a_request_read_whole_the_worker_has_closed_the_connection_by_the_answers_end(
    one_worker,
):
    with connected(one_worker) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: clinic\r\n\r\n")
        answer = read_to_the_close(connection)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b'"database":"ok"' in answer

        # The client has not closed its side. A worker still waiting for it to (gunicorn's
        # own graceful close, for up to 2 s) would read these bytes; a socket closed at once
        # answers them with a reset, which the client's next send reports.
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                connection.sendall(b"x")
                time.sleep(0.01)


def test_a_request_body_left_unread_still_gets_its_whole_answer_and_a_clean_close(one_worker):
    body = b"{" + b" " * 40_000 + b"}"  # more than the worker reads before it answers
    with connected(one_worker) as connection:
        connection.sendall(
            b"POST /healthz HTTP/1.1\r\nHost: clinic\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        # Closed at once, the socket would reset the connection for the unread bytes (and
        # the client would lose the answer, or read it and then the reset).
        answer = read_to_the_close(connection)

    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    length = int(head.lower().partition(b"\r\ncontent-length:")[2].split(b"\r\n", 1)[0])
    assert len(payload) == length


def test_bytes_sent_after_a_whole_request_still_get_its_whole_answer_and_a_clean_close(
    one_worker,
):
    # A request with no body, then more than the worker reads with it: what a client
    # pipelining its next requests would send.
    with connected(one_worker) as connection:
        connection.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: clinic\r\n\r\n"
            + b"GET /healthz HTTP/1.1\r\nHost: clinic\r\n\r\n" * 1_000
        )
        answer = read_to_the_close(connection)

    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.count(b"HTTP/1.1 ") == 1
    assert answer.endswith(b"}\n")


def test_over_gunicorns_own_tls_an_answer_ends_with_no_error_logged(
    app, database_url, tmp_path
):
    # A TLS socket cannot be peeked at: gunicorn's own close is left to end it.
    key, certificate, errors = tmp_path / "key.pem", tmp_path / "cert.pem", tmp_path / "errors"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    tls = ssl.create_default_context(cafile=str(certificate))
    with running_gunicorn(
        database_url, workers=1,
        gunicorn_args=("--certfile", str(certificate), "--keyfile", str(key),
                       "--error-logfile", str(errors)),
    ) as base_url:
        answers = []
        for _ in range(2):
            with tls.wrap_socket(connected(base_url), server_hostname="127.0.0.1") as connection:
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: clinic\r\n\r\n")
                answers.append(read_to_the_close(connection))

    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"HTTP/1.1 200 OK"] * 2
    assert all(b'"database":"ok"' in answer for answer in answers)
    assert "Error handling request" not in errors.read_text()
