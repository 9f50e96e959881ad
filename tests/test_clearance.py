"""Dry needling after a therapist's clearance: a patient evaluated but not cleared is refused
online with a page that says what next; a cleared one books; "not cleared" later puts the
visits already booked on the front desk's follow-up list; the staff API records decisions for
the therapists who offer the service, and every decision is in the audit log."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from booking.calendars.feed_tokens import feed_token_for
from booking.clinic import clinic_file
from booking.extensions import db
from booking.models import Appointment, AuditEntry, CallListItem, Clearance, utc_now
from booking.patients.manage_links import manage_token_for
from tests.conftest import CLINIC_FILE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins

MONDAY = next_weekday(0)
TUESDAY = MONDAY + timedelta(days=1)
THURSDAY = MONDAY + timedelta(days=3)
NEXT_TUESDAY = TUESDAY + timedelta(days=7)

PAT = {"name": "Pat Example", "email": "pat@example.com"}
NOTE = "Takes anticoagulants; revisit in spring"


@pytest.fixture
def needling_clinic(clinic):
    """The test clinic, its dry needling needing a therapist's clearance (as the demo's does)."""
    written = CLINIC_FILE.read_text(encoding="utf-8")
    cleared = written.replace(
        'aftercare_advice = "dry-needling"\n',
        'aftercare_advice = "dry-needling"\nrequires_clearance = true\n',
    )
    assert cleared.count("requires_clearance") == 1
    clinic_file.apply_clinic(clinic_file.parse_clinic_file(cleared, "clinic.toml"))
    db.session.commit()
    return clinic


@pytest.fixture
def staff(needling_clinic):
    return staff_logins()


@pytest.fixture
def evaluated(needling_clinic, book):
    """Pat's evaluation with Alex on Monday morning."""
    return book("pt-evaluation", start=local(MONDAY, 9), **PAT)


def _token_for(app, email: str) -> str:
    answer = app.test_cli_runner().invoke(args=["users", "token", "--email", email])
    assert answer.exit_code == 0, answer.output
    return answer.output.strip()


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _decide(client, token: str, decision: str, *, note: str = "", patient=None):
    body = {"patient": patient or PAT, "service": "dry-needling", "decision": decision}
    if note:
        body["note"] = note
    return client.post("/api/v1/staff/clearances", json=body, headers=_bearer(token))


def _needling_online(client, start, patient=None):
    return client.post("/api/v1/appointments", json={
        "service": "dry-needling", "start": start.isoformat(), "patient": patient or PAT,
    })


def _needling_count() -> int:
    db.session.rollback()  # see what the requests wrote
    return db.session.scalar(
        select(func.count()).select_from(Appointment).where(
            Appointment.service.has(slug="dry-needling")
        )
    )


# --- the clinic file ----------------------------------------------------------------------


def test_requires_clearance_is_optional_checked_and_exported(client, needling_clinic):
    plain = clinic_file.parse_clinic_file(CLINIC_FILE.read_text(encoding="utf-8"), "clinic.toml")
    assert {service.requires_clearance for service in plain.services} == {False}
    wrong = CLINIC_FILE.read_text(encoding="utf-8").replace(
        'aftercare_advice = "dry-needling"\n',
        'aftercare_advice = "dry-needling"\nrequires_clearance = "yes"\n',
    )
    with pytest.raises(clinic_file.ClinicFileError) as refused:
        clinic_file.parse_clinic_file(wrong, "clinic.toml")
    assert str(refused.value) == (
        'clinic.toml: services[2].requires_clearance: must be true or false (got "yes")'
    )
    exported = clinic_file.parse_clinic_file(clinic_file.export_clinic(), "exported.toml")
    assert [service.slug for service in exported.services if service.requires_clearance] == [
        "dry-needling"
    ]
    listed = {row["slug"]: row["requires_clearance"] for row in client.get("/api/v1/services").json}
    assert listed == {"schedule-a-call": False, "pt-evaluation": False, "dry-needling": True}


# --- booking by the clearance in force -----------------------------------------------------


def test_evaluated_but_not_cleared_is_refused_online_and_nothing_is_booked(
    client, evaluated, staff
):
    never_decided = _needling_online(client, local(TUESDAY, 9))
    assert never_decided.status_code == 422
    assert never_decided.json["error"]["code"] == "clearance_required"
    assert never_decided.json["error"]["field"] == "service"

    app = client.application
    assert _decide(client, _token_for(app, "alex@clinic.example"), "not_cleared").status_code == 201
    refused = _needling_online(client, local(TUESDAY, 9))
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "clearance_required"
    assert _needling_count() == 0


def test_the_patients_page_explains_the_next_step_kindly_and_books_nothing(client, evaluated):
    page = client.post(
        "/book/dry-needling/details",
        data={"start": local(TUESDAY, 9).isoformat(), "therapist": "", "visit_for": "me",
              "name": PAT["name"], "email": PAT["email"]},
    )
    assert page.status_code == 422
    text = page.get_data(as_text=True)
    assert "A therapist clears you for this first" in text
    assert "Nothing was booked or changed." in text
    assert 'href="/book/pt-evaluation"' in text  # the next step: an evaluation
    assert 'href="tel:+15865550100"' in text  # or a call
    assert _needling_count() == 0


def test_a_cleared_patient_books_dry_needling_online(app, client, evaluated, staff):
    recorded = _decide(client, _token_for(app, "alex@clinic.example"), "cleared")
    assert recorded.status_code == 201
    assert recorded.json["decision"] == "cleared"
    assert recorded.json["decided_by"] == "staff:alex@clinic.example"

    booked = _needling_online(
        client, local(TUESDAY, 9), {"name": " pat  EXAMPLE", "email": "PAT@example.com"}
    )
    assert booked.status_code == 201
    assert booked.json["service"] == "dry-needling"
    # A sibling at the same address is their own patient, not cleared.
    sibling = _needling_online(client, local(TUESDAY, 10),
                               {"name": "Sam Example", "email": "pat@example.com"})
    assert sibling.status_code == 422
    assert sibling.json["error"]["code"] in {"evaluation_required", "clearance_required"}


def test_the_latest_decision_wins(app, client, evaluated, staff):
    alex = _token_for(app, "alex@clinic.example")
    assert _decide(client, alex, "not_cleared").status_code == 201
    assert _decide(client, alex, "cleared").status_code == 201
    assert _needling_online(client, local(TUESDAY, 9)).status_code == 201
    assert _decide(client, alex, "not_cleared").status_code == 201
    refused = _needling_online(client, local(THURSDAY, 9))
    assert refused.json["error"]["code"] == "clearance_required"


def test_not_cleared_later_puts_the_booked_visits_on_the_follow_up_list(app, client, evaluated,
                                                                        staff):
    alex = _token_for(app, "alex@clinic.example")
    _decide(client, alex, "cleared")
    first = _needling_online(client, local(TUESDAY, 9)).json
    second = _needling_online(client, local(NEXT_TUESDAY, 9)).json
    desk = signed_in(app, staff["front_desk"])
    assert "Nobody to call." in desk.get("/desk/follow-ups").get_data(as_text=True)

    # From the patient's page, after a second look.
    therapist = signed_in(app, staff["therapist"])
    answer = therapist.post(
        f"/desk/patients/{evaluated.patient_id}/clearance",
        data={f"clearance-{evaluated.patient_id}-service": "dry-needling",
              f"clearance-{evaluated.patient_id}-decision": "not_cleared",
              f"clearance-{evaluated.patient_id}-note": NOTE},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/desk/patients/{evaluated.patient_id}"

    listed = desk.get("/desk/follow-ups")
    text = listed.get_data(as_text=True)
    assert listed.status_code == 200
    assert text.count("Pat Example") == 2
    assert f"/desk/appointments/{first['id']}" in text
    assert f"/desk/appointments/{second['id']}" in text
    assert NOTE not in text  # the front desk calls; the note is the therapist's
    # Nothing was cancelled silently.
    db.session.rollback()
    statuses = {db.session.get(Appointment, row["id"]).status for row in (first, second)}
    assert statuses == {"confirmed"}

    # Moving it online is refused too, with the same kind page; it stays where it was.
    moved = client.post(f"/manage/{first['manage_token']}/reschedule",
                        data={"start": local(THURSDAY, 9).isoformat()})
    assert moved.status_code == 422
    assert "A therapist clears you for this first" in moved.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Appointment, first["id"]).start_at == local(TUESDAY, 9)

    # Called: marked done, it leaves the list, and the audit log says who.
    item = db.session.scalars(
        select(CallListItem).where(CallListItem.appointment_id == first["id"])
    ).one()
    done = desk.post(f"/desk/call-lists/{item.id}/done")
    assert done.status_code == 303
    remaining = desk.get("/desk/follow-ups").get_data(as_text=True)
    assert f"/desk/appointments/{first['id']}" not in remaining
    assert f"/desk/appointments/{second['id']}" in remaining
    db.session.rollback()
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "call_list_done")
    ).one()
    assert entry.actor == "staff:desk@clinic.example"


def test_front_desk_books_an_uncleared_patient_only_with_an_override_reason(app, evaluated,
                                                                           staff):
    desk = signed_in(app, staff["front_desk"])
    form = {"service": "dry-needling", "therapist": "alex-rivera",
            "day": TUESDAY.isoformat(), "time": "09:00", "patient_id": str(evaluated.patient_id)}
    refused = desk.post("/desk/book", data=form)
    assert refused.status_code == 422
    assert "Dry needling session needs a therapist&#39;s clearance" in refused.get_data(
        as_text=True
    )
    assert _needling_count() == 0

    booked = desk.post("/desk/book", data={**form, "override_reason": "Dr. Ruiz cleared by fax"})
    assert booked.status_code == 303
    assert _needling_count() == 1
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "booked")
                               .order_by(AuditEntry.id.desc())).first()
    assert entry.actor == "staff:desk@clinic.example"
    assert entry.details["override"] == "Dr. Ruiz cleared by fax"


# --- who decides ---------------------------------------------------------------------------


def test_the_staff_api_records_clearances_only_for_those_who_may(app, client, evaluated, staff):
    from tests.desk_staff import add_staff

    add_staff("jamie@clinic.example", "therapist", "jamie-lee")  # no dry needling
    assert _decide(client, "", "cleared").status_code == 401
    assert client.post("/api/v1/staff/clearances", json={}).status_code == 401

    desk = _decide(client, _token_for(app, "desk@clinic.example"), "cleared")
    assert desk.status_code == 403
    assert desk.json["error"]["code"] == "forbidden"
    jamie = _decide(client, _token_for(app, "jamie@clinic.example"), "cleared")
    assert jamie.status_code == 403

    revoked = _token_for(app, "alex@clinic.example")
    app.test_cli_runner().invoke(args=["users", "revoke-tokens", "--email", "alex@clinic.example"])
    assert _decide(client, revoked, "cleared").status_code == 401
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Clearance)) == 0

    admin = _token_for(app, "admin@clinic.example")
    assert _decide(client, admin, "cleared").status_code == 201


def test_bad_clearance_input_names_the_field_and_records_nothing(app, client, evaluated, staff):
    alex = _token_for(app, "alex@clinic.example")
    cases = [
        ({"decision": "maybe"}, "decision"),
        ({"service": "pt-evaluation"}, "service"),  # needs no clearance
        ({"service": "no-such-service"}, "service"),
        ({"patient": {"name": "Nobody Known", "email": "nobody@example.com"}}, "patient"),
        ({"patient": {"name": "Pat Example", "email": "not an email"}}, "patient.email"),
        ({"note": "x" * 2001}, "note"),
    ]
    for change, field in cases:
        body = {"patient": PAT, "service": "dry-needling", "decision": "cleared", **change}
        answer = client.post("/api/v1/staff/clearances", json=body, headers=_bearer(alex))
        assert answer.status_code == 422, change
        assert answer.json["error"]["field"] == field, change
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Clearance)) == 0


def test_every_decision_is_in_the_audit_log_with_who_and_when(app, client, evaluated, staff):
    before = utc_now()
    _decide(client, _token_for(app, "alex@clinic.example"), "not_cleared", note=NOTE)
    db.session.rollback()
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "clearance_recorded")
    ).one()
    assert entry.actor == "staff:alex@clinic.example"
    assert entry.created_at >= before
    assert entry.details == {"patient": evaluated.patient_id, "service": "dry-needling",
                             "decision": "not_cleared"}
    page = signed_in(app, staff["admin"]).get("/desk/audit").get_data(as_text=True)
    assert "clearance_recorded" in page
    assert NOTE not in page


def test_front_desk_cannot_record_a_clearance_in_the_back_office(app, evaluated, staff):
    desk = signed_in(app, staff["front_desk"])
    answer = desk.post(
        f"/desk/patients/{evaluated.patient_id}/clearance",
        data={f"clearance-{evaluated.patient_id}-service": "dry-needling",
              f"clearance-{evaluated.patient_id}-decision": "cleared"},
    )
    assert answer.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Clearance)) == 0
    page = desk.get(f"/desk/patients/{evaluated.patient_id}").get_data(as_text=True)
    assert "Clearance: Dry needling session" in page
    assert "no decision yet" in page
    assert "Record the decision" not in page


def test_the_therapist_clears_from_the_day_view_after_the_evaluation(app, client, evaluated,
                                                                     staff):
    therapist = signed_in(app, staff["therapist"])
    day = therapist.get(f"/desk/?day={MONDAY.isoformat()}").get_data(as_text=True)
    assert "Clearance after the day's evaluations" in day
    assert f'action="/desk/patients/{evaluated.patient_id}/clearance"' in day
    prefix = f"clearance-{evaluated.patient_id}"
    answer = therapist.post(
        f"/desk/patients/{evaluated.patient_id}/clearance",
        data={f"{prefix}-service": "dry-needling", f"{prefix}-decision": "cleared",
              f"{prefix}-back_day": MONDAY.isoformat()},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/desk/?day={MONDAY.isoformat()}"
    assert _needling_online(client, local(TUESDAY, 9)).status_code == 201
    # The front desk's day view has no such forms.
    desk_day = signed_in(app, staff["front_desk"]).get(f"/desk/?day={MONDAY.isoformat()}")
    assert "Record the decision" not in desk_day.get_data(as_text=True)


# --- privacy -------------------------------------------------------------------------------


def test_a_clearance_note_stays_with_the_therapists(app, client, evaluated, staff, caplog):
    caplog.set_level(logging.DEBUG)
    alex = _token_for(app, "alex@clinic.example")
    _decide(client, alex, "cleared")
    booked = _needling_online(client, local(TUESDAY, 9)).json
    _decide(client, alex, "not_cleared", note=NOTE)

    therapist_page = signed_in(app, staff["therapist"]).get(
        f"/desk/patients/{evaluated.patient_id}").get_data(as_text=True)
    assert NOTE in therapist_page
    desk = signed_in(app, staff["front_desk"])
    for url in (f"/desk/patients/{evaluated.patient_id}", f"/desk/appointments/{booked['id']}",
                "/desk/follow-ups", f"/desk/?day={TUESDAY.isoformat()}"):
        page = desk.get(url)
        assert page.status_code == 200, url
        assert NOTE not in page.get_data(as_text=True), url
    assert "not cleared" in desk.get(
        f"/desk/patients/{evaluated.patient_id}").get_data(as_text=True)

    visit = client.get(f"/manage/{manage_token_for(scheduling_visit(booked['id']))}")
    assert NOTE not in visit.get_data(as_text=True)
    feed = client.get(f"/feeds/{feed_token_for(scheduling_visit(booked['id']).therapist)}.ics")
    assert feed.status_code == 200
    assert NOTE not in feed.get_data(as_text=True)
    assert NOTE not in caplog.text


def scheduling_visit(appointment_id: int) -> Appointment:
    db.session.rollback()
    return db.session.get(Appointment, appointment_id)
