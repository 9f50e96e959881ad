"""The benchmarks' HTTP client: one request written as bytes on a fresh connection, the
answer read to the close.

The clients run on the same two cores as the server they measure, so what they spend is taken
from it. http.client (its parsing of each answer's headers above all) cost `bench/booking.py`
0.5 ms of CPU a booking; this costs 0.27 ms. gunicorn's sync workers close every connection
after their answer, which is where an answer ends here.
"""

from __future__ import annotations

import socket


def exchange(
    host: str, port: int, method: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, timeout: float = 60,
) -> tuple[int, bytes]:
    """The answer's status and body. OSError when the server cannot be reached or does not
    answer in `timeout` seconds; RuntimeError for what is not an HTTP/1.x answer read whole."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or len(head) < 12:
        raise RuntimeError(f"not an HTTP answer: {head[:80]!r}")
    fields = head.lower()
    if b"\r\ntransfer-encoding: chunked" in fields:
        raise RuntimeError("a chunked answer: not read by this client")
    length = fields.partition(b"\r\ncontent-length:")[2].split(b"\r\n", 1)[0]
    if length and int(length) != len(payload):
        raise RuntimeError(f"the answer ended after {len(payload)} of {int(length)} bytes")
    return int(head[9:12]), payload
