"""A notification as the email the patient receives: a text and an HTML part, plus a .ics.

The words come from templates/mail/ (`<kind>.txt` and `<kind>.html`; the HTML ones are
autoescaped). A clinic may replace any of them from its own folder (MAIL_TEMPLATES_FOLDER):
a template found there wins over the built-in one of the same name, and nothing outside those
two folders can be loaded. Every message names the visit in plain words and its therapist;
for a child it greets the guardian and speaks of the child by first name (`visit_words`).
Each message is written in the language its booking recorded (`Content-Language` says which),
and a clinic's template for that language (`es/confirmation.txt`) wins over its general one.
A message about the visit itself carries its .ics (the minimum: service, clinic, time; for a
call the number to be called instead of the street address), whose UID and SEQUENCE let the
patient's calendar update or cancel it; aftercare and check-ins carry none. Several visits of
a series booked, cancelled or moved together are told in one message (`series_<kind>`
templates), with one .ics holding a VEVENT per visit.
"""

from __future__ import annotations

import os
import re
import secrets
import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.policy import Compat32
from email.quoprimime import body_encode
from email.utils import format_datetime, formataddr
from io import BytesIO

from flask import current_app, g
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    select_autoescape,
)

from booking.calendars.ical import calendar_file, calendar_file_of_visits, call_note
from booking.clinic.reference import current_clinic, zone_named
from booking.models import (
    Appointment,
    Clinic,
    Notification,
    NotificationKind,
    Service,
    ServiceKind,
    utc_now,
)
from booking.notifications.outbox import visits_moved_together, visits_told_in
from booking.patients.health_forms import missing_forms
from booking.patients.languages import (
    clinic_languages,
    day_and_time_in_words,
    gettext,
    in_language,
    ngettext,
    text_direction,
    writing_in,
)
from booking.patients.manage_links import manage_url_for, series_manage_url_for


def sender_address(clinic: Clinic) -> str:
    return current_app.config.get("MAIL_FROM") or clinic.email


def email_for(
    notification: Notification, *, clinic: Clinic | None = None, now: datetime | None = None
) -> Message:
    """The whole email for this notification, addressed to the patient (or their guardian).

    Raises whatever a template raises: the dispatcher counts that as a failed try.
    """
    clinic = clinic or current_clinic()
    offer = notification.waitlist_offer
    recorded = (offer.entry if offer is not None else notification.appointment).patient_language
    language = message_language(recorded)
    # Every word of it in the patient's language: templates, subject, .ics and dates.
    with writing_in(language):
        if offer is not None:
            return _offer_email(notification, clinic, now or utc_now(), language)
        return _email_for(notification, clinic, now, language)


def message_language(recorded: str) -> str:
    """The language the booking (or waitlist entry) recorded; the clinic's first where that is
    no longer offered."""
    offered = clinic_languages()
    return recorded if recorded in offered else offered[0]


def _email_for(
    notification: Notification, clinic: Clinic, now: datetime | None, language: str
) -> Message:
    visits = visits_told_in(notification)
    if len(visits) > 1:
        return _series_email_for(notification, visits, clinic, now, language)
    appointment = notification.appointment
    patient = appointment.patient
    when = spoken_time(appointment.start_at, clinic)
    template = _template_name(notification)
    words = visit_words(appointment)
    manage_url = manage_url_for(appointment)
    values = {
        **_visit_values(words, clinic, appointment.service, patient, language),
        "appointment": appointment,
        "when": when,
        "manage_url": manage_url,
        # The health forms still to complete before the visit, by title and link: never an
        # answer (the confirmation and the forms reminder name them).
        "forms_to_complete": _forms_to_complete(notification, manage_url),
        # The check-in's page asks; only the form on it records (mail scanners follow links).
        "check_in_url": manage_url + "/check-in",
        "call_note": call_note(appointment) if words.is_call else "",
    }
    now = now or utc_now()
    method = _method(notification)
    # Aftercare and check-ins come after the visit: a calendar file then would only put a past
    # visit back in the patient's calendar.
    ics = (
        None if notification.kind == NotificationKind.AFTERCARE
        else calendar_file(appointment, clinic, method=method, now=now)
    )
    return _assembled(
        notification, clinic, words,
        subject=_subject(notification, words, when),
        text=_wrapped(_mail_template(template, "txt", language).render(values)),
        html=_mail_template(template, "html", language).render(values),
        ics=ics, method=method, now=now, language=language,
    )


def _series_email_for(
    notification: Notification, visits: list[Appointment], clinic: Clinic,
    now: datetime | None, language: str,
) -> Message:
    """The one email for several visits of a series: booked together (confirmation),
    cancelled together (cancellation) or moved together (reschedule, each with the time it
    had before), with one .ics holding a VEVENT per visit."""
    now = now or utc_now()
    first = visits[0]
    words = visit_words(first)
    moved_from = {
        moved.appointment.id: spoken_time(moved.moved_from, clinic)
        for moved in visits_moved_together(notification)
    }
    values = {
        **_visit_values(words, clinic, first.service, first.patient, language),
        "visits": [
            {
                "when": spoken_time(visit.start_at, clinic),
                "moved_from": moved_from.get(visit.id, ""),
                "therapist": visit.therapist.name,
                "manage_url": manage_url_for(visit),
            }
            for visit in visits
        ],
        # Every visit of the series on one page: see them, move or cancel one, or the rest.
        "series_url": series_manage_url_for(first.series),
    }
    first_when = values["visits"][0]["when"]
    count = len(visits)
    if notification.kind == NotificationKind.CANCELLATION:
        subject = ngettext("Cancelled: %(num)d visit, %(visit)s, from %(when)s",
                           "Cancelled: %(num)d visits, %(visit)s, from %(when)s",
                           count, visit=words.visit, when=first_when)
    elif notification.kind == NotificationKind.RESCHEDULE:
        subject = ngettext("Moved: %(num)d visit, %(visit)s, from %(when)s",
                           "Moved: %(num)d visits, %(visit)s, from %(when)s",
                           count, visit=words.visit, when=first_when)
    else:
        subject = ngettext("Booked: %(num)d visit, %(visit)s, from %(when)s",
                           "Booked: %(num)d visits, %(visit)s, from %(when)s",
                           count, visit=words.visit, when=first_when)
    template = f"series_{notification.kind}"
    method = _method(notification)
    return _assembled(
        notification, clinic, words,
        subject=subject,
        text=_wrapped(_mail_template(template, "txt", language).render(values)),
        html=_mail_template(template, "html", language).render(values),
        ics=calendar_file_of_visits(visits, clinic, method=method, now=now),
        method=method, now=now, language=language,
    )


def _visit_values(
    words: VisitWords, clinic: Clinic, service: Service, patient, language: str
) -> dict:
    """What every message about a visit (or a series of them) may say."""
    return {
        "visit": words.visit,
        "language": language,
        "direction": text_direction(language),
        "clinic": clinic,
        "service": service,
        "patient": patient,
        "booking_url": current_app.config["PUBLIC_BASE_URL"] + "/",
        "dry_needling": is_dry_needling(service),
        "addressee": words.addressee,
        "whose": words.whose,
        "Whose": words.whose[:1].upper() + words.whose[1:],
        "child": words.child,
        "visit_name": words.visit_name,
        "therapist": words.therapist,
        "call": words.is_call,
    }


def _method(notification: Notification) -> str:
    return "CANCEL" if notification.kind == NotificationKind.CANCELLATION else "REQUEST"


def _assembled(
    notification: Notification, clinic: Clinic, words: VisitWords, *, subject: str, text: str,
    html: str, ics: str | None, method: str, now: datetime, language: str,
) -> Message:
    """The email around its words: headers, text and HTML, and the .ics where there is one."""
    body = _multipart("alternative")
    body.attach(text_part(text, "plain"))
    body.attach(text_part(html, "html"))
    if ics is None:
        message = body
    else:
        invitation = text_part(ics, "calendar", f'; method="{method}"')
        invitation["Content-Disposition"] = 'attachment; filename="appointment.ics"'
        # The compat32 MIME classes, not EmailMessage: the same message, built in a tenth of
        # the time, which is most of a dispatcher's work per message.
        message = _multipart("mixed")
        message.attach(body)
        message.attach(invitation)
    message["Subject"] = _header(subject)
    message["From"] = formataddr((_one_line(clinic.name), sender_address(clinic)), "utf-8")
    message["To"] = formataddr(
        (_one_line(words.addressee), notification.appointment.patient.email), "utf-8"
    )
    message["Date"] = format_datetime(now)
    message["Message-ID"] = notification.message_id
    message["X-Booking-Notification"] = notification.kind
    message["Content-Language"] = language
    return message


def _mail_template(name: str, extension: str, language: str) -> Template:
    """The template of this name for this language: a clinic's template for the language
    (`es/confirmation.txt` in its folder) before the one for every language.

    Chosen once per app context, as the templates are loaded (`mail_templates`): looking
    again for each message, in every folder, for the clinic's templates that are not there
    had cost a tenth of writing a message.
    """
    templates = mail_templates()
    chosen = g.mail_templates[2]
    key = (name, extension, language)
    if key not in chosen:
        chosen[key] = templates.select_template(
            [f"{language}/{name}.{extension}", f"{name}.{extension}"]
        )
    return chosen[key]


@dataclass(frozen=True)
class FormToComplete:
    title: str
    url: str


def _forms_to_complete(notification: Notification, manage_url: str) -> list[FormToComplete]:
    if notification.kind not in (NotificationKind.CONFIRMATION, NotificationKind.FORMS_REMINDER):
        return []
    return [
        FormToComplete(form.title, f"{manage_url}/forms/{form.slug}")
        for form in missing_forms(notification.appointment)
    ]


def _offer_email(
    notification: Notification, clinic: Clinic, now: datetime, language: str
) -> Message:
    """A time that opened up, offered to a waiting patient: a link to claim it, no .ics (it is
    not their visit until they claim it)."""
    offer = notification.waitlist_offer
    entry = offer.entry
    guardian = _one_line(entry.patient_guardian_name)
    child = _one_line(entry.patient_name).split(" ")[0] if guardian else ""
    is_call = entry.service.kind == ServiceKind.CALL
    values = {
        "clinic": clinic,
        "language": language,
        "direction": text_direction(language),
        "addressee": guardian or entry.patient_name,
        "child": child,
        "visit_name": (
            gettext("call") if is_call else _in_a_sentence(in_language(entry.service, "name"))
        ),
        "therapist": offer.therapist.name,
        "when": spoken_time(offer.start_at, clinic),
        "offer_url": f"{current_app.config['PUBLIC_BASE_URL']}/offers/{offer.token}",
        "claim_minutes": current_app.config["WAITLIST_CLAIM_MINUTES"],
        "call": is_call,
    }
    text = _wrapped(_mail_template("waitlist_offer", "txt", language).render(values))
    html = _mail_template("waitlist_offer", "html", language).render(values)
    message = _multipart("alternative")
    message.attach(text_part(text, "plain"))
    message.attach(text_part(html, "html"))
    subject = gettext("A time opened up: %(visit)s on %(when)s",
                      visit=values["visit_name"], when=values["when"])
    message["Subject"] = _header(subject)
    message["From"] = formataddr((_one_line(clinic.name), sender_address(clinic)), "utf-8")
    message["To"] = formataddr((_one_line(values["addressee"]), entry.patient_email), "utf-8")
    message["Date"] = format_datetime(now)
    message["Message-ID"] = notification.message_id
    message["X-Booking-Notification"] = notification.kind
    message["Content-Language"] = language
    return message


@dataclass(frozen=True)
class VisitWords:
    """How a message speaks of a visit, and to whom.

    For a child (a guardian's name was given) the mail goes to the guardian by name, and the
    visit is the child's, by first name: "Lily's physical therapy evaluation".
    """

    addressee: str  # who the mail greets: the guardian, or the patient
    whose: str  # "your", or "Lily's"
    child: str  # the child's first name; "" when the patient is the addressee
    visit_name: str  # "call", "physical therapy evaluation", "dry needling session"
    therapist: str
    is_call: bool
    visit: str  # "your call with Alex Rivera", "Lily's dry needling session with Alex Rivera"


def visit_words(appointment: Appointment) -> VisitWords:
    patient = appointment.patient
    # The guardian named with this booking: a record's details are not the booking's.
    guardian = _one_line(appointment.patient_guardian_name)
    child = _one_line(patient.name).split(" ")[0] if guardian else ""
    service = appointment.service
    is_call = service.kind == ServiceKind.CALL
    visit_name = gettext("call") if is_call else _in_a_sentence(in_language(service, "name"))
    therapist = appointment.therapist.name
    if child:
        visit = gettext("%(child)s's %(visit_name)s with %(therapist)s", child=child,
                        visit_name=visit_name, therapist=therapist)
    else:
        visit = gettext("your %(visit_name)s with %(therapist)s", visit_name=visit_name,
                        therapist=therapist)
    return VisitWords(
        addressee=guardian or patient.name,
        whose=f"{child}'s" if child else "your",
        child=child,
        visit_name=visit_name,
        therapist=therapist,
        is_call=is_call,
        visit=visit,
    )


def _in_a_sentence(name: str) -> str:
    """The service's name as said mid-sentence: "physical therapy evaluation"; a name that
    starts with an abbreviation ("OT evaluation") stays as it is."""
    first = name.split(" ")[0]
    return name[:1].lower() + name[1:] if first[1:].islower() or len(first) == 1 else name


def text_part(text: str, subtype: str, more_parameters: str = "") -> Message:
    """A text part in UTF-8, quoted-printable (readable in the raw message, unlike base64):
    what `MIMEText(text, subtype, charset)` makes with such a charset, header for header and
    byte for byte, without its passes over the Content-Type's parameters to set each one
    (8% of the dispatcher's instructions on a message). `more_parameters`:
    '; method="REQUEST"' and the like."""
    part = Message()
    content_type = f'text/{subtype}; charset="utf-8"{more_parameters}'
    # In MIMEText's order, where a parameter set afterwards moves Content-Type last.
    if not more_parameters:
        part["Content-Type"] = content_type
    part["MIME-Version"] = "1.0"
    part["Content-Transfer-Encoding"] = "quoted-printable"
    if more_parameters:
        part["Content-Type"] = content_type
    part.set_payload(body_encode(text.encode().decode("latin-1")) if text else text)
    return part


def _multipart(subtype: str) -> MIMEMultipart:
    """A multipart with its boundary chosen here: "=_" and 96 random bits in hex. Left to the
    generator, a random boundary is checked against the whole message by a regular expression
    compiled for it: 6% of the dispatcher's work on a mail. "=_" never occurs in the
    quoted-printable parts (where "=" is followed by two hex digits or the line's end) nor in
    their headers, so no check is needed. Short enough that the Content-Type header fits on
    its line, written as it is instead of folded (`_QuickFolding`)."""
    return MIMEMultipart(subtype, boundary="=_" + secrets.token_hex(12))


def _wrapped(text: str, width: int = 78) -> str:
    """The text part with long lines broken at spaces, as mail is read: a sentence with a
    name, a therapist and a date in it runs past what a mail client shows. A link is never
    broken; a list item's next lines are indented under it."""
    lines = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" -")))
        lines += textwrap.wrap(
            line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
        )
    return "\n".join(lines)


def _header(value: str) -> str | Header:
    value = _one_line(value)
    return value if value.isascii() else Header(value, "utf-8")


def _one_line(value: str) -> str:
    # A line break in a header would start a header of its own.
    return " ".join(value.split())


def as_bytes(message: Message) -> bytes:
    """The message as the mail server receives it (CRLF line ends): what
    `message.as_bytes(policy=compat32 with CRLF)` writes (tests hold the two equal)."""
    written = BytesIO()
    _WholeTextGenerator(written, mangle_from_=False, policy=_SMTP).flatten(message)
    return written.getvalue()


_LINE_END = re.compile(r"\r\n|\r|\n")  # any line end, as the generator finds them


class _WholeTextGenerator(BytesGenerator):
    """The standard library's generator, writing a part's text with its line ends made CRLF
    in one piece rather than two writes a line (some 180 a message: 4% of the dispatcher's
    instructions on one)."""

    def _write_lines(self, lines: str) -> None:
        if lines:
            self.write(self._NL.join(_LINE_END.split(lines)))


class _QuickFolding(Compat32):
    """compat32, writing a header of printable ASCII as compat32 writes it, without the
    `Header` it builds to find that out for each header (a third of turning a message into
    bytes): as it is when it fits on its line, else folded by `_folded_words`. Any other
    header is folded by compat32 as ever."""

    def fold_binary(self, name: str, value) -> bytes:
        if isinstance(value, str) and value.isascii() and value.isprintable():
            # Printable: no line break, tab or other control character.
            longest = self.max_line_length or _NO_LIMIT
            if len(name) + 2 + len(value) <= longest:
                return f"{name}: {value}{self.linesep}".encode("ascii")
            if value and value[0] != " " != value[-1] and "  " not in value:  # one space apart
                folded = self.linesep.join(_folded_words(name, value, longest))
                return f"{name}: {folded}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_NO_LIMIT = 1_000_000  # compat32's line length when max_line_length is 0 or None


def _folded_words(name: str, value: str, longest: int) -> list[str]:
    """The lines compat32's `Header` folds a value of ASCII words into, the words one space
    apart (a Subject, once `_one_line` has made it one line): each line is cut when it grows
    past `longest` (the first counting "name: "), after its last word ending in ";", else in
    ",", else before the word that made it too long; a first word too long for the first
    line starts the second. A long Subject took a tenth of writing a message through
    `Header`. The tests hold the two equal for thousands of values."""
    lines: list[str] = []
    line: list[str] = []  # the current line's words, each after a space but the header's first
    length = len(name) + 1  # "name:", and each word counts the space before it
    for word in value.split(" "):
        line.append(word)
        length += 1 + len(word)
        if length <= longest:
            continue
        if len(line) == 1:  # the header's first word alone is too long: it starts a new line
            lines.append("")
            length = 1 + len(word)
            continue
        cut = _cut_after(line)
        lines.append(_joined(line[:cut], first_line=not lines))
        line = line[cut:]
        length = sum(len(each) + 1 for each in line)
    lines.append(_joined(line, first_line=not lines))
    return lines


def _cut_after(words: list[str]) -> int:
    # compat32 prefers its split characters in order: ";", then ",", then a space.
    for mark in ";,":
        for index in range(len(words) - 1, 0, -1):
            if words[index - 1].endswith(mark):
                return index
    return len(words) - 1


def _joined(words: list[str], *, first_line: bool) -> str:
    return " ".join(words) if first_line else " " + " ".join(words)


_SMTP = _QuickFolding(linesep="\r\n")


def mail_templates() -> Environment:
    """The app's mail templates: the clinic's folder first (when set), then templates/mail/.

    Made once per app context (a dispatcher's run, a request), so that a template a clinic
    adds or edits is used from the next run on: an environment kept longer would go on using
    the built-in template it had loaded before the clinic's own was added. FileSystemLoader
    refuses any name that climbs out of its folder (`..`), so an include in an overriding
    template cannot read other files.
    """
    folder = current_app.config.get("MAIL_TEMPLATES_FOLDER")
    kept = g.get("mail_templates")
    if kept is not None and kept[0] == folder:
        return kept[1]
    built_in = os.path.join(current_app.root_path, current_app.template_folder or "", "mail")
    loaders = [FileSystemLoader(built_in)]
    if folder:
        loaders.insert(0, FileSystemLoader(folder))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"], default_for_string=False),
        # A misspelt name in a clinic's own template fails the send (and shows as an error
        # to staff) rather than leaving a blank in the patient's email.
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,  # it lasts one run: no need to look at the files again in it
    )
    # Messages to a patient are written in their language: the same gettext as the pages,
    # under the locale the sender forces for each message.
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)
    # A sentence may start with a phrase ("your call with ..."); its first letter is capitalised
    # after translation, as the word order is the translation's.
    environment.filters["sentence"] = lambda text: text[:1].upper() + text[1:]
    g.mail_templates = (folder, environment, {})  # and the templates chosen (_mail_template)
    return environment


def is_dry_needling(service: Service) -> bool:
    """Dry needling visits get their own advice (what to wear, eating beforehand)."""
    return service.aftercare_advice == "dry-needling"


def spoken_time(instant: datetime, clinic: Clinic) -> str:
    """'Monday 7 December 2026 at 9:30 AM', clinic time, in the language being written."""
    return day_and_time_in_words(instant.astimezone(zone_named(clinic.timezone)))


def _template_name(notification: Notification) -> str:
    # The first aftercare note is the soreness advice; any later one is the check-in.
    if notification.kind == NotificationKind.AFTERCARE and notification.step > 0:
        return "aftercare_check_in"
    return notification.kind


def _subject(notification: Notification, words: VisitWords, when: str) -> str:
    """Subject lines per kind of service: a call is from the therapist, a visit is with them."""
    if words.is_call and words.child:
        phrase = gettext("a call from %(therapist)s about %(child)s", therapist=words.therapist,
                         child=words.child)
    elif words.is_call:
        phrase = gettext("a call from %(therapist)s", therapist=words.therapist)
    else:
        phrase = words.visit
    if notification.kind == NotificationKind.AFTERCARE:
        if words.child:
            if notification.step > 0:
                return gettext("Checking in after %(child)s's %(visit_name)s", child=words.child,
                               visit_name=words.visit_name)
            return gettext("After %(child)s's %(visit_name)s: what to expect",
                           child=words.child, visit_name=words.visit_name)
        if notification.step > 0:
            return gettext("Checking in after your %(visit_name)s", visit_name=words.visit_name)
        return gettext("After your %(visit_name)s: what to expect", visit_name=words.visit_name)
    subjects = {
        NotificationKind.CONFIRMATION: gettext("Booked: %(visit)s on %(when)s"),
        NotificationKind.REMINDER: gettext("Reminder: %(visit)s on %(when)s"),
        NotificationKind.RESCHEDULE: gettext("Moved: %(visit)s is now on %(when)s"),
        NotificationKind.CANCELLATION: gettext("Cancelled: %(visit)s on %(when)s"),
        NotificationKind.FORMS_REMINDER: gettext(
            "Before %(visit)s on %(when)s: please complete the health form"
        ),
    }
    return subjects[NotificationKind(notification.kind)] % {"visit": phrase, "when": when}
