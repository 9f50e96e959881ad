"""The back office's pages: parse the form, check who may, act through scheduling or schedules,
commit once, and redirect (or show the form again with what was wrong, with a 4xx status)."""

from __future__ import annotations

from contextlib import suppress
from datetime import date, datetime, time, timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from booking import scheduling
from booking.calendars.feed_tokens import feed_url_for, rotate_feed_token
from booking.clinic.reference import ClinicNotConfigured, clinic_zone, current_clinic
from booking.desk import access, queries, sign_in_attempts
from booking.desk.access import ADMIN, DESK, EVERYONE, allowed
from booking.desk.accounts import AccountRefused, create_staff_user, set_active
from booking.desk.calendar_grid import grid_of, week_days
from booking.desk.forms import (
    AttendanceForm,
    AuditFilterForm,
    BookingForm,
    CancelForm,
    LoginActiveForm,
    LoginForm,
    MoveForm,
    NewLoginForm,
    PostOnlyForm,
    TimeOffForm,
    WeeklyHoursForm,
    choices,
)
from booking.extensions import db
from booking.models import (
    AppointmentStatus,
    AuditEntry,
    Notification,
    NotificationStatus,
    Patient,
    Service,
    StaffUser,
    Therapist,
    TimeOff,
    utc_now,
)
from booking.models.staff import no_such_staff_user
from booking.notifications import outbox
from booking.scheduling import therapist_hours
from booking.web.requests import show_problems_with

desk = Blueprint("desk", __name__)

RESENDABLE = (NotificationStatus.SENT, NotificationStatus.FAILED, NotificationStatus.DROPPED)


@desk.context_processor
def _page_helpers():
    def local(instant: datetime) -> datetime:
        return instant.astimezone(clinic_zone())

    try:
        clinic = current_clinic()
    except ClinicNotConfigured:
        clinic = None
    return {
        "local": local,
        "clinic": clinic,
        "logout_form": PostOnlyForm(),
        "audit_detail": _audit_detail,
    }


def _audit_detail(value) -> str:
    """An audit entry's detail for people: nested values flattened, instants in clinic time."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_audit_detail(item)}" for key, item in value.items())
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        with suppress(ValueError):
            instant = datetime.fromisoformat(value)
            if instant.tzinfo is not None:
                return f"{instant.astimezone(clinic_zone()):%Y-%m-%d %H:%M}"
    return str(value)


@desk.after_request
def _not_kept(response):
    # Patient data: no copy in a shared computer's browser cache or in a proxy.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@desk.errorhandler(ClinicNotConfigured)
def _no_clinic(_error):
    return render_template("desk/message.html", title="No clinic loaded yet",
                           message="Load the clinic file first: flask clinic load FILE."), 503


def _problem_page(status: int, title: str, message: str):
    return render_template("desk/message.html", title=title, message=message), status


show_problems_with(desk.name, _problem_page)


@desk.errorhandler(403)
def _forbidden(_error):
    return render_template("desk/message.html", title="Not yours to see",
                           message="This page belongs to another part of the clinic."), 403


# --- signing in ----------------------------------------------------------------------------


@desk.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("desk.day"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if not form.validate_on_submit():
        return render_template("desk/login.html", form=form), 422 if form.errors else 200
    wait = sign_in_attempts.seconds_until_allowed()
    if wait:
        return render_template(
            "desk/login.html", form=form,
            failed="Too many failed sign-ins from here. Please wait a minute and try again.",
        ), 429, {"Retry-After": str(wait)}
    email = form.email.data.strip().lower()
    user = db.session.scalars(select(StaffUser).where(StaffUser.email == email)).first()
    matches = (
        user.password_matches(form.password.data)
        if user is not None
        else no_such_staff_user(form.password.data)
    )
    if not (matches and user.active):
        sign_in_attempts.record_failure()
        # The same words whichever was wrong: no telling which emails have logins.
        return render_template(
            "desk/login.html", form=form, failed="That email and password do not match."
        ), 401
    login_user(user)
    session.permanent = True
    return redirect(_safe_next(form.next.data) or url_for("desk.day"), 303)


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the back office: the login page is no open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/desk/") or "\\" in target:
        return None
    return target


@desk.post("/logout")
@allowed(*EVERYONE)
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("desk.login"), 303)


# --- the calendar --------------------------------------------------------------------------


@desk.get("/")
@allowed(*EVERYONE)
def day():
    shown = _day_asked()
    therapists = queries.active_therapists(access.own_therapist_id())
    grid = grid_of(queries.calendar_columns(therapists, [shown], clinic_zone()))
    return render_template(
        "desk/day.html", grid=grid, shown=shown, today=_today(), **_neighbours(shown, 1)
    )


@desk.get("/therapists/<slug>/week")
@allowed(*EVERYONE)
def week(slug: str):
    therapist = access.therapist_in_reach(slug)
    shown = _day_asked()
    days = week_days(shown)
    grid = grid_of(queries.calendar_columns([therapist], days, clinic_zone()))
    return render_template(
        "desk/week.html",
        grid=grid,
        therapist=therapist,
        days=days,
        shown=shown,
        today=_today(),
        **_neighbours(shown, 7),
    )


def _today() -> date:
    return utc_now().astimezone(clinic_zone()).date()


def _day_asked() -> date:
    written = request.args.get("day", "").strip()
    if not written:
        return _today()
    try:
        return date.fromisoformat(written)
    except ValueError:
        abort(400, description="day: must be a date like 2026-12-01")


def _neighbours(shown: date, step: int) -> dict:
    return {
        "previous": (shown - timedelta(days=step)).isoformat(),
        "following": (shown + timedelta(days=step)).isoformat(),
    }


# --- appointments --------------------------------------------------------------------------


@desk.get("/appointments/<int:appointment_id>")
@allowed(*EVERYONE)
def appointment(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    return _appointment_page(visit)


def _appointment_page(visit, *, move_form=None, cancel_form=None, attendance_form=None,
                      error=None, status=200):
    zone = clinic_zone()
    if move_form is None:
        move_form = MoveForm(formdata=None)
        start = visit.start_at.astimezone(zone)
        move_form.day.data, move_form.time.data = start.date(), start.time()
        move_form.therapist.data = visit.therapist.slug
    move_form.therapist.choices = _therapist_choices(visit.service)
    history = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.appointment_id == visit.id)
        .order_by(AuditEntry.created_at, AuditEntry.id)
    ).all()
    return render_template(
        "desk/appointment.html",
        visit=visit,
        history=history,
        move_form=move_form,
        cancel_form=cancel_form or CancelForm(formdata=None),
        attendance_form=attendance_form or AttendanceForm(formdata=None),
        can_change=not access.is_therapist(),
        changeable=visit.status == AppointmentStatus.CONFIRMED and visit.start_at > utc_now(),
        attendance_open=visit.status == AppointmentStatus.CONFIRMED
        and visit.start_at.astimezone(zone).date() <= _today(),
        error=error,
    ), status


def _therapist_choices(service: Service) -> list:
    return choices((t.slug, t.name) for t in service.therapists if t.active)


@desk.route("/book", methods=["GET", "POST"])
@allowed(*DESK)
def book():
    form = BookingForm()
    services = db.session.scalars(
        select(Service).where(Service.active.is_(True)).order_by(Service.position)
    ).all()
    form.service.choices = choices((service.slug, service.name) for service in services)
    form.therapist.choices = choices(
        [("", "Whoever is free")]
        + [(therapist.slug, therapist.name) for therapist in queries.active_therapists()]
    )
    search = request.args.get("q", "").strip()
    found = queries.find_patients(search, limit=20) if search else []
    chosen = _chosen_patient(form)
    if request.method == "GET":
        _prefill_booking(form)
        return render_template("desk/book.html", form=form, search=search, found=found,
                               chosen=chosen)
    if not form.validate_on_submit():
        return render_template("desk/book.html", form=form, search=search, found=found,
                               chosen=chosen), 422
    details = (
        scheduling.PatientDetails(
            name=chosen.name, email=chosen.email, phone=chosen.phone,
            date_of_birth=chosen.date_of_birth, guardian_name=chosen.guardian_name,
        )
        if chosen
        else scheduling.PatientDetails(
            name=form.name.data.strip(), email=form.email.data.strip(),
            phone=(form.phone.data or "").strip(), date_of_birth=form.date_of_birth.data,
            guardian_name=(form.guardian_name.data or "").strip(),
        )
    )
    reason = (form.override_reason.data or "").strip()
    try:
        visit = scheduling.book_appointment(
            scheduling.bookable_service(form.service.data),
            datetime.combine(form.day.data, form.time.data, tzinfo=clinic_zone()),
            details,
            therapist_slug=form.therapist.data or None,
            notes=(form.notes.data or "").strip(),
            booked_by=current_user.actor,
            override=scheduling.StaffOverride(current_user.actor, reason) if reason else None,
        )
    except scheduling.SchedulingError as error:
        db.session.rollback()
        _explain_refusal(form, error, can_override=not reason)
        return render_template("desk/book.html", form=form, search=search, found=found,
                               chosen=chosen), error.status
    db.session.commit()
    flash(f"Booked {visit.service.name} for {visit.patient.name}.")
    return redirect(url_for("desk.appointment", appointment_id=visit.id), 303)


def _chosen_patient(form: BookingForm) -> Patient | None:
    written = form.patient_id.data or request.args.get("patient", "")
    if not written or not str(written).isdigit():
        return None
    patient = db.session.get(Patient, int(written))
    if patient is not None:
        form.patient_id.data = str(patient.id)
    return patient


def _prefill_booking(form: BookingForm) -> None:
    arguments = request.args
    if arguments.get("service") in {choice.value for choice in form.service.choices}:
        form.service.data = arguments["service"]
    if arguments.get("therapist") in {choice.value for choice in form.therapist.choices}:
        form.therapist.data = arguments["therapist"]
    try:
        form.day.data = date.fromisoformat(arguments.get("day", ""))
    except ValueError:
        form.day.data = _today()
    with suppress(ValueError):
        form.time.data = time.fromisoformat(arguments.get("time", ""))


def _explain_refusal(form, error: scheduling.SchedulingError, *, can_override: bool) -> None:
    message = error.message
    if can_override and isinstance(
        error, scheduling.SlotUnavailable | scheduling.EvaluationRequired
    ):
        message += (
            ". To book inside the minimum notice, beyond the booking window or without an "
            "evaluation, give an override reason. A taken time or one outside the hours "
            "cannot be overridden."
        )
    fields = {"start": form.time, "therapist": form.therapist,
              "service": getattr(form, "service", form.time)}
    target = fields.get(error.field or "", form.time)
    target.errors = [*target.errors, message]


@desk.post("/appointments/<int:appointment_id>/move")
@allowed(*DESK)
def move(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    form = MoveForm()
    form.therapist.choices = _therapist_choices(visit.service)
    if not form.validate_on_submit():
        return _appointment_page(visit, move_form=form, status=422)
    reason = (form.override_reason.data or "").strip()
    try:
        scheduling.reschedule_appointment(
            visit,
            datetime.combine(form.day.data, form.time.data, tzinfo=clinic_zone()),
            therapist_slug=form.therapist.data,
            changed_by=current_user.actor,
            override=scheduling.StaffOverride(current_user.actor, reason) if reason else None,
        )
    except scheduling.SchedulingError as error:
        db.session.rollback()
        _explain_refusal(form, error, can_override=not reason)
        return _appointment_page(visit, move_form=form, status=error.status)
    db.session.commit()
    flash("Moved; the patient is told.")
    return redirect(url_for("desk.appointment", appointment_id=appointment_id), 303)


@desk.post("/appointments/<int:appointment_id>/cancel")
@allowed(*DESK)
def cancel(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    form = CancelForm()
    if not form.validate_on_submit():
        return _appointment_page(visit, cancel_form=form, status=422)
    try:
        scheduling.cancel_appointment(
            visit, cancelled_by=current_user.actor, reason=form.reason.data.strip()
        )
    except scheduling.SchedulingError as error:
        db.session.rollback()
        form.reason.errors = [*form.reason.errors, error.message]
        return _appointment_page(visit, cancel_form=form, status=error.status)
    db.session.commit()
    flash("Cancelled; the patient is told.")
    return redirect(url_for("desk.appointment", appointment_id=appointment_id), 303)


@desk.post("/appointments/<int:appointment_id>/attendance")
@allowed(*DESK)
def attendance(appointment_id: int):
    visit = access.appointment_in_reach(appointment_id)
    form = AttendanceForm()
    if not form.validate_on_submit():
        return _appointment_page(visit, attendance_form=form, status=422)
    try:
        scheduling.record_attendance(visit, form.outcome.data, by=current_user.actor)
    except scheduling.SchedulingError as error:
        db.session.rollback()
        form.outcome.errors = [*form.outcome.errors, error.message]
        return _appointment_page(visit, attendance_form=form, status=error.status)
    db.session.commit()
    flash(f"Recorded: {form.outcome.data.replace('_', '-')}.")
    return redirect(url_for("desk.appointment", appointment_id=appointment_id), 303)


# --- patients ------------------------------------------------------------------------------


@desk.get("/patients")
@allowed(*DESK)
def patients():
    search = request.args.get("q", "").strip()
    return render_template(
        "desk/patients.html", search=search, patients=queries.find_patients(search)
    )


@desk.get("/patients/<int:patient_id>")
@allowed(*EVERYONE)
def patient(patient_id: int):
    person = access.patient_in_reach(patient_id)
    visits = queries.visits_of(person, access.own_therapist_id())
    now = utc_now()
    return render_template(
        "desk/patient.html",
        person=person,
        upcoming=sorted((v for v in visits if v.start_at > now), key=lambda v: v.start_at),
        past=[v for v in visits if v.start_at <= now],
        evaluated=scheduling.has_evaluation_before(person, now),
        notifications=queries.notifications_for([visit.id for visit in visits]),
        resendable=RESENDABLE,
        can_resend=not access.is_therapist(),
        resend_form=PostOnlyForm(formdata=None),
    )


@desk.post("/notifications/<int:notification_id>/resend")
@allowed(*DESK)
def resend(notification_id: int):
    notification = db.session.get(Notification, notification_id)
    if notification is None:
        abort(404)
    if not PostOnlyForm().validate_on_submit():
        abort(400, description="the form is missing its security token")
    patient_id = notification.appointment.patient_id
    if notification.status not in RESENDABLE:
        flash("That message is still waiting to be sent; it goes out as planned.")
        return redirect(url_for("desk.patient", patient_id=patient_id), 303)
    now = utc_now()
    outbox.plan_resend(notification, now)
    _record(
        "notification_resent",
        appointment_id=notification.appointment_id,
        therapist_id=notification.appointment.therapist_id,
        details={"kind": notification.kind},
        now=now,
    )
    db.session.commit()
    flash(f"The {notification.kind} goes out again in a moment.")
    return redirect(url_for("desk.patient", patient_id=patient_id), 303)


def _record(action: str, *, now: datetime, details: dict, appointment_id=None,
            therapist_id=None) -> None:
    db.session.add(
        AuditEntry(
            created_at=now,
            actor=current_user.actor,
            action=action,
            appointment_id=appointment_id,
            therapist_id=therapist_id,
            details=details,
        )
    )


# --- therapists' schedules -----------------------------------------------------------------


@desk.get("/therapists/<slug>/schedule")
@allowed(*EVERYONE)
def schedule(slug: str):
    therapist = access.therapist_in_reach(slug)
    return _schedule_page(therapist)


def _schedule_page(therapist: Therapist, *, hours_form=None, time_off_form=None, status=200):
    if hours_form is None:
        hours_form = WeeklyHoursForm(formdata=None)
        for weekday, field in enumerate(hours_form.day_fields()):
            field.data = ", ".join(
                f"{row.start_time:%H:%M}-{row.end_time:%H:%M}"
                for row in therapist.hours
                if row.weekday == weekday
            )
    now_local = utc_now().astimezone(clinic_zone()).replace(tzinfo=None)
    return render_template(
        "desk/schedule.html",
        therapist=therapist,
        hours_form=hours_form,
        time_off_form=time_off_form or TimeOffForm(formdata=None),
        remove_form=PostOnlyForm(formdata=None),
        time_off=[row for row in therapist.time_off if row.ends_local > now_local],
        stranded=therapist_hours.stranded_visits(therapist),
        can_change=not access.is_therapist(),
    ), status


@desk.post("/therapists/<slug>/hours")
@allowed(*DESK)
def hours(slug: str):
    therapist = access.therapist_in_reach(slug)
    form = WeeklyHoursForm()
    if not form.validate_on_submit():
        return _schedule_page(therapist, hours_form=form, status=422)
    weekly, refused = {}, False
    for weekday, field in enumerate(form.day_fields()):
        try:
            weekly[weekday] = therapist_hours.parse_day_hours(weekday, field.data or "", field.name)
        except therapist_hours.ScheduleError as error:
            field.errors = [*field.errors, error.message]
            refused = True
    if refused:
        return _schedule_page(therapist, hours_form=form, status=422)
    stranded = therapist_hours.set_weekly_hours(therapist, weekly, by=current_user.actor)
    db.session.commit()
    flash(_saved_message("Hours saved", stranded))
    return redirect(url_for("desk.schedule", slug=slug), 303)


@desk.post("/therapists/<slug>/time-off")
@allowed(*DESK)
def add_time_off(slug: str):
    therapist = access.therapist_in_reach(slug)
    form = TimeOffForm()
    if not form.validate_on_submit():
        return _schedule_page(therapist, time_off_form=form, status=422)
    stranded = therapist_hours.add_time_off(
        therapist,
        form.starts.data,
        form.ends.data,
        (form.reason.data or "").strip(),
        by=current_user.actor,
    )
    db.session.commit()
    flash(_saved_message("Time off added", stranded))
    return redirect(url_for("desk.schedule", slug=slug), 303)


@desk.post("/therapists/<slug>/time-off/<int:time_off_id>/remove")
@allowed(*DESK)
def remove_time_off(slug: str, time_off_id: int):
    therapist = access.therapist_in_reach(slug)
    row = db.session.get(TimeOff, time_off_id)
    if row is None or row.therapist_id != therapist.id:
        abort(404)
    if not PostOnlyForm().validate_on_submit():
        abort(400, description="the form is missing its security token")
    therapist_hours.remove_time_off(row, by=current_user.actor)
    db.session.commit()
    flash("Time off removed.")
    return redirect(url_for("desk.schedule", slug=slug), 303)


def _saved_message(done: str, stranded: list) -> str:
    if not stranded:
        return f"{done}."
    return (
        f"{done}. {len(stranded)} booked visit(s) now fall outside the hours or in time off: "
        "they are listed below, still booked; move or cancel each one."
    )


# --- staff logins --------------------------------------------------------------------------


@desk.get("/users")
@allowed(*ADMIN)
def users():
    return _users_page()


def _users_page(form: NewLoginForm | None = None, status: int = 200):
    form = form or NewLoginForm(formdata=None)
    _therapist_options(form)
    logins = db.session.scalars(select(StaffUser).order_by(StaffUser.email)).all()
    return render_template(
        "desk/users.html", form=form, logins=logins, active_form=LoginActiveForm(formdata=None)
    ), status


def _therapist_options(form: NewLoginForm) -> None:
    form.therapist.choices = choices(
        [("", "None")] + [(t.slug, t.name) for t in queries.active_therapists()]
    )


@desk.post("/users")
@allowed(*ADMIN)
def create_login():
    form = NewLoginForm()
    _therapist_options(form)
    if not form.validate_on_submit():
        return _users_page(form, 422)
    try:
        user = create_staff_user(
            form.email.data, form.role.data, form.therapist.data or None, form.password.data,
            by=current_user.actor,
        )
    except AccountRefused as refused:
        db.session.rollback()
        field = getattr(form, refused.field)
        field.errors = [*field.errors, refused.message]
        return _users_page(form, 422)
    db.session.commit()
    flash(f"Created the {user.role} login {user.email}.")
    return redirect(url_for("desk.users"), 303)


@desk.post("/users/<int:user_id>/active")
@allowed(*ADMIN)
def set_login_active(user_id: int):
    user = db.session.get(StaffUser, user_id)
    if user is None:
        abort(404)
    form = LoginActiveForm()
    if not form.validate_on_submit():
        flash("Active: choose on or off.")
        return _users_page(status=422)
    if user.id == current_user.id:
        flash("You cannot switch off your own login.")
        return _users_page(status=409)
    set_active(user, form.active.data == "on", by=current_user.actor)
    db.session.commit()
    flash(f"{user.email} is {'active' if user.active else 'switched off'}.")
    return redirect(url_for("desk.users"), 303)


# --- the audit log -------------------------------------------------------------------------


@desk.get("/audit")
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


# --- a therapist's feed --------------------------------------------------------------------


def _feed_owner(slug: str) -> Therapist:
    """The therapist themself, or an admin: the URL is a secret even from the front desk."""
    if current_user.role == "front_desk":
        abort(403)
    return access.therapist_in_reach(slug)


@desk.get("/therapists/<slug>/feed")
@allowed(*EVERYONE)
def feed(slug: str):
    therapist = _feed_owner(slug)
    return render_template(
        "desk/feed.html",
        therapist=therapist,
        feed_url=feed_url_for(therapist),
        rotate_form=PostOnlyForm(formdata=None),
    )


@desk.post("/therapists/<slug>/feed/rotate")
@allowed(*EVERYONE)
def rotate_feed(slug: str):
    therapist = _feed_owner(slug)
    if not PostOnlyForm().validate_on_submit():
        abort(400, description="the form is missing its security token")
    rotate_feed_token(therapist)
    _record("feed_rotated", therapist_id=therapist.id, details={"therapist": therapist.slug},
            now=utc_now())
    db.session.commit()
    flash("A new feed URL: the old one has stopped working. Subscribe again with this one.")
    return redirect(url_for("desk.feed", slug=slug), 303)
