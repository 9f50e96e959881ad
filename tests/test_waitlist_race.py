"""Twenty patients claim one offered time at the same second: one booking, nineteen polite
refusals, no overlap. Real gunicorn workers against each database, as test_double_booking.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from booking import scheduling
from booking.extensions import db
from booking.models import Appointment, AppointmentStatus, WaitlistEntry, WaitlistOffer, utc_now
from booking.scheduling import waitlist
from tests.conftest import local, next_weekday
from tests.servers import all_at_once, running_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clinic")]

CLAIMERS = 20


def claim_all_at_once(base_url: str, tokens: list[str]) -> list[requests.Response]:
    """Each patient presses "claim" at the same moment, from their own thread."""
    return all_at_once([
        lambda session, token=token: session.post(f"{base_url}/api/v1/offers/{token}/claim",
                                                  timeout=60)
        for token in tokens
    ])


@pytest.fixture
def app_settings(app_settings):
    app_settings["WAITLIST_OFFERS_AT_ONCE"] = CLAIMERS
    return app_settings


def test_twenty_patients_claiming_one_offered_time_one_books_it(book, database_url):
    monday = next_weekday(0, at_least_days=5)
    start = local(monday, 9)
    visit = book("pt-evaluation", start, "jamie-lee", name="Sam Gone", email="sam@example.com")
    service = scheduling.bookable_service("pt-evaluation")
    for number in range(CLAIMERS):
        waitlist.join_waitlist(
            service,
            scheduling.PatientDetails(name=f"Patient {number}",
                                      email=f"patient{number}@example.com"),
            monday, monday + timedelta(days=7), weekdays=["mon"], parts_of_day=["morning"],
        )
    scheduling.cancel_appointment(visit, now=utc_now())
    db.session.commit()
    offers = db.session.scalars(select(WaitlistOffer).order_by(WaitlistOffer.id)).all()
    assert {offer.start_at for offer in offers} == {start}
    tokens = [offer.token for offer in offers]
    assert len(tokens) == CLAIMERS

    with running_gunicorn(database_url, workers=4) as base_url:
        answers = claim_all_at_once(base_url, tokens)

    assert sorted(answer.status_code for answer in answers) == [201] + [409] * (CLAIMERS - 1)
    refusals = {answer.json()["error"]["code"] for answer in answers if answer.status_code == 409}
    assert refusals == {"offer_taken"}
    db.session.rollback()
    live = db.session.scalars(
        select(Appointment).where(Appointment.status == AppointmentStatus.CONFIRMED)
    ).all()
    assert [(visit.start_at, visit.therapist.slug) for visit in live] == [(start, "jamie-lee")]
    assert scheduling.appointments_overlapping_count() == 0
    statuses = sorted(entry.status for entry in db.session.scalars(select(WaitlistEntry)))
    assert statuses == ["booked"] + ["waiting"] * (CLAIMERS - 1)
