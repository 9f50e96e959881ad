"""gunicorn's settings for this app, read by gunicorn from the directory it runs in (the
project's root, in production as in the tests and benchmarks). The command line sets the
rest: workers, address, timeouts (`docs/deploy/clinic-booking-web.service`)."""

# gunicorn's sync worker, closing at once after a request read whole (`closing_worker.py`).
worker_class = "booking.web.closing_worker.ClosingSyncWorker"
