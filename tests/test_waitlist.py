"""The waitlist that fills a cancelled visit by itself: who is offered a freed time, when the
mail goes, how an offer lapses and passes on, and how a claim books (the race is in
test_waitlist_race.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import event, select

from booking import scheduling
from booking.calendars.busy_calendars import add_calendar_upload, replace_upload
from booking.extensions import db
from booking.models import Appointment, WaitlistEntry, WaitlistOffer
from booking.notifications.dispatcher import DispatchReport, send_due
from booking.scheduling import therapist_hours, waitlist
from booking.scheduling.waitlist_offers import pass_on_lapsed_offers
from tests.conftest import local, next_weekday

# smtp_settings first: it must add the mail server to the settings before `app` is built.
pytestmark = pytest.mark.usefixtures("smtp_settings", "clinic")

MONDAY = next_weekday(0, at_least_days=10)
TUESDAY = MONDAY + timedelta(days=1)
# The clinic's clock in these stories: the Saturday before, mid-morning (clinic time).
SATURDAY_MORNING = local(MONDAY - timedelta(days=2), 10)


@pytest.fixture
def app_settings(app_settings):
    app_settings["WAITLIST_OFFERS_AT_ONCE"] = 2
    return app_settings


def join(name: str, service: str = "pt-evaluation", *, therapist: str | None = None,
         first: date = MONDAY, until: date | None = None, weekdays=None, parts=None,
         now: datetime = SATURDAY_MORNING, **details) -> WaitlistEntry:
    entry = waitlist.join_waitlist(
        scheduling.bookable_service(service),
        scheduling.PatientDetails(name=name, email=f"{name.split()[0].lower()}@example.com",
                                  **details),
        first, until or first + timedelta(days=14), therapist_slug=therapist,
        weekdays=weekdays, parts_of_day=parts, now=now,
    )
    db.session.commit()
    return entry


def cancel(appointment: Appointment, now: datetime = SATURDAY_MORNING) -> list[WaitlistOffer]:
    scheduling.cancel_appointment(appointment, cancelled_by="patient", now=now)
    db.session.commit()
    return offers()


def offers() -> list[WaitlistOffer]:
    return list(db.session.scalars(select(WaitlistOffer).order_by(WaitlistOffer.id)))


def offered_to(found: list[WaitlistOffer]) -> list[tuple[str, datetime]]:
    return [(offer.entry.patient_name, offer.start_at) for offer in found]


def offer_mails(smtp_inbox) -> dict[str, str]:
    """The offer mails that arrived: to whom, with their text."""
    mails = smtp_inbox.take()
    assert {mail["X-Booking-Notification"] for mail in mails} <= {"waitlist_offer"}
    return {
        mail["To"].addresses[0].addr_spec:
            mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
        for mail in mails
    }


def test_a_cancellation_offers_the_time_to_the_matching_entries_only_oldest_first(
    book, smtp_inbox
):
    visit = book("pt-evaluation", local(MONDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com")
    join("Ann Oldest")
    join("Bob Other Therapist", therapist="alex-rivera")
    join("Cat Tuesdays", weekdays=["tue"])
    join("Dan Afternoons", parts=["afternoon", "evening"])
    join("Eve Later", first=MONDAY + timedelta(days=1))
    join("Fay Ended", first=MONDAY - timedelta(days=1), until=MONDAY - timedelta(days=1))
    join("Gus Mornings", therapist="jamie-lee", weekdays=["mon"], parts=["morning"])
    join("Hal Third")
    smtp_inbox.take()

    written = cancel(visit)

    # Two at a time (the setting), the oldest entries the time suits, at the freed start.
    assert offered_to(written) == [("Ann Oldest", local(MONDAY, 9)),
                                   ("Gus Mornings", local(MONDAY, 9))]
    assert send_due(SATURDAY_MORNING) == DispatchReport(sent=3)  # with the cancellation
    mails = offer_mails_without_cancellation(smtp_inbox)
    assert sorted(mails) == ["ann@example.com", "gus@example.com"]
    assert f"/offers/{written[0].token}" in mails["ann@example.com"]
    assert "Jamie Lee, PT" in mails["ann@example.com"]


def offer_mails_without_cancellation(smtp_inbox) -> dict[str, str]:
    mails = smtp_inbox.take()
    kinds = sorted(mail["X-Booking-Notification"] for mail in mails)
    assert kinds == ["cancellation"] + ["waitlist_offer"] * (len(mails) - 1)
    return {
        mail["To"].addresses[0].addr_spec:
            mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
        for mail in mails if mail["X-Booking-Notification"] == "waitlist_offer"
    }


def test_quiet_hours_hold_the_offer_and_its_clock_until_morning(book, smtp_inbox):
    visit = book("pt-evaluation", local(MONDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com")
    join("Ann Waiting")
    smtp_inbox.take()
    saturday_night = local(MONDAY - timedelta(days=2), 22)
    [offer] = cancel(visit, now=saturday_night)

    assert send_due(saturday_night + timedelta(minutes=30)) == DispatchReport(sent=1)
    assert [mail["X-Booking-Notification"] for mail in smtp_inbox.take()] == ["cancellation"]
    sunday_morning = local(MONDAY - timedelta(days=1), 8)
    assert send_due(sunday_morning) == DispatchReport(sent=1)
    assert sorted(offer_mails(smtp_inbox)) == ["ann@example.com"]
    db.session.refresh(offer)
    assert offer.sent_at == sunday_morning
    # Two hours to claim, but never into the evaluation's 24 hours' notice: 09:00 Sunday.
    assert offer.expires_at == local(MONDAY - timedelta(days=1), 9)


def test_a_time_inside_the_notice_by_morning_is_not_offered_at_night(book, smtp_inbox):
    # A call needs 2 hours' notice: at 22:00, a 09:00 call would be offered only at 08:00.
    sunday = MONDAY - timedelta(days=1)
    visit = book("schedule-a-call", local(MONDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com", phone="+1 586 555 0101")
    join("Ann Early", "schedule-a-call", phone="+1 586 555 0102", parts=["morning"],
         weekdays=["mon"])
    assert cancel(visit, now=local(sunday, 22)) == []
    # The same cancellation in the afternoon before is offered.
    visit = book("schedule-a-call", local(MONDAY, 9), "jamie-lee", name="Sam Again",
                 email="sam@example.com", phone="+1 586 555 0101")
    assert [offer.start_at for offer in cancel(visit, now=local(sunday, 15))] == [
        local(MONDAY, 9)
    ]


def test_an_unclaimed_offer_expires_and_the_time_passes_to_the_next_entry(
    book, smtp_inbox, app
):
    app.config["WAITLIST_OFFERS_AT_ONCE"] = 1
    visit = book("pt-evaluation", local(MONDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com")
    join("Ann First")
    join("Ben Second")
    [first] = cancel(visit)
    send_due(SATURDAY_MORNING)
    smtp_inbox.take()

    # Within its two hours nothing passes on; after them, the next entry has the time.
    assert pass_on_lapsed_offers(SATURDAY_MORNING + timedelta(minutes=119)) == 0
    later = SATURDAY_MORNING + timedelta(hours=2, minutes=1)
    assert pass_on_lapsed_offers(later) == 1
    assert offered_to(offers()) == [("Ann First", local(MONDAY, 9)),
                                    ("Ben Second", local(MONDAY, 9))]
    assert [offer.status for offer in offers()] == ["expired", "sent"]
    send_due(later)
    assert sorted(offer_mails(smtp_inbox)) == ["ben@example.com"]
    with pytest.raises(waitlist.OfferExpired):
        waitlist.claim_offer(first, now=later)


def test_dry_needling_is_not_offered_to_a_patient_without_the_evaluation(book):
    evaluated = book("pt-evaluation", local(MONDAY - timedelta(days=7), 9), "alex-rivera",
                     name="Eva Evaluated", email="eva@example.com")
    assert evaluated.id
    needling = book("dry-needling", local(TUESDAY, 9), "alex-rivera", name="Eva Evaluated",
                    email="eva@example.com")
    join("Nat Never Evaluated", "dry-needling", first=TUESDAY)
    join("Eva Evaluated", "dry-needling", first=TUESDAY,
         now=SATURDAY_MORNING + timedelta(minutes=1))
    # Eva has the session booked and waits for another (her entry ended when she booked):
    db.session.execute(
        WaitlistEntry.__table__.update()
        .where(WaitlistEntry.patient_name == "Eva Evaluated")
        .values(status="waiting")
    )
    db.session.commit()

    written = cancel(needling)

    assert [offer.entry.patient_name for offer in written] == ["Eva Evaluated"]


def test_a_patient_who_books_by_other_means_leaves_the_waitlist(client, book):
    entry = join("Ann Booking")
    book("pt-evaluation", local(TUESDAY, 10), "jamie-lee", name="Ann Booking",
         email="ann@example.com")
    answer = client.get(f"/api/v1/waitlist/{entry.id}",
                        headers={"Authorization": f"Bearer {entry.manage_token}"})
    assert answer.status_code == 200
    assert answer.json["status"] == "booked"


def test_an_entry_past_its_until_is_offered_nothing(book):
    visit = book("pt-evaluation", local(TUESDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com")
    entry = join("Ann Until Monday", until=MONDAY)
    assert cancel(visit) == []
    # The day after its `until`, the periodic work ends it.
    pass_on_lapsed_offers(local(MONDAY, 23, 59))
    db.session.refresh(entry)
    assert entry.status == "waiting"
    pass_on_lapsed_offers(local(TUESDAY, 0, 1))
    db.session.refresh(entry)
    assert entry.status == "ended"


# --- through the API --------------------------------------------------------------------


def join_body(**changes) -> dict:
    body = {
        "service": "pt-evaluation",
        "from": MONDAY.isoformat(),
        "until": (MONDAY + timedelta(days=14)).isoformat(),
        "weekdays": ["mon", "tue"],
        "parts_of_day": ["morning"],
        "patient": {"name": "Lily Park", "email": "parent@example.com",
                    "date_of_birth": "2019-04-02", "guardian_name": "Mia Park"},
    }
    return {**body, **changes}


def test_joining_and_leaving_through_the_api(client):
    answer = client.post("/api/v1/waitlist", json=join_body())
    assert answer.status_code == 201
    entry = answer.json
    assert entry["status"] == "waiting"
    assert entry["from"] == MONDAY.isoformat()
    assert entry["weekdays"] == ["mon", "tue"]
    bearer = {"Authorization": f"Bearer {entry['manage_token']}"}

    assert client.get(f"/api/v1/waitlist/{entry['id']}",
                      headers={"Authorization": "Bearer wrong"}).status_code == 404
    shown = client.get(f"/api/v1/waitlist/{entry['id']}", headers=bearer)
    assert shown.status_code == 200
    assert "manage_token" not in shown.json
    assert client.delete(f"/api/v1/waitlist/{entry['id']}", headers=bearer).json["status"] == (
        "left"
    )
    assert client.get(f"/api/v1/waitlist/{entry['id']}", headers=bearer).json["status"] == "left"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"until": (MONDAY - timedelta(days=1)).isoformat()}, "until"),
        ({"weekdays": ["someday"]}, "weekdays.0"),
        ({"parts_of_day": ["night"]}, "parts_of_day.0"),
        ({"service": "massage"}, "service"),
        ({"therapist": "nobody"}, "therapist"),
        ({"from": "next week"}, "from"),
    ],
)
def test_a_bad_waitlist_entry_is_refused_naming_the_field(client, changes, field):
    answer = client.post("/api/v1/waitlist", json=join_body(**changes))
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == field
    assert db.session.scalars(select(WaitlistEntry)).all() == []


def test_claiming_an_offer_books_it_and_a_later_claim_is_told_it_was_taken(
    client, book, app
):
    visit = book("pt-evaluation", local(MONDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com")
    first, second = join("Ann Quick"), join("Ben Slow")
    now = datetime.now(tz=SATURDAY_MORNING.tzinfo)
    scheduling.cancel_appointment(visit, now=now)
    db.session.commit()
    ann_offer, ben_offer = offers()

    claimed = client.post(f"/api/v1/offers/{ann_offer.token}/claim")
    assert claimed.status_code == 201
    assert claimed.json["start"] == local(MONDAY, 9).isoformat()
    assert claimed.json["therapist"] == "jamie-lee"
    assert claimed.json["patient"] == "Ann Quick"
    late = client.post(f"/api/v1/offers/{ben_offer.token}/claim")
    assert late.status_code == 409
    assert late.json["error"]["code"] == "offer_taken"
    assert client.post("/api/v1/offers/no-such-offer/claim").status_code == 404

    def status(entry):
        return client.get(f"/api/v1/waitlist/{entry.id}",
                          headers={"Authorization": f"Bearer {entry.manage_token}"}
                          ).json["status"]

    assert (status(first), status(second)) == ("booked", "waiting")


# --- the patient pages --------------------------------------------------------------------


def test_joining_from_the_booking_page_and_leaving_through_the_link(client):
    page = client.get("/book/pt-evaluation")
    assert page.status_code == 200
    assert "/waitlist/pt-evaluation/join" in page.text
    assert client.get("/waitlist/pt-evaluation/join").status_code == 200
    form = {
        "visit_for": "child", "name": "Mia Park", "email": "parent@example.com",
        "child_name": "Lily Park", "child_date_of_birth": "2019-04-02",
        "available_from": MONDAY.isoformat(), "until": (MONDAY + timedelta(days=7)).isoformat(),
        "weekdays": ["mon", "wed"], "parts_of_day": ["morning"], "therapist": "",
    }
    refused = client.post("/waitlist/pt-evaluation/join",
                          data={**form, "until": (MONDAY - timedelta(days=1)).isoformat()})
    assert refused.status_code == 422
    assert "The last day cannot be before the first." in refused.text
    assert db.session.scalars(select(WaitlistEntry)).all() == []

    joined = client.post("/waitlist/pt-evaluation/join", data=form)
    assert joined.status_code == 303
    [entry] = db.session.scalars(select(WaitlistEntry)).all()
    assert (entry.patient_name, entry.patient_guardian_name, entry.weekdays,
            entry.parts_of_day) == ("Lily Park", "Mia Park", [0, 2], ["morning"])
    page = client.get(joined.headers["Location"])
    assert "You are on the waitlist." in page.text
    left = client.post(f"/waitlist/entry/{entry.manage_token}/leave")
    assert left.status_code == 303
    assert "You are no longer on the waitlist." in client.get(left.headers["Location"]).text


def test_the_offer_link_changes_nothing_and_its_one_button_claims_the_time(client, book):
    visit = book("pt-evaluation", local(MONDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com")
    join("Ann Quick")
    join("Ben Slow")
    scheduling.cancel_appointment(visit, now=datetime.now(tz=SATURDAY_MORNING.tzinfo))
    db.session.commit()
    ann_offer, ben_offer = offers()

    page = client.get(f"/offers/{ann_offer.token}")
    assert page.status_code == 200
    assert "Book this time" in page.text
    assert page.text.count("<button") == 1
    db.session.rollback()
    assert db.session.scalars(select(Appointment).where(Appointment.status == "confirmed")
                              ).all() == []

    claimed = client.post(f"/offers/{ann_offer.token}")
    assert claimed.status_code == 303
    assert "/manage/" in claimed.headers["Location"]
    assert "You have booked this time." in client.get(f"/offers/{ann_offer.token}").text

    late = client.post(f"/offers/{ben_offer.token}")
    assert late.status_code == 409
    assert "another patient claimed this time first" in late.text
    assert "You are still on the waitlist" in late.text
    assert client.get("/offers/not-a-token").status_code == 404


def test_a_moved_visit_and_removed_time_off_free_times_for_the_waitlist(book):
    visit = book("pt-evaluation", local(MONDAY, 9), "jamie-lee", name="Sam Moving",
                 email="sam@example.com")
    join("Ann Mondays", weekdays=["mon"], parts=["morning"])
    join("Ben Tuesdays", therapist="jamie-lee", weekdays=["tue"], parts=["afternoon"])
    scheduling.reschedule_appointment(visit, local(TUESDAY, 9), now=SATURDAY_MORNING)
    db.session.commit()
    assert offered_to(offers()) == [("Ann Mondays", local(MONDAY, 9))]

    jamie = visit.therapist
    therapist_hours.add_time_off(
        jamie, datetime.combine(TUESDAY, time(13)), datetime.combine(TUESDAY, time(17)),
        "Course", by="staff:desk@clinic.example", now=SATURDAY_MORNING,
    )
    db.session.commit()
    [time_off] = jamie.time_off
    therapist_hours.remove_time_off(time_off, by="staff:desk@clinic.example",
                                    now=SATURDAY_MORNING)
    db.session.commit()
    # 12:00-13:15 was blocked by the time off too: the first afternoon time it frees.
    assert offered_to(offers())[1:] == [("Ben Tuesdays", local(TUESDAY, 12))]


def test_a_busy_event_gone_from_the_therapists_calendar_frees_its_time(clinic):
    jamie = scheduling.therapists_offering(scheduling.bookable_service("pt-evaluation"),
                                           "jamie-lee")[0]
    busy_from = local(MONDAY, 9).astimezone(UTC)

    def calendar_with(events: str) -> bytes:
        return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n" + events
                + "END:VCALENDAR\r\n").encode()

    event = (f"BEGIN:VEVENT\r\nUID:dentist@test\r\nDTSTAMP:20261201T000000Z\r\n"
             f"DTSTART:{busy_from:%Y%m%dT%H%M%SZ}\r\n"
             f"DTEND:{busy_from + timedelta(hours=8):%Y%m%dT%H%M%SZ}\r\nEND:VEVENT\r\n")
    calendar = add_calendar_upload(jamie, calendar_with(event), name="Jamie's own",
                                   now=SATURDAY_MORNING)
    db.session.commit()
    join("Ann Mondays", therapist="jamie-lee", weekdays=["mon"])
    assert offers() == []

    replace_upload(calendar, calendar_with(""), now=SATURDAY_MORNING)
    db.session.commit()
    assert offered_to(offers()) == [("Ann Mondays", local(MONDAY, 9))]


def test_a_cancellation_and_its_offers_are_written_in_twelve_statements(book):
    """The visit, its audit entry and mail, the waiting entries found and their offers and
    mail: one statement each, however many wait (the waitlist bench holds 5,000)."""
    visit = book("pt-evaluation", local(MONDAY, 9), "jamie-lee", name="Sam Gone",
                 email="sam@example.com")
    for name in ("Ann Oldest", "Bob Second", "Cat Third"):
        join(name)
    sent = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        written = cancel(visit)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert offered_to(written) == [("Ann Oldest", local(MONDAY, 9)),
                                   ("Bob Second", local(MONDAY, 9))]
    cancelling = [statement for statement in sent[:-1]  # the last: the test's own offers()
                  if not statement.startswith(("BEGIN", "COMMIT"))]
    # SQLite writes the offers one at a time (a multi-row INSERT there cannot say which new
    # id is whose); PostgreSQL in one statement.
    budget = 12 if db.engine.dialect.name == "postgresql" else 11 + len(written)
    assert len(cancelling) <= budget, cancelling
