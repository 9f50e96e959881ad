"""The waitlist for staff: the back office's list, oldest first with its offers, adding and
removing entries, offering a free time by hand, the month's figures; and the staff API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from booking import scheduling
from booking.extensions import db
from booking.models import WaitlistEntry, WaitlistOffer, utc_now
from booking.scheduling import waitlist
from tests.conftest import local, next_weekday
from tests.desk_staff import signed_in, staff_logins

MONDAY = next_weekday(0, at_least_days=5)


@pytest.fixture
def staff(clinic):
    return staff_logins()


def join(name: str, service: str = "pt-evaluation", therapist: str | None = None):
    entry = waitlist.join_waitlist(
        scheduling.bookable_service(service),
        scheduling.PatientDetails(name=name, email=f"{name.split()[0].lower()}@example.com",
                                  phone="+1 586 555 0150"),
        MONDAY, MONDAY + timedelta(days=14), therapist_slug=therapist,
    )
    db.session.commit()
    return entry


def test_front_desk_sees_the_waitlist_oldest_first_with_each_entrys_offers(app, staff, book):
    visit = book("pt-evaluation", local(MONDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com")
    join("Ann Oldest")
    join("Ben Newer", therapist="jamie-lee")
    scheduling.cancel_appointment(visit, now=utc_now())
    db.session.commit()

    page = signed_in(app, staff["front_desk"]).get("/desk/waitlist")
    assert page.status_code == 200
    assert page.text.index("Ann Oldest") < page.text.index("Ben Newer")
    assert page.text.count("with Jamie Lee, PT: sent") == 2
    assert 'data-metric="freed">1<' in page.text
    assert 'data-metric="offered">1<' in page.text
    assert 'data-metric="filled">0<' in page.text
    assert signed_in(app, staff["therapist"]).get("/desk/waitlist").status_code == 403


def test_staff_add_and_remove_entries(app, staff):
    desk = signed_in(app, staff["front_desk"])
    form = {
        "service": "pt-evaluation", "therapist": "", "available_from": MONDAY.isoformat(),
        "until": (MONDAY + timedelta(days=7)).isoformat(), "weekdays": ["mon"],
        "name": "Cal Phoned", "email": "cal@example.com", "phone": "+1 586 555 0160",
        "guardian_name": "",
    }
    refused = desk.post("/desk/waitlist/add", data={**form, "email": "not an address"})
    assert refused.status_code == 422
    assert db.session.scalars(select(WaitlistEntry)).all() == []
    assert desk.post("/desk/waitlist/add", data=form).status_code == 303
    [entry] = db.session.scalars(select(WaitlistEntry)).all()
    assert (entry.patient_name, entry.weekdays, entry.added_by) == (
        "Cal Phoned", [0], "staff:desk@clinic.example"
    )
    assert desk.post(f"/desk/waitlist/{entry.id}/remove").status_code == 303
    db.session.refresh(entry)
    assert entry.status == "removed"
    assert "No one is waiting." in desk.get("/desk/waitlist").text


def test_offering_a_free_time_by_hand_from_the_calendar(app, staff):
    join("Ann Waiting")
    desk = signed_in(app, staff["front_desk"])
    booking_page = desk.get(
        f"/desk/book?therapist=jamie-lee&day={MONDAY.isoformat()}&time=11:00"
    )
    assert "Offer this time to the waitlist instead" in booking_page.text
    page = desk.get(
        f"/desk/waitlist?offer_therapist=jamie-lee&offer_day={MONDAY.isoformat()}"
        "&offer_time=11:00"
    )
    assert "Offer this time" in page.text
    offered = desk.post("/desk/waitlist/offer", data={
        "service": "pt-evaluation", "therapist": "jamie-lee",
        "start": local(MONDAY, 11).isoformat(),
    })
    assert offered.status_code == 303
    [offer] = db.session.scalars(select(WaitlistOffer)).all()
    assert (offer.entry.patient_name, offer.start_at, offer.offered_by) == (
        "Ann Waiting", local(MONDAY, 11), "staff:desk@clinic.example"
    )


def test_the_staff_api_lists_the_waiting_entries_oldest_first(app, client, staff):
    join("Ann Oldest")
    join("Ben Call", "schedule-a-call")
    join("Cat Newest")
    token = app.test_cli_runner().invoke(
        args=["users", "token", "--email", "desk@clinic.example"]
    ).output.strip()
    answer = client.get("/api/v1/staff/waitlist?service=pt-evaluation",
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert [row["patient"]["name"] for row in answer.json] == ["Ann Oldest", "Cat Newest"]
    assert answer.json[0]["offers"] == []
    assert "manage_token" not in answer.json[0]
    assert client.get("/api/v1/staff/waitlist").status_code == 401
    unknown = client.get("/api/v1/staff/waitlist?service=massage",
                         headers={"Authorization": f"Bearer {token}"})
    assert (unknown.status_code, unknown.json["error"]["field"]) == (422, "service")
