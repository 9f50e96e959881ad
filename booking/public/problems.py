"""The pages a patient sees when something is wrong: a plain sentence, a way on, a 4xx status.

Registered on the public blueprint only, so the JSON API keeps its own error shape.
"""

from __future__ import annotations

from flask import Blueprint, render_template, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import select

from booking import scheduling
from booking.clinic.reference import ClinicNotConfigured, current_clinic
from booking.extensions import db
from booking.models import Service, ServiceKind
from booking.web.requests import show_problems_with


class PageProblem(Exception):
    """Input a page cannot use: answered with `status` and a message naming the field."""

    def __init__(self, status: int, title: str, message: str, *, field: str | None = None,
                 back_url: str | None = None):
        super().__init__(message)
        self.status, self.title, self.message = status, title, message
        self.field, self.back_url = field, back_url


def evaluations() -> list[Service]:
    """The evaluations a patient can book: the next step after a refusal for lack of one."""
    return list(db.session.scalars(
        select(Service)
        .where(Service.active.is_(True), Service.kind == ServiceKind.EVALUATION)
        .order_by(Service.position)
    ))


def clinical_refusal_page(refusal: Exception, service: Service) -> str:
    """Why the clinic's rules about the patient refuse this booking online (an evaluation
    first, or a therapist's clearance), and what next."""
    if isinstance(refusal, scheduling.ClearanceRequired):
        return clearance_required_page(service)
    return render_template(
        "public/evaluation_required.html", clinic=current_clinic(), service=service,
        evaluations=evaluations(),
    )


def clearance_required_page(service: Service) -> str:
    """Why a visit that needs a therapist's clearance was not booked or moved, and what next:
    an evaluation, or a call to the clinic."""
    return render_template(
        "public/clearance_required.html", clinic=current_clinic(), service=service,
        evaluations=evaluations(),
    )


def problem_page(status: int, title: str, message: str, *, back_url: str | None = None):
    return render_template(
        "public/problem.html", title=title, message=message,
        back_url=back_url or url_for("public.choose_service"),
    ), status


def register_problem_pages(blueprint: Blueprint) -> None:
    show_problems_with(blueprint.name, problem_page)

    @blueprint.errorhandler(PageProblem)
    def _page_problem(problem: PageProblem):
        return problem_page(problem.status, problem.title, problem.message,
                            back_url=problem.back_url)

    @blueprint.errorhandler(scheduling.UnknownService)
    def _unknown_service(error):
        return problem_page(404, _("We can't find that service"),
                            _("That service cannot be booked online. Please choose another."))

    @blueprint.errorhandler(scheduling.UnknownTherapist)
    def _unknown_therapist(error):
        return problem_page(400, _("Choose another therapist"),
                            _("Therapist: %(problem)s. Please choose from the list.",
                              problem=error.message))

    @blueprint.errorhandler(404)
    def _not_found(error):
        return problem_page(
            404, _("This link does not work"),
            _("The page may have moved, or the link has expired. "
              "Please book again, or call the clinic."),
        )

    @blueprint.errorhandler(CSRFError)
    def _form_expired(error):
        return problem_page(
            400, _("Please try again"),
            _("This form was open too long or came from somewhere else, so nothing was saved. "
              "Please go back, reload the page and send it again."),
        )

    @blueprint.errorhandler(429)
    def _too_many_requests(error):
        response, status = problem_page(
            429, _("Too many tries"),
            _("You have sent this form many times in a short while, so we paused it. "
              "Please wait a minute and try again, or call the clinic."),
        )
        headers = {"Retry-After": str(error.retry_after)} if getattr(
            error, "retry_after", None) else {}
        return response, status, headers

    @blueprint.errorhandler(ClinicNotConfigured)
    def _not_configured(error):
        return render_template("public/not_configured.html"), 503

