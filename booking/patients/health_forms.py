"""The health screening and consent forms a patient completes before the first visit of a
service that lists them: the signed answers as input (one pydantic model, for the API and the
page), where each visit's forms stand, and signing and reviewing them.

Answers are health data. They are stored and shown to therapists and admins behind the login;
nothing here logs them, and the audit entry of a review names the form, never an answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import and_, select

from booking.extensions import db
from booking.models import Appointment, ClinicForm, SignedForm, audit
from booking.patients.details import Notes, PersonName
from booking.rules import health_forms as rules

# Validation context: the form's questions (as stored), and whether the visit is a child's.
QUESTIONS = "questions"
CHILD = "child"
YES_NO = ("yes", "no")


def _signer_named(value: str) -> str:
    if not value:
        raise PydanticCustomError("required", "must not be empty: type your full name to sign")
    return value


def _answer_text(value: object) -> object:
    if not isinstance(value, str):
        raise PydanticCustomError("answer", "must be text: yes, no, or your answer")
    return value


Answer = Annotated[Notes, BeforeValidator(_answer_text)]


class FormSignature(BaseModel):
    """A form as the patient sends it: an answer per question, signed by typed full name.

    Validate with the form's questions and whether the visit is a child's in the context
    (`signature_context`): every yes/no question answered yes or no, no unknown question, and
    for a child, the guardian signs and says so.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    answers: dict[str, Answer]
    signed_by: Annotated[PersonName, AfterValidator(_signer_named)]
    # Checked when left out too: for a child, leaving it out is saying no.
    signer_is_guardian: StrictBool = Field(False, validate_default=True)

    # Field validators, not one for the model: each runs whatever the others find, so every
    # problem of the page is shown at once.
    @field_validator("answers")
    @classmethod
    def _answers_the_form(cls, answers: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        questions = (info.context or {}).get(QUESTIONS, ())
        found: list[InitErrorDetails] = []

        def refuse(key: str, kind: str, message: str, value: object) -> None:
            found.append(InitErrorDetails(
                type=PydanticCustomError(kind, message), loc=(key,), input=value
            ))

        keys = {question["key"] for question in questions}
        for key, value in answers.items():
            if key not in keys:
                refuse(key, "unknown_question", "is not a question of this form", value)
        for question in questions:
            value = answers.get(question["key"], "")
            if question["type"] == "yes_no" and value not in YES_NO:
                kind = "required" if value == "" else "yes_no"
                refuse(question["key"], kind, "must be answered yes or no", value)
        if found:
            raise ValidationError.from_exception_data("answers", found)
        return answers

    @field_validator("signer_is_guardian")
    @classmethod
    def _guardian_signs_for_a_child(cls, is_guardian: bool, info: ValidationInfo) -> bool:
        if (info.context or {}).get(CHILD) and not is_guardian:
            raise PydanticCustomError(
                "guardian",
                "a child's form is signed by their parent or guardian: confirm that you are",
            )
        return is_guardian


def signature_context(appointment: Appointment, form: ClinicForm) -> dict:
    return {QUESTIONS: form.questions, CHILD: bool(appointment.patient_guardian_name)}


# --- where a visit's forms stand -----------------------------------------------------------


@dataclass(frozen=True)
class VisitForm:
    """One form of a visit's service, and where it stands for the visit's patient."""

    form: ClinicForm
    status: str  # rules.MISSING, COMPLETE or NEEDS_REVIEW
    signed: SignedForm | None  # the signing of the current version that decides, if any


def visit_forms(appointment: Appointment) -> list[VisitForm]:
    return forms_of_visits([appointment])[appointment.id]


def forms_of_visits(appointments: Iterable[Appointment]) -> dict[int, list[VisitForm]]:
    """Each visit's forms, in two queries however many visits: for lists and the day view."""
    visits = list(appointments)
    slugs = {slug for visit in visits for slug in visit.service.forms}
    if not slugs:
        return {visit.id: [] for visit in visits}
    forms = {
        form.slug: form
        for form in db.session.scalars(select(ClinicForm).where(ClinicForm.slug.in_(slugs)))
    }
    signed: dict[tuple[int, str], list[SignedForm]] = defaultdict(list)
    for row in db.session.scalars(
        select(SignedForm)
        .where(
            SignedForm.patient_id.in_({visit.patient_id for visit in visits}),
            SignedForm.form_slug.in_(slugs),
        )
        .order_by(SignedForm.signed_at, SignedForm.id)
    ):
        signed[(row.patient_id, row.form_slug)].append(row)
    answer: dict[int, list[VisitForm]] = {}
    for visit in visits:
        answer[visit.id] = []
        for slug in visit.service.forms:
            form = forms.get(slug)
            if form is None or not form.active:
                continue
            rows = [row for row in signed[(visit.patient_id, slug)] if row.version == form.version]
            status = rules.visit_form_status(
                form.version,
                (rules.Signed(row.version, row.status, row.reviewed_at is not None)
                 for row in rows),
            )
            answer[visit.id].append(VisitForm(form, status, rows[-1] if rows else None))
    return answer


@dataclass(frozen=True)
class FormStatuses:
    """Where many patients stand with some forms, read as plain values: for the board, whose
    every visit says where its forms stand."""

    versions: dict[str, str]  # each active form asked for: its current version
    signed: dict[tuple[int, str], list[rules.Signed]]  # (patient id, form slug): signings

    def of(self, patient_id: int, slugs: Iterable[str]) -> list[str]:
        """The status of each active form of `slugs` for the patient (rules.MISSING, ...)."""
        return [
            rules.visit_form_status(self.versions[slug], self.signed.get((patient_id, slug), ()))
            for slug in slugs if slug in self.versions
        ]


def form_statuses(patients, slugs: Iterable[str]) -> FormStatuses:
    """Where `patients` (ids, or a query of them) stand with the forms of `slugs`: one query
    of a few columns (each active form, with the patients' signings of it) however many
    patients; none when no form is asked for."""
    slugs = set(slugs)
    if not slugs:
        return FormStatuses({}, {})
    versions: dict[str, str] = {}
    signed: dict[tuple[int, str], list[rules.Signed]] = defaultdict(list)
    for slug, current, patient_id, version, status, reviewed in db.session.execute(
        select(ClinicForm.slug, ClinicForm.version, SignedForm.patient_id, SignedForm.version,
               SignedForm.status, SignedForm.reviewed_at.is_not(None))
        .outerjoin(SignedForm, and_(SignedForm.form_slug == ClinicForm.slug,
                                    SignedForm.patient_id.in_(patients)))
        .where(ClinicForm.slug.in_(slugs), ClinicForm.active.is_(True))
        .order_by(SignedForm.signed_at, SignedForm.id)
    ).tuples():
        versions[slug] = current
        if patient_id is not None:
            signed[(patient_id, slug)].append(rules.Signed(version, status, bool(reviewed)))
    return FormStatuses(versions, dict(signed))


def missing_forms(appointment: Appointment) -> list[ClinicForm]:
    return [each.form for each in visit_forms(appointment) if each.status == rules.MISSING]


def visits_missing_forms(appointments: Iterable[Appointment]) -> set[int]:
    """The ids of those visits with a form still missing, in two queries however many."""
    return {
        visit_id
        for visit_id, forms in forms_of_visits(appointments).items()
        if any(each.status == rules.MISSING for each in forms)
    }


def visit_form(appointment: Appointment, slug: str) -> VisitForm | None:
    """The visit's form of that slug; None when its service does not ask for it."""
    return next((each for each in visit_forms(appointment) if each.form.slug == slug), None)


# --- signing and reviewing -----------------------------------------------------------------


class FormNotOpen(Exception):
    """The visit is cancelled: there is nothing to prepare for."""


def sign_form(
    appointment: Appointment, form: ClinicForm, signature: FormSignature, now: datetime
) -> SignedForm:
    """Keep the signed answers, with the form's version, the time and the signer.

    The caller validated `signature` with `signature_context(appointment, form)`. Does not
    commit.
    """
    if not appointment.is_live:
        raise FormNotOpen
    answers = {
        question["key"]: signature.answers.get(question["key"], "")
        for question in form.questions
    }
    signed = SignedForm(
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        form_slug=form.slug,
        version=form.version,
        answers=answers,
        signed_by=signature.signed_by,
        signer_is_guardian=signature.signer_is_guardian,
        signed_at=now,
        status=rules.status_of_answers(form.questions, answers),
        reviewed_by="",
    )
    db.session.add(signed)
    return signed


def mark_reviewed(
    signed: SignedForm, appointment: Appointment, *, actor: str, now: datetime
) -> None:
    """A therapist went over the answers with the patient: the visit is no longer flagged.

    The audit entry names the form and its version; never an answer.
    """
    signed.reviewed_by = actor
    signed.reviewed_at = now
    audit.record(
        "form_reviewed",
        actor=actor,
        appointment_id=appointment.id,
        therapist_id=appointment.therapist_id,
        details={"form": signed.form_slug, "version": signed.version},
        at=now,
    )
