"""Pure rules of the health forms: what a signed form's answers make of it, and where a
visit's form stands given what the patient has signed before.

Plain values in, plain values out: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MISSING = "missing"
COMPLETE = "complete"
NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True)
class Signed:
    """A form the patient signed earlier: its version, its status, whether it was reviewed."""

    version: str
    status: str  # COMPLETE or NEEDS_REVIEW
    reviewed: bool = False


def status_of_answers(questions: Iterable[Mapping], answers: Mapping[str, str]) -> str:
    """NEEDS_REVIEW when any answer is its question's `review_if`, else COMPLETE."""
    for question in questions:
        flag = question.get("review_if")
        if flag is not None and answers.get(question["key"]) == flag:
            return NEEDS_REVIEW
    return COMPLETE


def visit_form_status(current_version: str, signed: Iterable[Signed]) -> str:
    """Where a visit's form stands: the latest signing of the current version decides.

    A complete form of the same version carries to every later visit; one of an earlier
    version does not (a new version asks again). A needs-review form stays so until a
    therapist has gone over it.
    """
    latest = None
    for each in signed:
        if each.version == current_version:
            latest = each
    if latest is None:
        return MISSING
    if latest.status == NEEDS_REVIEW and not latest.reviewed:
        return NEEDS_REVIEW
    return COMPLETE


def forms_summary(statuses: Iterable[str]) -> str | None:
    """Where a visit's forms stand together, in a word: MISSING while any is missing, then
    NEEDS_REVIEW while any waits for a therapist, else COMPLETE; None when it asks for none."""
    statuses = set(statuses)
    if not statuses:
        return None
    for status in (MISSING, NEEDS_REVIEW):
        if status in statuses:
            return status
    return COMPLETE
