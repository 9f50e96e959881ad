"""The patient's side: the clinic's services, as the first step of booking."""

from flask import Blueprint, render_template
from sqlalchemy import select

from booking.calendars import ClinicNotConfigured, current_clinic
from booking.extensions import db
from booking.models import Service

public = Blueprint("public", __name__)


@public.get("/")
def choose_service():
    try:
        clinic = current_clinic()
    except ClinicNotConfigured:
        return render_template("public/not_configured.html"), 503
    services = db.session.scalars(
        select(Service).where(Service.active.is_(True)).order_by(Service.position)
    ).all()
    return render_template("public/choose_service.html", clinic=clinic, services=services)
