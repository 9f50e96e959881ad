"""The clinic's reference data (the clinic, its services, therapists, hours and time off) as
plain values, read once per revision and kept by each process; every other module reads them
through here.

The clinic row's `reference_revision` is raised in the same transaction as any change to that
data, by a flush hook below (so the clinic file, the back office and anyone else writing
through the ORM raise it without thinking of it). A request reads the revision once, with one
cheap statement, and rebuilds the process's copy only when it moved: a change made by any
worker on any host is seen by the next request everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache, lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, request
from sqlalchemy import event, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from booking.database import (
    as_loaded,
    connection_for_reads,
    driver_rows,
    reading_outside_the_session,
)
from booking.extensions import db
from booking.models import Clinic, Service, Therapist, TimeOff, WorkingHours, therapist_services
from booking.rules import availability

T = TypeVar("T")


class ClinicNotConfigured(Exception):
    """No clinic file has been loaded yet."""


@lru_cache(maxsize=16)
def zone_named(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class ClinicFacts:
    id: int
    name: str
    timezone: str
    email: str
    phone: str
    address: str
    website: str
    slot_step_minutes: int
    feed_details: str
    feed_rotation: int
    updated_at: datetime
    languages: tuple[str, ...]
    reference_revision: int

    @property
    def zone(self) -> ZoneInfo:
        return zone_named(self.timezone)


@dataclass(frozen=True)
class ServiceFacts:
    """A service as availability and booking read it; the same names as the Service row."""

    id: int
    slug: str
    name: str
    description: str
    kind: str
    duration_minutes: int
    buffer_after_minutes: int
    min_notice_hours: int
    max_advance_days: int
    reminders: tuple[str, ...]
    aftercare: tuple[str, ...]
    requires_evaluation: bool
    requires_clearance: bool
    max_series_visits: int
    aftercare_advice: str
    forms: tuple[str, ...]
    translations: dict
    active: bool
    position: int


@dataclass(frozen=True)
class TherapistFacts:
    """A therapist with the services they offer and their hours and time off (wall clock)."""

    id: int
    slug: str
    name: str
    email: str
    disciplines: tuple[str, ...]
    active: bool
    position: int
    feed_rotation: int
    service_ids: frozenset[int]
    hours: tuple[availability.WorkingHours, ...]
    time_off: tuple[availability.TimeOff, ...]

    def offers(self, service) -> bool:
        return service.id in self.service_ids


@dataclass(frozen=True)
class ReferenceData:
    revision: int
    clinic: ClinicFacts
    services: tuple[ServiceFacts, ...]  # in the clinic file's order
    therapists: tuple[TherapistFacts, ...]  # in the clinic file's order

    def service(self, slug: str) -> ServiceFacts | None:
        return next((service for service in self.services if service.slug == slug), None)

    def service_with_id(self, service_id: int) -> ServiceFacts | None:
        return next((service for service in self.services if service.id == service_id), None)

    def therapist(self, slug: str) -> TherapistFacts | None:
        return next((therapist for therapist in self.therapists if therapist.slug == slug), None)

    def therapist_with_id(self, therapist_id: int) -> TherapistFacts | None:
        return next(
            (therapist for therapist in self.therapists if therapist.id == therapist_id), None
        )


# --- reading -------------------------------------------------------------------------------

_CHECKED = "booking.reference_data"  # the copy this request has checked (or transaction)
_UNCHECKED = "booking.reference_data_unchecked"  # ... or is using, its revision to be checked
_CHANGED = "reference_data_changed"  # this transaction changed reference data (not committed)


class ReferenceDataChanged(Exception):
    """The process's copy, used unchecked, was older than the database's."""


def reference_data() -> ReferenceData:
    """The clinic's reference data as of now: the revision is read once per request."""
    checked = _checked_store().get(_CHECKED)
    if checked is not None:
        return checked
    connection = _connection_for_reference()
    revision = _current_revision(connection)
    if _changed_in_this_transaction():
        # Changed in this transaction, not committed: read afresh and keep it to ourselves.
        return _read_reference_data(connection, revision)
    cache = current_app.extensions.setdefault("reference_data", {})
    data = cache.get("data")
    if data is None or data.revision != revision:
        data = cache["data"] = _read_reference_data(connection, revision)
    _checked_store()[_CHECKED] = data
    return data


def answer_from_kept_copy(answer: Callable[[], T]) -> T:
    """`answer()` with the process's copy of the reference data used at once, unchecked: the
    statement that reads the busy times checks its revision on the way (therapist_calendars),
    or one statement after the answer does. A copy found stale is forgotten, and the answer
    made again from a checked one.

    `answer()` is a read (it changes nothing, so it may run twice), or a write that rolls
    back when it fails and calls confirm_kept_copy before it commits (`@writing`): the second
    run starts from nothing. An availability request thus reads once instead of twice, and a
    booking writes with one statement fewer.
    """
    store = _checked_store()
    kept = current_app.extensions.get("reference_data", {}).get("data")
    if kept is None or store.get(_CHECKED) is not None or _changed_in_this_transaction():
        return answer()
    store[_CHECKED], store[_UNCHECKED] = kept, kept.revision
    try:
        result = answer()
    except ReferenceDataChanged:
        pass
    except DBAPIError:
        raise  # the database failed, not the copy: its connection can read nothing more
    except Exception:
        if store.get(_UNCHECKED) is None or _revision_now() == kept.revision:
            raise
    else:
        if store.get(_UNCHECKED) is None or _revision_now() == kept.revision:
            store.pop(_UNCHECKED, None)
            return result
    store.pop(_CHECKED, None)
    store.pop(_UNCHECKED, None)
    return answer()


def confirm_kept_copy() -> None:
    """Before a write commits: the process's copy it used unchecked (answer_from_kept_copy)
    is the database's revision, if no statement checked it on the way; ReferenceDataChanged
    (and the caller rolls back) if not."""
    if _checked_store().get(_UNCHECKED) is not None:
        check_revision(_revision_now())


def unchecked_revision() -> int | None:
    """The revision of the copy in use when it is still to be checked (answer_from_kept_copy):
    the caller reads the current one with its own statement and gives it to `check_revision`."""
    return _checked_store().get(_UNCHECKED)


def check_revision(current: int) -> None:
    """The revision read beside other rows: ReferenceDataChanged when the copy in use is older."""
    expected = _checked_store().pop(_UNCHECKED, None)
    if expected is not None and current != expected:
        raise ReferenceDataChanged


def current_clinic() -> Clinic:
    """The clinic row, in the session (from the reference copy: no statement when it is current)."""
    return _session_row(Clinic, reference_data().clinic)


def clinic_zone() -> ZoneInfo:
    return reference_data().clinic.zone


def service_row(service: ServiceFacts | Service) -> Service:
    """The Service row for a service of the reference data, in the session, without a query."""
    return service if isinstance(service, Service) else _session_row(Service, service)


def therapist_row(therapist: TherapistFacts | Therapist) -> Therapist:
    """The Therapist row of the reference data, in the session, without a query."""
    if isinstance(therapist, Therapist):
        return therapist
    return _session_row(Therapist, therapist)


def _checked_store() -> dict:
    # Per request when there is one (a booking's write lock may start a second transaction
    # and need not read the revision again); otherwise per transaction of the session.
    if has_request_context():
        return request.environ
    return db.session().info


_REVISION = select(Clinic.reference_revision).limit(1)


def _connection_for_reference() -> Connection:
    """The connection reads of the reference data run on (connection_for_reads): the
    session's with its pending changes flushed first (a pending change to reference data
    raises the revision first), or a reading request's own."""
    if not reading_outside_the_session():
        session = db.session()
        if session.new or session.dirty or session.deleted:
            session.flush()
    return connection_for_reads()


def _changed_in_this_transaction() -> bool:
    return db.session.registry.has() and bool(db.session().info.get(_CHANGED))


def _revision_now() -> int:
    return _current_revision(_connection_for_reference())


def _current_revision(connection: Connection) -> int:
    # Past the ORM, and on PostgreSQL past SQLAlchemy's rows: this runs in every request.
    rows = driver_rows(connection, _REVISION, {})
    if not rows:
        raise ClinicNotConfigured("no clinic loaded: run `flask --app wsgi clinic load FILE`")
    return rows[0][0]


def _read_reference_data(connection: Connection, revision: int) -> ReferenceData:
    """Everything at once, as plain rows; read after the revision, so never older than it."""
    clinic = connection.execute(select(*_columns(Clinic, ClinicFacts)).limit(1)).one()
    services = connection.execute(
        select(*_columns(Service, ServiceFacts)).order_by(Service.position, Service.id)
    ).all()
    offered: dict[int, set[int]] = {}
    for therapist_id, service_id in connection.execute(
        select(therapist_services.c.therapist_id, therapist_services.c.service_id)
    ):
        offered.setdefault(therapist_id, set()).add(service_id)
    hours: dict[int, list[availability.WorkingHours]] = {}
    for row in connection.execute(
        select(
            WorkingHours.therapist_id, WorkingHours.weekday, WorkingHours.start_time,
            WorkingHours.end_time,
        ).order_by(WorkingHours.weekday, WorkingHours.start_time)
    ):
        hours.setdefault(row.therapist_id, []).append(
            availability.WorkingHours(row.weekday, row.start_time, row.end_time)
        )
    time_off: dict[int, list[availability.TimeOff]] = {}
    for row in connection.execute(
        select(TimeOff.therapist_id, TimeOff.starts_local, TimeOff.ends_local).order_by(
            TimeOff.starts_local
        )
    ):
        time_off.setdefault(row.therapist_id, []).append(
            availability.TimeOff(row.starts_local, row.ends_local)
        )
    therapist_columns = [
        field.name for field in fields(TherapistFacts)
        if field.name not in {"service_ids", "hours", "time_off"}
    ]
    therapists = connection.execute(
        select(*(getattr(Therapist, name) for name in therapist_columns)).order_by(
            Therapist.position, Therapist.slug
        )
    ).all()
    return ReferenceData(
        revision=revision,
        clinic=ClinicFacts(**{
            **clinic._asdict(),
            "languages": tuple(clinic.languages or ()),
            "reference_revision": revision,
        }),
        services=tuple(
            ServiceFacts(**{
                **row._asdict(),
                "reminders": tuple(row.reminders or ()),
                "aftercare": tuple(row.aftercare or ()),
                "forms": tuple(row.forms or ()),
                "translations": dict(row.translations or {}),
            })
            for row in services
        ),
        therapists=tuple(
            TherapistFacts(
                **{**row._asdict(), "disciplines": tuple(row.disciplines or ())},
                service_ids=frozenset(offered.get(row.id, ())),
                hours=tuple(hours.get(row.id, ())),
                time_off=tuple(time_off.get(row.id, ())),
            )
            for row in therapists
        ),
    )


def _columns(model, facts_class) -> list:
    return [getattr(model, field.name) for field in fields(facts_class)]


def _session_row(model, facts):
    """The row these facts were read from, placed in the session as if just loaded.

    The facts are current (their revision was checked in this request), so no SELECT is
    needed. A row the session already holds is returned, its expired values (a commit, such
    as the one before a booking's write lock) filled from the facts.
    """
    return as_loaded(model, _column_values(model, facts), keep_held=True)


def _column_values(model, facts) -> dict:
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name in _shared_columns(model, type(facts))
        for value in (getattr(facts, name),)
    }


@cache
def _shared_columns(model, facts_class) -> tuple[str, ...]:
    """The names of the facts' fields that are columns of the model's table."""
    column_names = {attribute.key for attribute in model.__mapper__.column_attrs}
    return tuple(field.name for field in fields(facts_class) if field.name in column_names)


# --- keeping the revision ------------------------------------------------------------------

_REFERENCE_MODELS = (Clinic, Service, Therapist, WorkingHours, TimeOff)


@event.listens_for(Session, "before_flush")
def _raise_revision_with_reference_changes(session, _flush_context, _instances):
    if not any(
        isinstance(row, _REFERENCE_MODELS)
        for row in (*session.new, *session.dirty, *session.deleted)
    ):
        return
    # One UPDATE in this flush's transaction: committed with the change or not at all. Every
    # such flush raises it (a savepoint rolled back takes its raise with it). A clinic row new
    # in this flush starts at its default revision.
    clinic = Clinic.__table__
    session.execute(
        update(clinic).values(
            reference_revision=clinic.c.reference_revision + 1,
            updated_at=clinic.c.updated_at,  # the clinic row itself did not change
        )
    )
    session.info[_CHANGED] = True
    _forget_checked(session)


def _forget_checked(session) -> None:
    session.info.pop(_CHECKED, None)
    session.info.pop(_UNCHECKED, None)
    if has_request_context():
        request.environ.pop(_CHECKED, None)
        request.environ.pop(_UNCHECKED, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction_state(session, transaction):
    if transaction.parent is None:
        session.info.pop(_CHANGED, None)
        session.info.pop(_CHECKED, None)
        session.info.pop(_UNCHECKED, None)
