"""Health screening and consent forms: read from the clinic file, completed through the manage
link (API and page), carried to later visits until a new version, a review_if answer flagged
until a therapist has gone over it, a child's form signed by the guardian, the confirmation
and the forms reminder, and the answers seen by no one but therapists and admins."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from booking import scheduling
from booking.calendars.feed_tokens import clinic_feed_url, feed_url_for
from booking.clinic import clinic_file
from booking.clinic.reference import current_clinic
from booking.extensions import db
from booking.models import (
    Appointment,
    AuditEntry,
    Notification,
    SignedForm,
    Therapist,
    utc_now,
)
from booking.notifications.dispatcher import send_due
from booking.notifications.outbox import forms_reminder_time
from booking.patients.manage_links import manage_token_for
from tests.conftest import CLINIC_FILE, CLINIC_ZONE, local, next_weekday, screenshot
from tests.desk_staff import signed_in, staff_logins

SCREENING = "dry-needling-screening"
MONDAY = next_weekday(0)
THURSDAY = MONDAY + timedelta(days=3)
# What a patient might write: it must never leave the clinic's locked rooms.
PRIVATE_NOTE = "Kidney transplant 2019, tacrolimus daily"

FORMS = '''
[[forms]]
slug = "dry-needling-screening"
title = "Dry needling: health screening and consent"
version = "VERSION"
consent = """I understand what dry needling involves and consent to it."""
questions = [
  { key = "pregnant", text = "Could you be pregnant?", type = "yes_no", review_if = "yes" },
  { key = "blood_thinners", text = "Blood thinners?", type = "yes_no", review_if = "yes" },
  { key = "other", text = "Anything else we should know?", type = "text" },
]
'''


def clinic_file_with_forms(version: str = "2026-12") -> str:
    written = CLINIC_FILE.read_text()
    asked = 'aftercare_advice = "dry-needling"\n'
    assert asked in written
    written = written.replace(asked, asked + f'forms = ["{SCREENING}"]\n')
    return written + FORMS.replace("VERSION", version)


def load(text: str) -> list[str]:
    changes = clinic_file.apply_clinic(clinic_file.parse_clinic_file(text, "clinic.toml"))
    db.session.commit()
    return changes


@pytest.fixture
def screening(clinic):
    """The test clinic, whose dry needling asks for the screening form."""
    load(clinic_file_with_forms())
    return current_clinic()


@pytest.fixture
def needling(book, screening):
    """Pat's evaluation on Monday, then dry needling on Thursday at 09:00."""
    book("pt-evaluation", start=local(MONDAY, 9))
    return book("dry-needling", start=local(THURSDAY, 9))


def bearer(appointment) -> dict:
    return {"Authorization": f"Bearer {manage_token_for(appointment)}"}


def forms_of(client, appointment) -> list[dict]:
    answer = client.get(f"/api/v1/appointments/{appointment.id}/forms",
                        headers=bearer(appointment))
    assert answer.status_code == 200, answer.json
    return answer.json


def sign(client, appointment, answers: dict, signed_by: str = "Pat Example", **more):
    return client.post(
        f"/api/v1/appointments/{appointment.id}/forms/{SCREENING}",
        json={"answers": answers, "signed_by": signed_by, **more},
        headers=bearer(appointment),
    )


ALL_NO = {"pregnant": "no", "blood_thinners": "no", "other": ""}


# --- the clinic file -----------------------------------------------------------------------


def test_the_clinic_file_keeps_its_forms_through_an_export(screening):
    exported = clinic_file.export_clinic()
    again = clinic_file.parse_clinic_file(exported, "exported.toml")
    original = clinic_file.parse_clinic_file(clinic_file_with_forms(), "clinic.toml")
    assert again.forms == original.forms
    [needling] = [service for service in again.services if service.slug == "dry-needling"]
    assert needling.forms == (SCREENING,)
    assert load(exported) == []  # loading the export changes nothing


def test_a_service_asking_for_an_unknown_form_is_refused_with_the_key_named(clinic):
    text = clinic_file_with_forms().replace(f'forms = ["{SCREENING}"]', 'forms = ["screening"]')
    with pytest.raises(clinic_file.ClinicFileError) as refused:
        clinic_file.parse_clinic_file(text, "clinic.toml")
    message = str(refused.value)
    assert "services[2].forms[0]" in message
    assert 'no form "screening" in this file' in message


def test_review_if_on_a_text_question_is_refused(clinic):
    text = clinic_file_with_forms().replace(
        'type = "text" }', 'type = "text", review_if = "yes" }'
    )
    with pytest.raises(clinic_file.ClinicFileError) as refused:
        clinic_file.parse_clinic_file(text, "clinic.toml")
    assert "forms[0].questions[2].review_if" in str(refused.value)
    assert "only a yes_no question has review_if" in str(refused.value)


def test_the_demo_clinics_dry_needling_asks_for_its_screening():
    demo = clinic_file.read_clinic_file(clinic_file.DEMO_CLINIC_FILE)
    [form] = demo.forms
    keys = {question.key for question in form.questions}
    assert {"pregnant", "bleeding", "implant", "infection", "lymphedema", "needle_fear",
            "metal_allergy", "immune", "recent_surgery", "epilepsy", "diabetes"} <= keys
    [needling] = [service for service in demo.services if service.slug == "dry-needling"]
    assert needling.forms == (form.slug,)


# --- the rule, over plain values -----------------------------------------------------------


def test_the_latest_signing_of_the_current_version_decides_a_visits_form():
    from booking.rules.health_forms import Signed, status_of_answers, visit_form_status

    questions = [{"key": "pregnant", "review_if": "yes"}, {"key": "other"}]
    assert status_of_answers(questions, {"pregnant": "no", "other": "yes"}) == "complete"
    assert status_of_answers(questions, {"pregnant": "yes"}) == "needs_review"

    assert visit_form_status("v2", []) == "missing"
    assert visit_form_status("v2", [Signed("v1", "complete")]) == "missing"
    assert visit_form_status("v1", [Signed("v1", "complete")]) == "complete"
    assert visit_form_status("v1", [Signed("v1", "needs_review")]) == "needs_review"
    assert visit_form_status("v1", [Signed("v1", "needs_review", reviewed=True)]) == "complete"
    # Signed again with a new answer to review: flagged again.
    assert visit_form_status(
        "v1", [Signed("v1", "needs_review", reviewed=True), Signed("v1", "needs_review")]
    ) == "needs_review"


# --- missing, complete, carried over -------------------------------------------------------


def test_a_visits_form_is_missing_then_complete_and_counts_for_later_visits(
    client, book, needling
):
    [form] = forms_of(client, needling)
    assert form["form"] == SCREENING
    assert form["status"] == "missing"
    assert form["version"] == "2026-12"
    assert [question["key"] for question in form["questions"]] == [
        "pregnant", "blood_thinners", "other"
    ]
    assert form["consent"].startswith("I understand what dry needling involves")

    answer = sign(client, needling, ALL_NO)
    assert answer.status_code == 201
    assert answer.json == {"status": "complete"}
    assert forms_of(client, needling)[0]["status"] == "complete"

    later = book("dry-needling", start=local(THURSDAY + timedelta(days=7), 9))
    assert forms_of(client, later)[0]["status"] == "complete"
    # A visit whose service asks for no form has none.
    call = book("schedule-a-call", start=local(THURSDAY, 14))
    assert forms_of(client, call) == []


def test_a_new_version_of_the_form_asks_again(client, needling):
    assert sign(client, needling, ALL_NO).status_code == 201
    changes = load(clinic_file_with_forms(version="2027-01"))
    assert f"form {SCREENING}: version now \"2027-01\"" in changes
    [form] = forms_of(client, needling)
    assert (form["version"], form["status"]) == ("2027-01", "missing")


def test_a_childs_form_is_signed_by_the_guardian_who_says_so(client, book, screening):
    child = {"name": "Lily Example", "date_of_birth": MONDAY.replace(year=MONDAY.year - 9),
             "guardian_name": "Sam Example"}
    book("pt-evaluation", start=local(MONDAY, 9), **child)
    visit = book("dry-needling", start=local(THURSDAY, 9), **child)

    refused = sign(client, visit, ALL_NO, signed_by="Sam Example")
    assert refused.status_code == 422
    assert refused.json["error"]["field"] == "signer_is_guardian"
    assert db.session.scalars(select(SignedForm)).all() == []

    answer = sign(client, visit, ALL_NO, signed_by="Sam Example", signer_is_guardian=True)
    assert answer.status_code == 201
    db.session.rollback()
    [signed] = db.session.scalars(select(SignedForm)).all()
    assert (signed.signed_by, signed.signer_is_guardian, signed.version) == (
        "Sam Example", True, "2026-12")
    assert signed.patient.name == "Lily Example"
    assert signed.signed_at is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"answers": {"pregnant": "maybe", "blood_thinners": "no"}, "signed_by": "Pat"},
         "answers.pregnant"),
        ({"answers": {"blood_thinners": "no"}, "signed_by": "Pat"}, "answers.pregnant"),
        ({"answers": {**ALL_NO, "smoker": "no"}, "signed_by": "Pat"}, "answers.smoker"),
        ({"answers": ALL_NO, "signed_by": "  "}, "signed_by"),
        ({"answers": ALL_NO}, "signed_by"),
        ({"answers": {**ALL_NO, "other": 7}, "signed_by": "Pat"}, "answers.other"),
        ({"answers": ALL_NO, "signed_by": "Pat", "signer_is_guardian": "yes"},
         "signer_is_guardian"),
    ],
)
def test_a_bad_form_is_refused_naming_the_field_and_nothing_is_kept(client, needling, body,
                                                                    field):
    answer = client.post(f"/api/v1/appointments/{needling.id}/forms/{SCREENING}", json=body,
                         headers=bearer(needling))
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == field
    assert db.session.scalars(select(SignedForm)).all() == []


def test_a_wrong_token_or_a_form_the_visit_does_not_ask_for_is_not_found(client, book,
                                                                          needling):
    other = book("pt-evaluation", start=local(THURSDAY, 14), name="Kim Other",
                 email="kim@example.com")
    wrong = client.post(f"/api/v1/appointments/{needling.id}/forms/{SCREENING}",
                        json={"answers": ALL_NO, "signed_by": "Pat"}, headers=bearer(other))
    assert wrong.status_code == 404
    not_asked = sign(client, other, ALL_NO)
    assert not_asked.status_code == 404
    assert not_asked.json["error"]["field"] == "form"
    assert client.get(f"/api/v1/appointments/{needling.id}/forms").status_code == 404
    assert db.session.scalars(select(SignedForm)).all() == []


def test_a_cancelled_visits_form_is_not_taken(client, needling):
    assert client.post(f"/api/v1/appointments/{needling.id}/cancel",
                       headers=bearer(needling)).status_code == 200
    answer = sign(client, needling, ALL_NO)
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "appointment_cancelled"


# --- review --------------------------------------------------------------------------------


def test_a_review_if_answer_flags_the_visit_until_a_therapist_reviews_it(app, client, needling):
    logins = staff_logins()
    therapist = signed_in(app, logins["therapist"])
    front_desk = signed_in(app, logins["front_desk"])
    day = f"/desk/?day={THURSDAY.isoformat()}"
    assert "Form needs review" not in therapist.get(day).get_data(as_text=True)

    answer = sign(client, needling, {**ALL_NO, "pregnant": "yes"})
    assert answer.status_code == 201
    assert answer.json == {"status": "needs_review"}
    assert forms_of(client, needling)[0]["status"] == "needs_review"
    for staff in (therapist, front_desk):
        assert "Form needs review" in staff.get(day).get_data(as_text=True)

    answers_page = f"/desk/appointments/{needling.id}/forms/{SCREENING}"
    assert front_desk.get(answers_page).status_code == 403
    assert front_desk.post(answers_page + "/reviewed").status_code == 403
    page = therapist.get(answers_page).get_data(as_text=True)
    assert "Could you be pregnant?" in page
    assert "<strong>yes</strong> (to review)" in page

    reviewed = therapist.post(answers_page + "/reviewed")
    assert reviewed.status_code == 303
    assert "Form needs review" not in therapist.get(day).get_data(as_text=True)
    assert forms_of(client, needling)[0]["status"] == "complete"
    db.session.rollback()
    [entry] = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "form_reviewed")
    ).all()
    assert entry.actor == "staff:alex@clinic.example"
    assert entry.details == {"form": SCREENING, "version": "2026-12"}


# --- the patient's page (no JavaScript needed) ---------------------------------------------


def test_the_manage_page_lists_the_form_and_the_form_page_takes_the_answers(client, needling):
    token = manage_token_for(needling)
    manage = client.get(f"/manage/{token}").get_data(as_text=True)
    assert "Dry needling: health screening and consent" in manage
    assert "to complete before the visit" in manage

    url = f"/manage/{token}/forms/{SCREENING}"
    assert client.get(url).status_code == 200
    refused = client.post(url, data={"answer-pregnant": "no", "signed_by": ""})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert 'href="#answer-blood_thinners">Blood thinners? Answer yes or no.' in page
    assert 'href="#signed_by">Type your full name to sign.' in page
    assert db.session.scalars(select(SignedForm)).all() == []

    done = client.post(url, data={"answer-pregnant": "no", "answer-blood_thinners": "yes",
                                  "answer-other": "", "signed_by": "Pat Example"})
    assert done.status_code == 303
    shown = client.get(f"/manage/{token}").get_data(as_text=True)
    assert "your therapist will go over it with you before treatment" in shown
    assert client.get(f"/manage/{token}/forms/not-a-form").status_code == 404


# --- mail ----------------------------------------------------------------------------------


@pytest.fixture
def mail(smtp_settings, smtp_inbox):
    """The mail server's inbox; ask for it before `app` (or anything that builds it)."""
    return smtp_inbox


def kinds(mails) -> list[str]:
    return [each["X-Booking-Notification"] for each in mails]


def text_of(mail) -> str:
    return " ".join(mail.get_body(("plain",)).get_content().split())


def test_the_confirmation_links_the_form_and_a_reminder_follows_two_days_before(
    mail, needling
):
    send_due(utc_now())  # the confirmations
    confirmations = mail.take()
    needling_confirmation = confirmations[-1]
    assert kinds(confirmations) == ["confirmation", "confirmation"]
    link = f"/manage/{manage_token_for(needling)}/forms/{SCREENING}"
    assert "Dry needling: health screening and consent" in text_of(needling_confirmation)
    assert link in text_of(needling_confirmation)
    assert link not in text_of(confirmations[0])  # the evaluation asks for no form

    two_days_before = local(THURSDAY, 9) - timedelta(days=2)
    send_due(two_days_before - timedelta(minutes=1))
    assert "forms_reminder" not in kinds(mail.take())
    send_due(two_days_before)
    [reminder] = [each for each in mail.take()
                  if each["X-Booking-Notification"] == "forms_reminder"]
    assert reminder["Subject"].startswith("Before your dry needling session")
    assert link in text_of(reminder)


def test_the_forms_reminder_is_dropped_when_the_form_was_completed_meanwhile(
    mail, client, needling
):
    assert sign(client, needling, ALL_NO).status_code == 201
    send_due(local(THURSDAY, 8))
    assert "forms_reminder" not in kinds(mail.take())
    db.session.rollback()
    [status] = db.session.scalars(
        select(Notification.status).where(Notification.appointment_id == needling.id,
                                          Notification.kind == "forms_reminder")
    ).all()
    assert status == "dropped"


def test_the_forms_reminder_moves_with_the_visit(mail, client, needling):
    moved_to = local(THURSDAY + timedelta(days=7), 9)
    answer = client.post(f"/api/v1/appointments/{needling.id}/reschedule",
                         json={"start": moved_to.isoformat()}, headers=bearer(needling))
    assert answer.status_code == 200
    db.session.rollback()
    pending = db.session.scalars(
        select(Notification.due_at).where(Notification.appointment_id == needling.id,
                                          Notification.kind == "forms_reminder",
                                          Notification.status == "pending")
    ).all()
    assert pending == [moved_to - timedelta(days=2)]


def test_a_forms_reminder_in_the_quiet_hours_waits_for_the_morning_or_is_not_sent(
    screening,
):
    zone = CLINIC_ZONE
    early = Appointment(start_at=local(THURSDAY, 7, 30))
    booked = local(MONDAY, 9)
    assert forms_reminder_time(early, booked, zone) == local(THURSDAY - timedelta(days=2), 8)
    # Booked with less than two days to go: the confirmation alone says it.
    assert forms_reminder_time(early, local(THURSDAY - timedelta(days=1), 9), zone) is None


# --- privacy -------------------------------------------------------------------------------


def test_no_answer_reaches_the_front_desk_the_feeds_the_mail_or_the_logs(
    mail, app, client, needling, caplog
):
    caplog.set_level(logging.DEBUG)
    logins = staff_logins()
    answers = {"pregnant": "no", "blood_thinners": "yes", "other": PRIVATE_NOTE}
    assert sign(client, needling, answers).status_code == 201

    front_desk = signed_in(app, logins["front_desk"])
    therapist = signed_in(app, logins["therapist"])
    shown = []
    for url in (f"/desk/appointments/{needling.id}", f"/desk/patients/{needling.patient_id}",
                f"/desk/?day={THURSDAY.isoformat()}"):
        answer = front_desk.get(url)
        assert answer.status_code == 200, url
        shown.append(answer.get_data(as_text=True))
    assert "needs review" in shown[0]  # the status, and no more
    assert "Read the answers" not in shown[0]
    assert "Dry needling: health screening and consent: needs review" in shown[1]
    assert front_desk.get(f"/desk/appointments/{needling.id}/forms/{SCREENING}").status_code == 403

    token = app.test_cli_runner().invoke(args=["users", "token", "--email",
                                               "desk@clinic.example"]).output.strip()
    staff_api = client.get(f"/api/v1/staff/appointments?date={THURSDAY.isoformat()}",
                           headers={"Authorization": f"Bearer {token}"})
    assert [row["forms"] for row in staff_api.json] == [
        [{"form": SCREENING, "status": "needs_review"}]
    ]
    shown.append(staff_api.get_data(as_text=True))

    alex = db.session.scalars(select(Therapist).where(Therapist.slug == "alex-rivera")).one()
    base = app.config["PUBLIC_BASE_URL"]
    for feed in (feed_url_for(alex), clinic_feed_url(current_clinic())):
        answer = client.get(feed.removeprefix(base))
        assert answer.status_code == 200
        shown.append(answer.get_data(as_text=True))

    therapist.post(f"/desk/appointments/{needling.id}/forms/{SCREENING}/reviewed")
    send_due(local(THURSDAY, 12))
    mails = mail.take()
    assert "confirmation" in kinds(mails)
    shown += [each.as_string() for each in mails]
    shown.append(caplog.text)
    db.session.rollback()
    shown += [repr(entry.details) for entry in db.session.scalars(select(AuditEntry))]
    audit_page = signed_in(app, logins["admin"]).get("/desk/audit")
    assert "form_reviewed" in audit_page.get_data(as_text=True)
    shown.append(audit_page.get_data(as_text=True))

    # The therapist does read it.
    assert PRIVATE_NOTE in therapist.get(
        f"/desk/appointments/{needling.id}/forms/{SCREENING}").get_data(as_text=True)
    for text in shown:
        assert PRIVATE_NOTE not in text
        assert "tacrolimus" not in text


# --- in a real browser ---------------------------------------------------------------------


def test_a_patient_completes_the_screening_on_a_phone_by_keyboard_alone(
    page, live_server, needling
):
    from tests.test_patient_browser import assert_accessible, tab_to

    manage = f"{live_server}/manage/{manage_token_for(needling)}"
    page.goto(manage)
    assert_accessible(page)
    tab_to(page, f'a[href$="/forms/{SCREENING}"]')
    page.keyboard.press("Enter")
    page.wait_for_url(f"{manage}/forms/{SCREENING}")
    assert_accessible(page)

    # Sent with nothing answered: every problem is named, and the page stays usable.
    tab_to(page, 'button[type="submit"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    screenshot(page, "forms-screening-refused-375")  # for people to look at
    summary = page.locator(".error-summary").inner_text()
    assert "Answer yes or no." in summary
    assert "Type your full name to sign." in summary
    assert_accessible(page)

    page.keyboard.press("Home")
    page.evaluate("() => document.activeElement.blur()")
    for key, answer in (("pregnant", "no"), ("blood_thinners", "yes")):
        tab_to(page, f"#answer-{key}-yes")
        if answer == "no":
            page.keyboard.press("ArrowDown")  # a radio group moves and checks with the arrows
        else:
            page.keyboard.press("Space")
    tab_to(page, "#answer-other")
    page.keyboard.type("Sore left shoulder since October")
    tab_to(page, "#signed_by")
    page.keyboard.type("Pat Example")
    tab_to(page, 'button[type="submit"]')
    page.keyboard.press("Enter")
    page.wait_for_url(manage)
    notice = page.locator(".notice").inner_text()
    assert "your therapist" in notice.lower()
    assert "signed; your therapist will go over it" in page.locator(".health-forms").inner_text()
    assert_accessible(page)

    db.session.rollback()  # the server wrote in its own sessions
    [signed] = db.session.scalars(select(SignedForm)).all()
    assert signed.answers == {"pregnant": "no", "blood_thinners": "yes",
                              "other": "Sore left shoulder since October"}
    assert (signed.signed_by, signed.status) == ("Pat Example", "needs_review")


def test_each_visit_of_a_series_gets_its_forms_reminder_until_the_form_is_signed(
    client, screening
):
    later = MONDAY + timedelta(days=14)
    pat = scheduling.PatientDetails(name="Pat Example", email="pat@example.com")
    staff = scheduling.StaffOverride(staff="staff:desk@clinic.example", reason="cleared on paper")
    first = scheduling.book_series(scheduling.bookable_service("dry-needling"), local(later, 9),
                                   [0, 3], 3, pat, override=staff, booked_by="staff")
    db.session.commit()

    def forms_reminders(series) -> list:
        return db.session.scalars(
            select(Notification.due_at)
            .where(Notification.appointment_id.in_([each.id for each in series.appointments]),
                   Notification.kind == "forms_reminder")
            .order_by(Notification.due_at)
        ).all()

    assert forms_reminders(first) == [
        visit.start_at - timedelta(days=2) for visit in first.appointments
    ]
    assert sign(client, first.appointments[0], ALL_NO).status_code == 201
    db.session.rollback()
    second = scheduling.book_series(scheduling.bookable_service("dry-needling"),
                                    local(later, 14), [0, 3], 3, pat, override=staff,
                                    booked_by="staff")
    db.session.commit()
    assert forms_reminders(second) == []  # the signed form carries to these visits
