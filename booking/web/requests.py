"""The shape of every request: parse, check access, act, commit once.

A view that changes the clinic is marked `@writing`. Its transaction takes the write lock
from its first statement (SQLite's `BEGIN IMMEDIATE`; on PostgreSQL an ordinary transaction,
the exclusion constraint being the arbiter), so nothing it reads can change under it and a
busy database makes it wait rather than fail half way. It commits once, when the view answers
with a success or a redirect, and rolls back when the view answers with an error (a form shown
again with what was wrong changes nothing) or raises.

When the database cannot be reached, every surface answers one way: a 503 in its own look
(JSON for the API, the patient's page, the back office's page), chosen from what each
blueprint registers with `show_problems_with`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, Response, current_app, make_response, request
from sqlalchemy.exc import OperationalError

from booking.clinic.reference import answer_from_kept_copy, confirm_kept_copy
from booking.database import (
    hold_write_lock,
    read_outside_a_transaction,
    release_reading_connection,
)
from booking.extensions import db

# A blueprint's way of showing a problem: (status, title, message) -> a response.
ProblemPage = Callable[[int, str, str], Response]
_PROBLEM_PAGES: dict[str, ProblemPage] = {}


def writing(view):
    """The view changes the clinic: write lock first, one commit, or nothing at all."""

    @wraps(view)
    def run_writing(*args, **kwargs):
        hold_write_lock()
        try:
            response = make_response(view(*args, **kwargs))
            if response.status_code < 400:
                confirm_kept_copy()  # what it wrote followed the clinic's current rules
        except BaseException:
            forget_transaction()
            raise
        if response.status_code < 400:
            db.session.commit()
        else:
            forget_transaction()
        return response

    # The API's operations read this: a writing operation takes the lock before it reads its
    # input (the service named, the clinic's languages), so that first read is in it too.
    run_writing.takes_write_lock = True
    return run_writing


def reading(view):
    """The view only reads (availability, the lists of services and therapists): on
    PostgreSQL its statements run without a transaction around them, two round trips fewer;
    and it answers from the process's copy of the reference data, whose revision is checked
    by the statement reading the busy times, or after the answer (it may answer twice)."""

    @wraps(view)
    def run_reading(*args, **kwargs):
        read_outside_a_transaction()
        return answer_from_kept_copy(lambda: view(*args, **kwargs))

    return run_reading


def show_problems_with(blueprint_name: str, problem_page: ProblemPage) -> None:
    """How `blueprint_name` shows a problem (a 503) in its own look."""
    _PROBLEM_PAGES[blueprint_name] = problem_page


def problem_response(status: int, title: str, message: str) -> Response:
    # A nested blueprint shows problems as the nearest blueprint around it that registered.
    for name in request.blueprints:
        show = _PROBLEM_PAGES.get(name)
        if show is not None:
            try:
                return make_response(show(status, title, message))
            except OperationalError:
                # The surface's page itself needs the database (the clinic's name, say).
                forget_transaction()
                break
    return Response(f"{message}\n", status, mimetype="text/plain")


def _database_unavailable(error: OperationalError) -> Response:
    """The database is out of reach (restarting, down, its disk read-only): a 503, never a
    500, and nothing half-saved."""
    forget_transaction()
    current_app.logger.warning("database unavailable: %s", type(error.orig).__name__)
    response = problem_response(
        503,
        "Please try again in a moment",
        "We could not reach the booking system just now. Nothing was saved.",
    )
    response.headers["Retry-After"] = "5"
    return response


def forget_transaction() -> None:
    """Roll back; a database gone away (a restart) cannot even take the ROLLBACK, so its
    connections are dropped rather than returned to the pool."""
    try:
        db.session.rollback()
    except OperationalError:
        db.session().invalidate()  # the session itself: the scoped proxy has no such method


def _end_session(_error: BaseException | None) -> None:
    """The session ends with the request, quietly when the database went away after the
    answer was made: the answer stands instead of turning into a 500. A request that never
    used the database (a static file, a 404) has no session to end."""
    if not db.session.registry.has():
        return
    forget_transaction()
    db.session.remove()


def init_app(app: Flask) -> None:
    app.register_error_handler(OperationalError, _database_unavailable)
    # Registered after Flask-SQLAlchemy's own, so it runs first (teardowns run in reverse).
    app.teardown_appcontext(_end_session)
    # A reading request's own connection goes back to the pool with the request.
    app.teardown_request(lambda _error: release_reading_connection())
