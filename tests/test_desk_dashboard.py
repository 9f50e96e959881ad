"""The admin's dashboard against a seeded month with known answers: utilisation, no-shows and
late cancellations, new patients, evaluations that led to a course of care, waitlist fills."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from booking import scheduling
from booking.desk.dashboard import clinic_figures
from booking.extensions import db
from booking.models import WaitlistOffer, utc_now
from booking.scheduling import waitlist
from tests.conftest import CLINIC_ZONE, local
from tests.desk_staff import signed_in, staff_logins

DESK = "staff:desk@clinic.example"


def _book(service, start, name, therapist="alex-rivera"):
    visit = scheduling.book_appointment(
        scheduling.bookable_service(service), start,
        scheduling.PatientDetails(name=name, email=f"{name.split()[0].lower()}@example.com",
                                  phone="+1 586 555 0100"),
        therapist_slug=therapist, booked_by=DESK,
        override=scheduling.StaffOverride(DESK, "seeded"), now=start - timedelta(days=10),
    )
    db.session.flush()
    return visit


@pytest.fixture
def last_month(clinic):
    """The Monday of a week in last month, and what was seeded in it."""
    today = utc_now().astimezone(CLINIC_ZONE).date()
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    monday = first + timedelta(days=(7 - first.weekday()) % 7 + 7)  # the 2nd Monday or later
    evaluation = _book("pt-evaluation", local(monday, 8), "Ana Alvarez")
    _book("dry-needling", local(monday + timedelta(days=1), 8), "Ana Alvarez")
    _book("pt-evaluation", local(monday, 13), "Ben Brooks")  # no treatment after
    missed = _book("schedule-a-call", local(monday + timedelta(days=3), 9), "Cleo Carter")
    scheduling.record_attendance(missed, "no_show", by=DESK,
                                 now=missed.start_at + timedelta(minutes=20))
    late = _book("schedule-a-call", local(monday + timedelta(days=3), 10), "Dan Diaz")
    scheduling.cancel_appointment(late, cancelled_by=DESK, now=late.start_at - timedelta(hours=3))
    early = _book("schedule-a-call", local(monday + timedelta(days=3), 11), "Eve Evans")
    scheduling.cancel_appointment(early, cancelled_by=DESK,
                                  now=early.start_at - timedelta(days=3))
    db.session.commit()
    return {"monday": monday, "month": f"{first:%b %Y}", "evaluation": evaluation}


@pytest.fixture
def waitlist_last_month(clinic):
    """Last month, seen from its own days: two evaluations and a call freed and offered to
    those waiting; the first evaluation and the call claimed, the second evaluation not."""
    today = utc_now().astimezone(CLINIC_ZONE).date()
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    monday = first + timedelta(days=(7 - first.weekday()) % 7 + 7)  # the 2nd Monday or later
    saturday = local(monday - timedelta(days=2), 10)  # the clinic's clock in this story
    cancelled = [
        _book("pt-evaluation", local(monday, 9), "Sam Gone", therapist="jamie-lee"),
        _book("pt-evaluation", local(monday, 14), "Tom Gone", therapist="jamie-lee"),
        _book("schedule-a-call", local(monday, 11), "Uma Gone", therapist="alex-rivera"),
    ]
    for name, service, therapist in [("Ann Waiting", "pt-evaluation", "jamie-lee"),
                                     ("Bob Waiting", "pt-evaluation", "jamie-lee"),
                                     ("Cat Waiting", "schedule-a-call", "alex-rivera")]:
        waitlist.join_waitlist(
            scheduling.bookable_service(service),
            scheduling.PatientDetails(name=name, email=f"{name.split()[0].lower()}@example.com"),
            monday, monday + timedelta(days=7), therapist_slug=therapist,
            now=saturday - timedelta(days=1),
        )
    def cancel(visit):
        """The offers the cancellation made, by whom they went to."""
        before = set(db.session.scalars(select(WaitlistOffer.id)))
        scheduling.cancel_appointment(visit, cancelled_by="patient", now=saturday)
        db.session.flush()
        return {offer.entry.patient_name: offer
                for offer in db.session.scalars(select(WaitlistOffer)) if offer.id not in before}

    # 09:00 goes to Ann and Bob, Ann claims it; then 14:00 to Bob, who lets it lapse; the
    # call to Cat, who claims it.
    nine = cancel(cancelled[0])
    assert sorted(nine) == ["Ann Waiting", "Bob Waiting"]
    waitlist.claim_offer(nine["Ann Waiting"], now=saturday + timedelta(minutes=20))
    assert sorted(cancel(cancelled[1])) == ["Bob Waiting"]
    call = cancel(cancelled[2])
    assert sorted(call) == ["Cat Waiting"]
    waitlist.claim_offer(call["Cat Waiting"], now=saturday + timedelta(minutes=30))
    db.session.commit()
    return f"{first:%b %Y}"


def test_the_waitlist_fills_of_the_seeded_month(waitlist_last_month):
    today = utc_now().astimezone(CLINIC_ZONE).date()
    fills = _table(clinic_figures(today), "waitlist")
    # Three freed times offered (09:00 to two patients counts once), two claimed: an hour's
    # evaluation and a quarter-hour call.
    assert fills["Freed times offered"][waitlist_last_month] == 3
    assert fills["Filled"][waitlist_last_month] == 2
    assert fills["Hours recovered"][waitlist_last_month] == 1.25
    assert fills["Freed times offered"][f"{today:%b %Y}"] == 0


def _table(figures, key):
    figure = next(figure for figure in figures if figure.key == key)
    return {name: dict(zip(figure.labels, values, strict=True))
            for name, values in figure.series}


def test_the_seeded_month_gives_the_known_answers(last_month):
    today = utc_now().astimezone(CLINIC_ZONE).date()
    month = last_month["month"]
    losses = _table(clinic_figures(today), "losses")
    assert losses["No-shows"][month] == 1
    assert losses["Late cancellations"][month] == 1
    evaluations = _table(clinic_figures(today), "evaluations")
    assert evaluations["Evaluations"][month] == 2
    assert evaluations["Followed by treatment"][month] == 1
    patients = _table(clinic_figures(today), "patients")
    assert patients["New patients"][f"{today:%b %Y}"] == 5


def test_utilisation_is_booked_hours_over_open_hours(last_month):
    monday = last_month["monday"]
    today = utc_now().astimezone(CLINIC_ZONE).date()
    if (today - monday).days >= 7 * 8:
        pytest.skip("the seeded week is older than the eight weeks shown")
    utilisation = _table(clinic_figures(today), "utilisation")
    # Alex: 36 open hours a week. That week: evaluations 60 + 60, needling 45, a no-show call
    # 15 (a no-show still held the time); the cancelled calls hold nothing: 180 minutes.
    assert utilisation["Alex Rivera, PT, DPT"][f"{monday:%d %b}"] == round(100 * 180 / (36 * 60), 1)
    assert utilisation["Jamie Lee, PT"][f"{monday:%d %b}"] == 0


def test_the_dashboard_page_is_for_admins_with_tables_under_the_charts(app, last_month):
    staff = staff_logins()
    assert signed_in(app, staff["front_desk"]).get("/desk/dashboard").status_code == 403
    page = signed_in(app, staff["admin"]).get("/desk/dashboard")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "No-shows and late cancellations per month" in text
    assert '<th scope="row">Late cancellations</th>' in text
    assert "vendor/chart.umd.min.js" in text
    assert '<th scope="row">Hours recovered</th>' in text
