"""The JSON API keeps the promises of its own OpenAPI document, whatever it is sent.

Schemathesis reads /api/v1/openapi.json from the app (in-process, WSGI) and throws generated
requests at every operation of the test clinic: valid ones and, in a second pass, invalid
ones. Every answer must be a non-5xx status the document declares for that operation, in the
declared content type and matching the declared schema. The run is bounded and derandomized
(the same cases on every run), so it is a test, not a fuzzing campaign.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from booking.patients.manage_links import manage_token_for
from tests.conftest import local, next_weekday

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Per operation and mode: enough to find shape mismatches, little enough for `make test`.
EXAMPLES_PER_OPERATION = 60


def _run_generated_cases(strategy, examples: int) -> set[int]:
    """Send the generated cases and check each answer; return the statuses seen."""
    seen: set[int] = set()

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        # The health checks time generation and count filtered inputs: on a loaded machine
        # they fail a run that found nothing wrong. The bound above is what keeps it short.
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def answers_as_documented(case):
        seen.add(case.call_and_validate(checks=CHECKS).status_code)

    answers_as_documented()
    return seen


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_every_operation_answers_as_its_document_says(app, clinic, mode):
    operations = _operations(app)
    assert set(operations) >= {
        "GET /services",
        "GET /therapists",
        "GET /availability",
        "POST /appointments",
        "GET /appointments/{appointment_id}",
        "POST /appointments/{appointment_id}/cancel",
        "POST /appointments/{appointment_id}/reschedule",
    }
    seen = {}
    for label, operation in operations.items():
        if mode.is_negative and not _has_input(operation):
            continue  # nothing to send wrong
        strategy = operation.as_strategy(generation_mode=mode)
        seen[label] = _run_generated_cases(strategy, EXAMPLES_PER_OPERATION)
    # The generated input reached the views, not only the router.
    assert 422 in seen["POST /appointments"]
    assert 404 in seen["POST /appointments/{appointment_id}/cancel"]
    if mode.is_negative:
        assert {400, 422} <= seen["POST /appointments/{appointment_id}/reschedule"]
    else:
        assert 200 in seen["GET /services"]


def test_free_times_and_a_booking_answer_as_documented(app, clinic):
    operations = _operations(app)
    monday = next_weekday(0)
    free_times = operations["GET /availability"].as_strategy(
        query={"service": "schedule-a-call", "start": monday.isoformat(),
               "end": (monday + timedelta(days=6)).isoformat()}
    )  # therapist and tz generated
    assert 200 in _run_generated_cases(free_times, EXAMPLES_PER_OPERATION)
    booking = {
        "service": "schedule-a-call",
        "start": local(monday, 10).isoformat(),
        "therapist": "alex-rivera",
        "patient": {"name": "Pat Example", "email": "pat@example.com", "phone": "+1 586 555 0199"},
    }
    # The same visit again and again (with generated Idempotency-Keys): booked once, then
    # the slot is taken, or the first answer replayed for a key seen before.
    books = operations["POST /appointments"].as_strategy(body=booking)
    assert {201, 409} <= _run_generated_cases(books, EXAMPLES_PER_OPERATION)


def test_a_visit_managed_with_its_token_answers_as_documented(app, clinic, book):
    # Generated ids and tokens never open a visit; these runs hold a real one's token.
    visit = book(start=local(next_weekday(0), 9))
    token = {"Authorization": f"Bearer {manage_token_for(visit)}"}
    seen = {}
    for label, operation in _operations(app).items():
        if "{appointment_id}" in label:
            strategy = operation.as_strategy(
                path_parameters={"appointment_id": visit.id}, headers=token
            )
            seen[label] = _run_generated_cases(strategy, EXAMPLES_PER_OPERATION)
    moves = seen.pop("POST /appointments/{appointment_id}/reschedule")
    assert seen == {
        "GET /appointments/{appointment_id}": {200},
        "POST /appointments/{appointment_id}/cancel": {200},
        # A call asks for no health form: its forms are none, and no form can be signed.
        "GET /appointments/{appointment_id}/forms": {200},
        "POST /appointments/{appointment_id}/forms/{form}": {404},
    }
    # Generated times are never free, and once cancelled it cannot be moved (409); a time
    # outside the days the clinic's calendar holds (1900-2999) is refused as input (422).
    assert 409 in moves and moves <= {409, 422}


def _operations(app) -> dict:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    found = (result.ok() for result in schema.get_all_operations())
    return {f"{operation.method.upper()} {operation.path}": operation for operation in found}


def _has_input(operation) -> bool:
    return bool(operation.body) or any(True for _ in operation.iter_parameters())
