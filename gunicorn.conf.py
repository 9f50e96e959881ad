"""gunicorn's settings for this app, read by gunicorn from the directory it runs in (the
project's root, in production as in the tests and benchmarks). The command line sets the
rest (address, timeouts: `docs/deploy/clinic-booking-web.service`) and wins over these."""

import os

# One sync worker a core: with PostgreSQL on the same host, more workers than cores answered
# fewer requests a second, at more CPU each (docs/request-costs.md, fourteenth pass). A worker
# waits out each statement's round trip, so with PostgreSQL on another host, start about two
# a core with --workers.
workers = os.cpu_count() or 1

# gunicorn's sync worker, closing at once after a request read whole (`closing_worker.py`).
worker_class = "booking.web.closing_worker.ClosingSyncWorker"
