"""Two gunicorn configurations under the same load at the same time: CPU per request of each.

This machine's speed wanders by a fifth within minutes, so runs of one configuration after
the other cannot tell a 5% change from the weather (docs/request-costs.md). Here two gunicorn
servers (4 workers each, rate limits off) serve the demo clinic on one PostgreSQL database,
one started with the arguments of --a and the other with those of --b, and the same clients
send the availability mix of `bench/load.py` to both, each client turning from one to the
other at every request: both meet the same machine. It prints, for each, the requests it
answered and the CPU time of its workers (user and system, from /proc) per request. Two
servers of the same configuration agree within about 1%.

Run: make bench-paired PAIRED_ARGS='--b=--preload' (starts a throwaway PostgreSQL), or with
TEST_POSTGRES_URL set: python bench/paired.py [--seconds 20] [--clients 16] [--a=ARGS] --b=ARGS
(with `=`: the arguments start with dashes)
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import instructions  # noqa: E402
from bench import load as load_bench  # noqa: E402
from bench.plain_http import exchange  # noqa: E402
from bench.process_cpu import workers_of  # noqa: E402
from tests.servers import running_gunicorn  # noqa: E402

WARM_UP_SECONDS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", default="", help="gunicorn's arguments for the first server")
    parser.add_argument("--b", default="", help="gunicorn's arguments for the second server")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    options = parser.parse_args()
    server_url = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not server_url.startswith("postgres"):
        sys.exit("set TEST_POSTGRES_URL or DATABASE_URL to a PostgreSQL server (or: make bench)")
    url = load_bench.prepare_database(server_url)
    configurations = (options.a, options.b)
    with ExitStack() as servers:
        ports = [
            int(servers.enter_context(running_gunicorn(
                url, workers=4, secret_key=load_bench.SECRET,
                gunicorn_args=tuple(shlex.split(arguments)),
            )).rsplit(":", 1)[1])
            for arguments in configurations
        ]

        def call(method: str, path: str, body=None) -> tuple[str, bytes]:
            status, payload = exchange("127.0.0.1", ports[0], method, path)
            return str(status), payload

        looked_up = [
            path for _, path, _ in instructions.requests_of_kind("availability", call, 5000, 0)
        ]
        alternate(ports, looked_up, options.clients, WARM_UP_SECONDS)  # a warm-up, not counted
        before = [workers_cpu(port) for port in ports]
        answered = alternate(ports, looked_up, options.clients, options.seconds)
        spent = [workers_cpu(port) - cpu for port, cpu in zip(ports, before, strict=True)]
    print(f"availability (the patient mix of bench/load.py), {options.clients} clients for "
          f"{options.seconds:.0f} s, each turning from one server to the other")
    for name, arguments, requests, seconds in zip(
        "ab", configurations, answered, spent, strict=True
    ):
        print(f"  {name}: {arguments or '(no arguments)':<40} {requests:>7} requests, "
              f"workers {seconds / requests * 1000:.3f} ms of CPU a request")


def alternate(ports: list[int], paths: list[str], clients: int, seconds: float) -> list[int]:
    """Requests answered by each server while `clients` threads send, turn about, for
    `seconds`; exits when an answer is not a 200."""
    answered = [0] * len(ports)
    refused: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        chosen = random.Random(number)
        server = number % len(ports)
        while time.monotonic() < deadline and not refused:
            path = paths[chosen.randrange(len(paths))]
            status, payload = exchange("127.0.0.1", ports[server], "GET", path)
            with lock:
                if status != 200:
                    refused.append(f"{path}: {status} {payload[:200]!r}")
                answered[server] += 1
            server = (server + 1) % len(ports)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if refused:
        sys.exit(refused[0])
    return answered


def workers_cpu(port: int) -> float:
    """CPU seconds (user and system) of the workers of the gunicorn bound to this port: the
    processes started with its address whose parent was started with it too."""
    return sum(each.seconds for each in workers_of(f"127.0.0.1:{port}".encode()))


if __name__ == "__main__":
    main()
