"""Offers from the waitlist: when a time becomes free, the entries waiting for it are offered
it, oldest first, a few at a time; an offer not claimed in time passes to the next ones.

Called inside the transaction of the change that freed the time (a cancellation, a move,
hours added, time off removed), so the offers and their mail (outbox rows) are committed with
it or not at all. Whom to offer a time follows the booking rules: the time must be one the
service may be booked at now (notice, booking window, hours), the patient must be one who may
book it online (booking_eligibility), and the mail, held by the quiet hours, must leave before
the time falls inside the service's notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import Row, bindparam, exists, or_, select, update

from booking.clinic.reference import current_clinic, reference_data, service_row, zone_named
from booking.database import driver_rows, hold_write_lock, is_postgresql, one_of
from booking.extensions import db
from booking.models import (
    OfferStatus,
    Patient,
    Service,
    Therapist,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
    utc_now,
)
from booking.notifications import outbox
from booking.rules import availability
from booking.rules import waitlist as waitlist_rules
from booking.scheduling.booking_eligibility import (
    asks_for_patient_record,
    online_booking_refusal,
)
from booking.scheduling.therapist_time import booking_rules, local_day_bounds, therapist_calendars

# Entries are read oldest first, a page at a time, until the freed times are offered: most
# often the first few suit, so the first page is small.
_FIRST_PAGE = 10
_LATER_PAGES = 200


def offer_freed_time(
    therapist: Therapist,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    *,
    by: str = "waitlist",
) -> list[WaitlistOffer]:
    """The therapist's time from `start` to `end` became free: offer the bookable times in it
    to the waiting entries they suit. Returns the offers written."""
    now = now or utc_now()
    if end <= now or not therapist.active:
        return []
    return _offer(therapist, None, max(start, now), end, now, by=by)


def offer_time(
    service: Service, therapist: Therapist, start: datetime, *, by: str,
    now: datetime | None = None,
) -> list[WaitlistOffer]:
    """Offer this one time (a free slot) to the next entries waiting for it: staff's "offer
    this time", and an unclaimed offer passing on."""
    now = now or utc_now()
    end = start + timedelta(minutes=service.duration_minutes)
    return _offer(therapist, [service], start, end, now, by=by, exact_start=start)


def offer_hours_added(
    therapist: Therapist, windows: Iterable[availability.WorkingHours], now: datetime | None = None,
) -> list[WaitlistOffer]:
    """New weekly windows: each of their days ahead, as far as any service is booked ahead."""
    now = now or utc_now()
    windows = list(windows)
    if not windows:
        return []
    zone = zone_named(current_clinic().timezone)
    horizon = max((service.max_advance_days for service in therapist.services), default=0)
    today = now.astimezone(zone).date()
    offers = []
    for days in range(horizon + 1):
        day = today + timedelta(days=days)
        for window in windows:
            if window.weekday == day.weekday():
                offers += offer_freed_time(
                    therapist,
                    _at(day, window.start, zone),
                    _at(day, window.end, zone),
                    now,
                )
    return offers


def offer_time_off_ended(
    therapist: Therapist, starts_local: datetime, ends_local: datetime,
    now: datetime | None = None,
) -> list[WaitlistOffer]:
    """Time off removed: its span (clinic wall clock) is free again."""
    zone = zone_named(current_clinic().timezone)
    return offer_freed_time(
        therapist, starts_local.replace(tzinfo=zone), ends_local.replace(tzinfo=zone), now
    )


def end_entries_for_booking(identity: str, service_id: int, now: datetime) -> None:
    """The patient booked the service (by whatever means): they no longer wait for it."""
    db.session.execute(
        update(WaitlistEntry)
        .where(
            WaitlistEntry.patient_identity == identity,
            WaitlistEntry.service_id == service_id,
            WaitlistEntry.status == WaitlistStatus.WAITING,
        )
        .values(status=WaitlistStatus.BOOKED, ended_at=now)
        .execution_options(synchronize_session="fetch")
    )


def pass_on_lapsed_offers(now: datetime | None = None) -> int:
    """Periodic work: offers not claimed in time expire and their times go to the next
    entries; entries past their `until` end. Returns how many offers expired."""
    now = now or utc_now()
    hold_write_lock()
    lapsed = (
        select(WaitlistOffer)
        .where(
            WaitlistOffer.status == OfferStatus.SENT,
            or_(WaitlistOffer.expires_at <= now, WaitlistOffer.claim_by <= now),
        )
        .order_by(WaitlistOffer.id)
    )
    if is_postgresql():
        lapsed = lapsed.with_for_update(skip_locked=True)
    offers = db.session.scalars(lapsed).all()
    times = {}
    for offer in offers:
        offer.status = OfferStatus.EXPIRED
        times[(offer.therapist_id, offer.start_at, offer.entry.service_id)] = offer
    db.session.flush()
    for offer in times.values():
        if offer.claim_by > now:
            offer_time(offer.entry.service, offer.therapist, offer.start_at, now=now,
                       by="waitlist")
    zone = zone_named(current_clinic().timezone)
    db.session.execute(
        update(WaitlistEntry)
        .where(
            WaitlistEntry.status == WaitlistStatus.WAITING,
            WaitlistEntry.until < now.astimezone(zone).date(),
        )
        .values(status=WaitlistStatus.ENDED, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return len(offers)


def claim_window() -> timedelta:
    return timedelta(minutes=current_app.config["WAITLIST_CLAIM_MINUTES"])


def is_open(offer: WaitlistOffer, now: datetime) -> bool:
    """Still claimable: neither claimed, taken nor lapsed."""
    if offer.status != OfferStatus.SENT or offer.claim_by <= now:
        return False
    return offer.expires_at is None or offer.expires_at > now


# --- inside the transaction ----------------------------------------------------------------


def _offer(
    therapist: Therapist,
    services: list[Service] | None,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    by: str,
    exact_start: datetime | None = None,
) -> list[WaitlistOffer]:
    """Offer the bookable times of `services` (None: every service the therapist offers)
    between `start` and `end` to the entries waiting for them."""
    clinic = current_clinic()
    zone = zone_named(clinic.timezone)
    first_day = start.astimezone(zone).date()
    last_day = (end - timedelta(microseconds=1)).astimezone(zone).date()
    # Most freed times find no one waiting: one query says so.
    services = _services_waited_for(therapist, services, first_day, last_day)
    if not services:
        return []
    times = _bookable_times(therapist, services, start, end, now, clinic.slot_step_minutes,
                            zone, first_day, last_day, exact_start)
    if not times:
        return []
    # A few entries at a time: those already offered one of these times and not yet past
    # their offer count against the clinic's number.
    offered, still_open = _earlier_offers(therapist, times, now)
    room = current_app.config["WAITLIST_OFFERS_AT_ONCE"] - still_open
    if room <= 0:
        return []
    mail_leaves = outbox.outside_quiet_hours(now, zone)
    by_service = {service.id: service for service in services}
    offers: list[WaitlistOffer] = []
    starts = [start_at for service_starts in times.values() for start_at in service_starts]
    walls = [start_at.astimezone(zone) for start_at in starts]
    weekday_bits = waitlist_rules.as_mask({wall.weekday() for wall in walls}, range(7))
    part_bits = waitlist_rules.as_mask(
        {waitlist_rules.part_of_day(wall.time()) for wall in walls}, waitlist_rules.PARTS_OF_DAY
    )
    entries = _waiting_entries(
        therapist, [service_id for service_id in by_service if service_id in times],
        min(walls).date(), max(walls).date(), weekday_bits, part_bits,
    )
    # Candidates are gathered a few at a time, then their patients read in one query to ask
    # the booking rules whether they may book the service (most may).
    candidates: list[tuple[Row, Service, datetime, datetime]] = []
    with db.session.no_autoflush:
        for entry in entries:
            if entry.id in offered:
                continue
            service = by_service[entry.service_id]
            wish = _wish(entry, service, therapist)
            for start_at in times.get(service.id, ()):
                if not waitlist_rules.suits(wish, service.slug, therapist.slug, start_at, zone):
                    continue
                claim_by = start_at - timedelta(hours=service.min_notice_hours)
                if waitlist_rules.offer_goes_out(now, mail_leaves, claim_by):
                    candidates.append((entry, service, start_at, claim_by))
                    break  # one offer per entry for one freed time
            if len(candidates) == room - len(offers):
                offers += _offers_to_eligible(candidates, therapist, now, mail_leaves, by)
                candidates = []
                if len(offers) == room:
                    break
        offers += _offers_to_eligible(candidates, therapist, now, mail_leaves, by)
    if offers:
        db.session.flush()
    return offers


def _offers_to_eligible(candidates, therapist: Therapist, now: datetime, mail_leaves: datetime,
                        by: str) -> list[WaitlistOffer]:
    """Offers (and their mail) to those of the candidates whom the booking rules let book."""
    if not candidates:
        return []
    patients = {}
    if any(asks_for_patient_record(service) for _, service, *_ in candidates):
        identities = {entry.patient_identity for entry, *_ in candidates}
        patients = {
            patient.identity: patient
            for patient in db.session.scalars(
                select(Patient).where(Patient.identity.in_(identities))
            )
        }
    offers = []
    for entry, service, start_at, claim_by in candidates:
        if online_booking_refusal(service, patients.get(entry.patient_identity), start_at):
            continue
        offer = WaitlistOffer(
            entry_id=entry.id,
            therapist_id=therapist.id,
            start_at=start_at,
            status=OfferStatus.SENT,
            claim_by=claim_by,
            offered_by=by,
            created_at=now,
        )
        db.session.add(offer)
        outbox.plan_for_offer(offer, mail_leaves)
        offers.append(offer)
    return offers


def _services_waited_for(therapist: Therapist, services: list[Service] | None,
                         first_day: date, last_day: date) -> list[Service]:
    """Those of the services (or of the therapist's) that someone waits for on these days.

    One statement: for each service the therapist offers, whether one entry waits (the
    waiting index finds the first without reading the thousands behind it)."""
    facts = reference_data()
    offered = facts.therapist_with_id(therapist.id)
    wanted = None if services is None else {service.id for service in services}
    candidates = [
        service_id for service_id in (offered.service_ids if offered else ())
        if (wanted is None or service_id in wanted)
        and (service := facts.service_with_id(service_id)) is not None and service.active
    ]
    if not candidates:
        return []
    connection = db.session.connection()
    ids = {service_id for (service_id,) in driver_rows(
        connection, _someone_waits_for(connection.dialect.name),
        {"service_ids": candidates, "therapist_id": therapist.id, "first_day": first_day,
         "last_day": last_day},
    )}
    return [
        service_row(facts.service_with_id(service_id))
        for service_id in candidates if service_id in ids
    ]


@cache
def _someone_waits_for(dialect_name: str):
    """Those of some services (ids) that an entry waits for, for a therapist or for anyone,
    on some days. Built once per process and database: every cancel and move asks it."""
    return select(Service.id).where(
        one_of(Service.id, "service_ids", dialect_name=dialect_name),
        exists().where(
            WaitlistEntry.service_id == Service.id,
            *_waiting_for(bindparam("therapist_id"), bindparam("first_day"),
                          bindparam("last_day")),
        ),
    )


def _waiting_for(therapist_id, first_day, last_day) -> list:
    """An entry still waiting, for this therapist or anyone, on one of these days (values,
    or the parameters of a statement built once)."""
    return [
        WaitlistEntry.status == WaitlistStatus.WAITING,
        or_(WaitlistEntry.therapist_id.is_(None), WaitlistEntry.therapist_id == therapist_id),
        WaitlistEntry.available_from <= last_day,
        WaitlistEntry.until >= first_day,
    ]


def _waiting_query(therapist: Therapist, service_ids, first_day: date, last_day: date):
    return select(WaitlistEntry).where(
        WaitlistEntry.service_id.in_(service_ids),
        *_waiting_for(therapist.id, first_day, last_day),
    )


def _waiting_entries(therapist: Therapist, service_ids: list[int], first_day: date,
                     last_day: date, weekday_bits: int, part_bits: int) -> Iterator[Row]:
    """The entries that may want one of these times (their days, weekdays and parts of the
    day), oldest first, a page at a time, as plain rows: thousands may wait."""
    columns = (
        WaitlistEntry.id, WaitlistEntry.service_id, WaitlistEntry.therapist_id,
        WaitlistEntry.available_from, WaitlistEntry.until, WaitlistEntry.weekday_mask,
        WaitlistEntry.part_of_day_mask, WaitlistEntry.patient_identity,
    )
    query = (
        _waiting_query(therapist, service_ids, first_day, last_day)
        .where(
            or_(WaitlistEntry.weekday_mask == 0,
                WaitlistEntry.weekday_mask.op("&")(weekday_bits) != 0),
            or_(WaitlistEntry.part_of_day_mask == 0,
                WaitlistEntry.part_of_day_mask.op("&")(part_bits) != 0),
        )
        .with_only_columns(*columns)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    )
    offset, size = 0, _FIRST_PAGE
    while True:
        page = db.session.execute(query.offset(offset).limit(size)).all()
        yield from page
        if len(page) < size:
            return
        offset, size = offset + size, _LATER_PAGES


def _wish(entry: Row, service: Service, therapist: Therapist) -> waitlist_rules.WaitingWish:
    return waitlist_rules.WaitingWish(
        service=service.slug,
        therapist=therapist.slug if entry.therapist_id is not None else None,
        available_from=entry.available_from,
        until=entry.until,
        weekdays=frozenset(waitlist_rules.from_mask(entry.weekday_mask, range(7))),
        parts_of_day=frozenset(
            waitlist_rules.from_mask(entry.part_of_day_mask, waitlist_rules.PARTS_OF_DAY)
        ),
    )


def _bookable_times(therapist, services, start, end, now, step, zone, first_day, last_day,
                    exact_start) -> dict[int, list[datetime]]:
    """For each service (by id), the starts a patient could book now that overlap the freed
    span, earliest first."""
    longest = max(
        timedelta(minutes=service.duration_minutes + service.buffer_after_minutes)
        for service in services
    )
    day_start, day_end = local_day_bounds(first_day, last_day, zone)
    [calendar] = therapist_calendars([therapist], day_start - longest, day_end + longest)
    times: dict[int, list[datetime]] = {}
    for service in services:
        span = timedelta(minutes=service.duration_minutes + service.buffer_after_minutes)
        slots = availability.free_slots(
            [calendar], booking_rules(service, step), zone, first_day, last_day, now
        )
        starts = [
            slot.start for slot in slots
            if slot.start < end and slot.start + span > start
            and (exact_start is None or slot.start == exact_start)
        ]
        if starts:
            times[service.id] = starts
    return times


def _earlier_offers(therapist: Therapist, times: dict[int, list[datetime]], now: datetime):
    """Which entries were already offered one of these times (an entry is offered a time
    once), and how many of those offers are still open."""
    starts = {slot_start for service_starts in times.values() for slot_start in service_starts}
    offered: set[int] = set()
    still_open = 0
    rows = db.session.execute(
        select(WaitlistOffer, WaitlistEntry.service_id)
        .join(WaitlistEntry, WaitlistEntry.id == WaitlistOffer.entry_id)
        .where(WaitlistOffer.therapist_id == therapist.id, WaitlistOffer.start_at.in_(starts))
    ).all()
    for offer, service_id in rows:
        if service_id in times:
            offered.add(offer.entry_id)
            still_open += is_open(offer, now)
    return offered, still_open


def _at(day: date, wall, zone) -> datetime:
    return datetime.combine(day, wall, tzinfo=zone)
