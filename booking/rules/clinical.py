"""The clinic's rules for dry needling as plain values: whether a patient's recorded clearance
lets them book a service that needs one, and which check-in answers after a session call for
the front desk to phone the patient the same day."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


class ClearanceDecision(enum.StrEnum):
    CLEARED = "cleared"
    NOT_CLEARED = "not_cleared"


class Trend(enum.StrEnum):
    """How the patient feels since the session."""

    BETTER = "better"
    SAME = "same"
    WORSE = "worse"


SORENESS_SCALE = range(0, 11)  # 0 none to 10 the worst imaginable
# From this soreness on, the front desk calls the patient back the same day.
CALL_BACK_SORENESS = 7


@dataclass(frozen=True)
class RecordedDecision:
    decision: ClearanceDecision
    decided_at: datetime
    order: int  # ties at one instant: the later recorded wins


def latest_decision(decisions: Iterable[RecordedDecision]) -> ClearanceDecision | None:
    """The decision in force: the latest recorded one wins; None when there is none."""
    latest = max(decisions, key=lambda item: (item.decided_at, item.order), default=None)
    return latest.decision if latest else None


def is_cleared(decision: ClearanceDecision | None) -> bool:
    """Online booking of a service that needs clearance: only with "cleared" in force."""
    return decision is ClearanceDecision.CLEARED


def needs_call_back(soreness: int, trend: Trend) -> bool:
    """A check-in that the front desk answers with a call the same day."""
    return trend is Trend.WORSE or soreness >= CALL_BACK_SORENESS
