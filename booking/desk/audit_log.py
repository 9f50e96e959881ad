"""The audit log page, for admins: the latest changes, filtered by who, action and date."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from booking.clinic.reference import clinic_zone
from booking.desk import queries
from booking.desk.access import ADMIN, allowed
from booking.desk.forms import AuditFilterForm, choices

audit_log = Blueprint("audit_log", __name__)


@audit_log.get("/audit")
@allowed(*ADMIN)
def audit():
    form = AuditFilterForm(request.args)
    form.action.choices = choices([("", "Any")] + [(a, a) for a in queries.audit_actions()])
    if not form.validate():
        return render_template("desk/audit.html", form=form, entries=[]), 422
    entries = queries.audit_entries(
        actor=(form.actor.data or "").strip(),
        action=form.action.data or "",
        since=form.since.data,
        until=form.until.data,
        zone=clinic_zone(),
    )
    return render_template("desk/audit.html", form=form, entries=entries)
