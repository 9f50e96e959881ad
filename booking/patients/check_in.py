"""The check-in after a dry needling session, as the patient answers it: soreness from 0 to
10, better / same / worse since the session, and a note. One model for the page that asks."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from booking.patients.details import Notes
from booking.rules.clinical import SORENESS_SCALE, Trend


def _blank_is_missing(value: object) -> object:
    # A form sends an unanswered field as "": refused as missing, not as a wrong number.
    return None if value == "" else value


class CheckInAnswers(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the form's CSRF token rides along

    soreness: Annotated[
        int, BeforeValidator(_blank_is_missing),
        Field(ge=SORENESS_SCALE.start, le=SORENESS_SCALE.stop - 1, strict=False),
    ]
    trend: Annotated[Trend, BeforeValidator(_blank_is_missing)]
    note: Notes = ""
