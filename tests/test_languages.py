"""The patient's own language: the catalogs, the pages in each language, and the mail and .ics
of a booking made in Spanish; the clinic file's `languages` and texts per language."""

from __future__ import annotations

import re
from datetime import time
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import pytest
from babel.messages import checkers
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from icalendar import Calendar
from sqlalchemy import select

from booking.clinic import clinic_file
from booking.clinic.clinic_file import ClinicFileError
from booking.extensions import db
from booking.models import Appointment, Service, utc_now
from booking.notifications.dispatcher import send_due
from booking.patients.manage_links import manage_token_for
from tests.conftest import CLINIC_FILE, local, next_weekday
from tests.desk_staff import signed_in, staff_logins

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "booking" / "translations"
LANGUAGES = ("es", "ar")
MONDAY = next_weekday(0)
TUESDAY = next_weekday(1)
CALL = "/book/schedule-a-call"

# The test clinic in three languages. The evaluation is named in Spanish and Arabic; dry needling
# only in English, so the Spanish page must fall back to the English name.
CLINIC_IN_LANGUAGES = (
    CLINIC_FILE.read_text(encoding="utf-8")
    .replace('slot_step_minutes = 15\n', 'slot_step_minutes = 15\nlanguages = ["en", "es", "ar"]\n')
    .replace(
        'name = "Physical therapy evaluation"',
        'name = { en = "Physical therapy evaluation", es = "Evaluación de fisioterapia", '
        'ar = "تقييم العلاج الطبيعي" }\n'
        'description = { en = "A first visit to find out what is wrong.", '
        'es = "Una primera visita para saber qué le pasa." }',
    )
    .replace(
        'name = "Schedule a call"',
        'name = { en = "Schedule a call", es = "Programar una llamada", ar = "حجز مكالمة" }',
    )
)


@pytest.fixture
def clinic(app):
    clinic_file.apply_clinic(clinic_file.parse_clinic_file(CLINIC_IN_LANGUAGES, "clinic.toml"))
    db.session.commit()


pytestmark = pytest.mark.usefixtures("clinic")


def text_of(answer) -> str:
    html = answer.get_data(as_text=True)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def catalog(language: str):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=language)


# --- the catalogs --------------------------------------------------------------------------


def messages_in_the_code() -> set[str | tuple[str, str]]:
    """Every message id the patient pages, mail and code mark, extracted as babel.cfg says."""
    method_map, options_map = [], {}
    section = None
    for line in (ROOT / "babel.cfg").read_text().splitlines():
        found = re.fullmatch(r"\[(\w+): (.+)\]", line.strip())
        if found:
            section = found.group(2)
            method_map.append((section, found.group(1)))
            options_map[section] = {}
    keywords = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None,
                "ngettext": (1, 2)}
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        ids.add(message if isinstance(message, str) else tuple(message[:2]))
    return ids


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_and_none_is_empty_or_fuzzy(language):
    translations = catalog(language)
    in_catalog = {message.id for message in translations if message.id}
    missing = messages_in_the_code() - in_catalog
    assert not missing, f"not in {language}/messages.po (make translations-update): {missing}"
    for message in translations:
        if not message.id:
            continue
        assert not message.fuzzy, f"{language}: fuzzy entry {message.id!r}"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{language}: no translation for {message.id!r}"
        # Each placeholder of the translation is one the code fills in, of the same kind.
        checkers.python_format(translations, message)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogs_are_built_from_the_current_ones(language):
    compiled = TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo"
    source = compiled.with_suffix(".po")
    assert compiled.exists(), "make install (make translations-compile) builds the .mo files"
    assert compiled.stat().st_mtime >= source.stat().st_mtime, "make translations-compile"


# --- every patient page in each language ---------------------------------------------------


def english_sentences() -> list[str]:
    """Message ids whose words would give away an untranslated message on a page: those of two
    or more words without placeholders (short ones like "With" may be a name's part)."""
    ids = (message for message in messages_in_the_code() if isinstance(message, str))
    return [text for text in ids if " " in text.strip() and "%(" not in text]


def patient_pages(client, book) -> list[str]:
    appointment = book("pt-evaluation", start=local(MONDAY, 9))
    token = manage_token_for(appointment)
    start = local(TUESDAY, 10).isoformat().replace("+", "%2B")
    return [
        "/",
        "/book/pt-evaluation",
        f"/book/pt-evaluation/details?start={start}",
        f"/manage/{token}",
        f"/manage/{token}/confirmation",
        f"/manage/{token}/cancel",
        f"/manage/{token}/reschedule",
        "/book/no-such-service",
        "/manage/not-a-token",
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_patient_page_is_in_the_chosen_language_with_no_english_left(
    client, book, language
):
    english = english_sentences()
    for url in patient_pages(client, book):
        answer = client.get(url + ("&" if "?" in url else "?") + f"lang={language}")
        assert answer.status_code in (200, 404), url
        html = answer.get_data(as_text=True)
        assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in html
        text = text_of(answer)
        left = [sentence for sentence in english if sentence in text]
        assert left == [], f"{url} in {language} still says {left}"


@pytest.mark.usefixtures("smtp_settings")
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_weekly_visits_pages_and_mail_are_in_the_chosen_language(
    client, smtp_inbox, language
):
    from tests.test_series import evaluated

    patient = evaluated(40)
    send_due(utc_now())
    smtp_inbox.take()
    english = english_sentences()
    start = local(MONDAY, 14).isoformat()
    form = {"start": start, "therapist": "alex-rivera", "visit_for": "me", "website": "",
            "name": patient["name"], "email": patient["email"], "weekdays": ["mon", "thu"],
            "count": "3", "action": "see-weekly-visits"}
    path = f"/book/dry-needling/details?lang={language}"
    preview = client.post(path, data=form)
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    previewed = re.search(r'id="previewed" name="previewed" type="hidden" value="([^"]+)"', html)
    key = re.search(r'id="booking_key" name="booking_key" type="hidden" value="([^"]+)"', html)
    booked = client.post(path, data={**form, "previewed": previewed.group(1),
                                     "booking_key": key.group(1),
                                     "action": "book-weekly-visits"})
    assert booked.status_code == 303
    confirmation = booked.headers["Location"]
    token = confirmation.split("/")[2]
    [first, *_] = db.session.scalars(
        select(Appointment).where(Appointment.series_id.is_not(None))
        .order_by(Appointment.start_at)).all()
    visit = manage_token_for(first)
    details = client.get("/book/dry-needling/details", query_string={
        "start": start, "therapist": "alex-rivera", "lang": language})
    for answer in (preview, details, client.get(confirmation), client.get(f"/manage/{token}"),
                   client.get(f"/manage/{visit}"),
                   client.get(f"/manage/{visit}/cancel?scope=following")):
        assert answer.status_code == 200
        html = answer.get_data(as_text=True)
        assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in html
        left = [sentence for sentence in english if sentence in text_of(answer)]
        assert left == [], f"{answer.request.path} in {language} still says {left}"
    # Opened afresh (from the mail, another browser): the language the series was booked in.
    fresh = client.application.test_client().get(f"/manage/{token}")
    assert f'<html lang="{language}"' in fresh.get_data(as_text=True)
    send_due(utc_now())
    [mail] = smtp_inbox.take()
    assert mail["Content-Language"] == language
    text = mail.get_body(("plain",)).get_content()
    assert not [sentence for sentence in english if sentence in " ".join(text.split())]


@pytest.mark.usefixtures("smtp_settings")
@pytest.mark.parametrize(("language", "moved", "from_to"), [
    ("es", "Cambiado:", "- del "),
    ("ar", "تم التغيير:", "- من "),
])
def test_visits_moved_together_are_told_in_one_mail_in_the_patients_language(
    app, smtp_inbox, language, moved, from_to
):
    from booking import scheduling
    from tests.test_series import evaluated

    patient = evaluated(41)
    scheduling.book_series(
        scheduling.bookable_service("dry-needling"), local(MONDAY, 14), [0, 3], 3,
        scheduling.PatientDetails(**patient, language=language), therapist_slug="alex-rivera",
    )
    db.session.commit()
    send_due(utc_now())
    smtp_inbox.take()
    [_, second, _] = db.session.scalars(
        select(Appointment).where(Appointment.series_id.is_not(None))
        .order_by(Appointment.start_at)).all()
    scheduling.move_following(second, 4, time(9), changed_by="staff:desk@clinic.example")
    db.session.commit()
    send_due(utc_now())
    [mail] = smtp_inbox.take()
    assert (mail["X-Booking-Notification"], mail["Content-Language"]) == ("reschedule", language)
    text = " ".join(mail.get_body(("plain",)).get_content().split())
    assert moved in text
    assert "Moved" not in str(mail["Subject"])
    assert text.count(from_to) == 2
    assert not [sentence for sentence in english_sentences() if sentence in text]


def test_an_arabic_page_is_right_to_left_with_arabic_dates(client):
    answer = client.get("/book/pt-evaluation", query_string={"lang": "ar"})
    html = answer.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert "اختر وقتًا" in text_of(answer)
    assert "تقييم العلاج الطبيعي" in text_of(answer)
    assert re.search(r"(الاثنين|الثلاثاء|الأربعاء|الخميس|الجمعة)، \d+ \w+", text_of(answer))


def test_a_service_named_only_in_english_shows_its_english_name_on_the_spanish_page(client):
    answer = client.get("/", query_string={"lang": "es"})
    text = text_of(answer)
    assert "Reservar una cita" in text
    # Marked as English, so a screen reader reads it as English and Arabic lays it out as such.
    assert '<span lang="en" dir="auto">Dry needling session</span>' in answer.get_data(as_text=True)
    assert "Evaluación de fisioterapia" in text
    assert "Una primera visita para saber qué le pasa." in text
    assert "Dry needling session" in text  # not translated in the clinic file: the first language
    # The Arabic evaluation has no Arabic description: the English one, never a key.
    arabic = text_of(client.get("/", query_string={"lang": "ar"}))
    assert "A first visit to find out what is wrong." in arabic


def test_the_switcher_choice_is_kept_in_the_session_and_offers_each_language_by_its_name(client):
    first = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    html = first.get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in html
    for code, name in (("en", "English"), ("es", "Español"), ("ar", "العربية")):
        assert f'href="/?lang={code}" lang="{code}" hreflang="{code}"' in html
        assert f">{name}</a>" in html
    client.get("/", query_string={"lang": "es"})
    later = client.get("/book/pt-evaluation", headers={"Accept-Language": "en-US"})
    assert '<html lang="es" dir="ltr">' in later.get_data(as_text=True)
    assert "Elija una hora" in text_of(later)


def test_without_a_choice_the_browser_language_then_the_clinics_first(client):
    spanish = client.get("/", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert "Reservar una cita" in text_of(spanish)
    unknown = client.get("/", headers={"Accept-Language": "fr-FR"})
    assert '<html lang="en" dir="ltr">' in unknown.get_data(as_text=True)


def test_a_language_the_clinic_does_not_offer_is_not_used(client, app):
    text = CLINIC_IN_LANGUAGES.replace('languages = ["en", "es", "ar"]', 'languages = ["en", "es"]')
    text = text.replace(', ar = "تقييم العلاج الطبيعي"', "").replace(', ar = "حجز مكالمة"', "")
    clinic_file.apply_clinic(clinic_file.parse_clinic_file(text, "clinic.toml"))
    db.session.commit()
    html = client.get("/", query_string={"lang": "ar"}).get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in html
    assert "hreflang=\"ar\"" not in html


def test_the_manage_link_opens_in_the_language_the_visit_was_booked_in(client, book):
    appointment = book("pt-evaluation", start=local(MONDAY, 9), language="ar")
    answer = client.get(f"/manage/{manage_token_for(appointment)}",
                        headers={"Accept-Language": "en-US"})
    assert '<html lang="ar" dir="rtl">' in answer.get_data(as_text=True)
    assert "موعدك" in text_of(answer)


def test_a_form_problem_is_named_in_the_patients_language(client):
    answer = client.post(
        f"{CALL}/details?lang=es",
        data={"start": local(MONDAY, 10).isoformat(), "therapist": "", "visit_for": "me",
              "name": "Pat Example", "email": "not-an-email", "phone": "+1 586 555 0199",
              "note": "", "website": ""},
    )
    assert answer.status_code == 422
    assert "Escriba un correo electrónico como nombre@ejemplo.com." in text_of(answer)
    assert db.session.scalar(select(Appointment.id)) is None


# --- mail and the .ics in the booking's language -------------------------------------------


def words_of(mail: EmailMessage) -> str:
    return " ".join(mail.get_body(("plain",)).get_content().split())


def html_of(mail: EmailMessage) -> str:
    return mail.get_body(("html",)).get_content()


def event_of(mail: EmailMessage):
    [attachment] = list(mail.iter_attachments())
    [event] = Calendar.from_ical(attachment.get_content()).walk("VEVENT")
    return event


@pytest.mark.usefixtures("smtp_settings")
def test_a_spanish_booking_gets_its_confirmation_reminder_and_aftercare_in_spanish(
    client, book, smtp_inbox
):
    book("pt-evaluation", start=local(MONDAY, 9))  # dry needling follows an evaluation
    smtp_inbox.take()
    send_due(utc_now())  # the confirmations, due at once
    smtp_inbox.take()
    start = local(TUESDAY, 9)
    client.get("/", query_string={"lang": "es"})
    answer = client.post(
        "/book/dry-needling/details",
        data={"start": start.isoformat(), "therapist": "alex-rivera", "visit_for": "me",
              "name": "Pat Example", "email": "pat@example.com", "phone": "+1 586 555 0199",
              "note": "", "website": ""},
    )
    assert answer.status_code == 303, text_of(answer)
    db.session.rollback()
    booked = db.session.scalars(select(Appointment).order_by(Appointment.id.desc())).first()
    assert booked.patient_language == "es"

    send_due(local(MONDAY, 8))  # the confirmation, and the evaluation's reminders
    send_due(local(TUESDAY, 8, 30))  # the session's second reminder (after the quiet hours)
    send_due(local(TUESDAY, 12))  # the aftercare note, 2 hours after it ends
    mine = [mail for mail in smtp_inbox.take() if "dry needling session" in mail["Subject"]]
    kinds = [mail["X-Booking-Notification"] for mail in mine]
    assert kinds == ["confirmation", "reminder", "reminder", "aftercare"]
    confirmation, reminder, _, aftercare = mine
    for mail in mine:
        assert mail["Content-Language"] == "es"
        assert words_of(mail).startswith("Hola, Pat Example:")
        assert '<html lang="es" dir="ltr">' in html_of(mail)

    assert confirmation["Subject"].startswith(
        "Cita reservada: su dry needling session con Alex Rivera, PT, DPT, el martes"
    )
    assert "Hemos reservado su dry needling session con Alex Rivera, PT, DPT para el martes" in (
        words_of(confirmation))
    assert "9:00 a.m. (hora de la clínica)" in words_of(confirmation)
    event = event_of(confirmation)
    assert str(event["SUMMARY"]) == "Dry needling session en Test Therapy Clinic"
    assert str(event["DESCRIPTION"]) == "Con Alex Rivera, PT, DPT."

    assert reminder["Subject"].startswith("Recordatorio: su dry needling session")
    assert "Cómo prepararse para la punción seca:" in words_of(reminder)
    assert "coma algo ligero una o dos horas antes" in words_of(reminder)

    assert aftercare["Subject"] == "Después de su dry needling session: qué esperar"
    assert "Es normal sentir una molestia leve o sensibilidad" in words_of(aftercare)
    assert "beba mucha agua;" in words_of(aftercare)


@pytest.mark.usefixtures("smtp_settings")
def test_the_ics_summary_uses_the_service_name_in_the_patients_language(book, smtp_inbox):
    book("pt-evaluation", start=local(MONDAY, 9), language="es")
    book("pt-evaluation", start=local(TUESDAY, 9), language="ar", email="sara@example.com")
    send_due(utc_now())  # the confirmations, due at once
    spanish, arabic = smtp_inbox.take()
    assert str(event_of(spanish)["SUMMARY"]) == (
        "Evaluación de fisioterapia en Test Therapy Clinic")
    assert spanish["Subject"].startswith(
        "Cita reservada: su evaluación de fisioterapia con Alex Rivera, PT, DPT, el lunes")
    assert arabic["Content-Language"] == "ar"
    assert str(event_of(arabic)["SUMMARY"]) == "تقييم العلاج الطبيعي في Test Therapy Clinic"
    assert '<html lang="ar" dir="rtl">' in html_of(arabic)
    assert "مرحبًا Pat Example،" in words_of(arabic)
    assert "تم حجز موعدك (تقييم العلاج الطبيعي) مع Alex Rivera, PT, DPT" in words_of(arabic)


@pytest.mark.usefixtures("smtp_settings")
def test_a_clinic_template_for_one_language_wins_over_its_general_one(
    app, book, smtp_inbox, tmp_path
):
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "confirmation.txt").write_text("Hola {{ addressee }}: nuestra versión.\n")
    (tmp_path / "confirmation.txt").write_text("Hello {{ addressee }}: our own words.\n")
    app.config["MAIL_TEMPLATES_FOLDER"] = str(tmp_path)
    book("pt-evaluation", start=local(MONDAY, 9), language="es")
    book("pt-evaluation", start=local(TUESDAY, 9), language="en", email="sam@example.com")
    send_due(utc_now())  # the confirmations, due at once
    spanish, english = smtp_inbox.take()
    assert words_of(spanish) == "Hola Pat Example: nuestra versión."
    assert words_of(english) == "Hello Pat Example: our own words."
    assert english["Content-Language"] == "en"


# --- the clinic file -----------------------------------------------------------------------


def problems_in(text: str) -> str:
    with pytest.raises(ClinicFileError) as raised:
        clinic_file.parse_clinic_file(text, "clinic.toml")
    return str(raised.value)


def test_the_clinic_file_refuses_unknown_or_repeated_languages_naming_the_key():
    unknown = problems_in(CLINIC_IN_LANGUAGES.replace('["en", "es", "ar"]', '["en", "fr"]'))
    assert 'clinic.toml: clinic.languages: "fr" is not a language' in unknown
    repeated = problems_in(CLINIC_IN_LANGUAGES.replace('["en", "es", "ar"]', '["en", "es", "en"]'))
    assert 'clinic.languages: "en" is listed twice' in repeated
    empty = problems_in(CLINIC_IN_LANGUAGES.replace('["en", "es", "ar"]', "[]"))
    assert "clinic.languages: must name at least one language" in empty


def test_a_text_per_language_must_use_the_clinics_languages_and_give_the_first():
    no_arabic = CLINIC_IN_LANGUAGES.replace('["en", "es", "ar"]', '["en", "es"]')
    assert 'services[1].name: "ar" is not one of the clinic\'s languages (en, es)' in (
        problems_in(no_arabic))
    without_english = CLINIC_IN_LANGUAGES.replace(
        'en = "Schedule a call", ', "")
    assert "services[0].name: must have the clinic's first language (en)" in (
        problems_in(without_english))


def test_the_languages_and_the_texts_per_language_are_exported_as_loaded():
    exported = clinic_file.export_clinic()
    assert 'languages = ["en", "es", "ar"]' in exported
    assert ('name = { en = "Schedule a call", es = "Programar una llamada", ar = "حجز مكالمة" }'
            in exported)
    assert 'name = "Dry needling session"' in exported
    again = clinic_file.parse_clinic_file(exported, "exported.toml")
    assert clinic_file.apply_clinic(again) == []
    evaluation = db.session.scalars(select(Service).where(Service.slug == "pt-evaluation")).one()
    assert evaluation.name == "Physical therapy evaluation"
    assert evaluation.translations["name"] == {
        "es": "Evaluación de fisioterapia", "ar": "تقييم العلاج الطبيعي"}


def test_a_clinic_file_without_languages_is_english_only(client):
    clinic_file.apply_clinic(clinic_file.read_clinic_file(CLINIC_FILE))
    db.session.commit()
    html = client.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in html
    assert 'class="languages"' not in html


# --- the back office -----------------------------------------------------------------------


def test_the_back_office_stays_english_and_shows_each_patients_language(app, book):
    visit = book("pt-evaluation", start=local(MONDAY, 9), language="es")
    desk = signed_in(app, staff_logins()["front_desk"])
    page = desk.get(f"/desk/appointments/{visit.id}", headers={"Accept-Language": "es"})
    text = text_of(page)
    assert "Language Spanish (es)" in text
    assert "Physical therapy evaluation" in text  # the clinic's first language, untranslated
    assert "Evaluación" not in text
    patient = text_of(desk.get(f"/desk/patients/{visit.patient.id}"))
    assert "Language Spanish (es)" in patient


def test_words_written_in_a_fixed_language_are_flask_babels_and_end_with_it(app):
    """A message fixes its language for a while (`writing_in`, translations found once):
    the words are those Flask-Babel gives under force_locale, and after it the page's language
    is back."""
    from flask_babel import force_locale
    from flask_babel import gettext as babel_gettext
    from flask_babel import ngettext as babel_ngettext

    from booking.patients.languages import current_language, gettext, ngettext, writing_in

    with app.test_request_context("/"):
        with writing_in("es"):
            assert current_language() == "es"
            assert gettext("call") == "llamada"
            fixed = (
                gettext("your %(visit_name)s with %(therapist)s", visit_name="llamada",
                        therapist="Alex"),
                ngettext("Booked: %(num)d visit, %(visit)s, from %(when)s",
                         "Booked: %(num)d visits, %(visit)s, from %(when)s",
                         3, visit="x", when="y"),
            )
        with force_locale("es"):
            assert fixed == (
                babel_gettext("your %(visit_name)s with %(therapist)s", visit_name="llamada",
                              therapist="Alex"),
                babel_ngettext("Booked: %(num)d visit, %(visit)s, from %(when)s",
                               "Booked: %(num)d visits, %(visit)s, from %(when)s",
                               3, visit="x", when="y"),
            )
        assert "3" in fixed[1] and fixed[1] != "Booked: 3 visits, x, from y"
        assert current_language() == "en"
        assert gettext("call") == "call"
