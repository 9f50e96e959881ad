"""The flask commands of the contract, run as the clinic's staff would run them."""

from __future__ import annotations

from sqlalchemy import func, select

from booking.extensions import db
from booking.models import Appointment, Clinic, Therapist
from tests.conftest import CLINIC_FILE


def test_clinic_load_then_load_again_changes_nothing(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["clinic", "load", str(CLINIC_FILE)])
    assert first.exit_code == 0, first.output
    assert first.output.strip()
    again = runner.invoke(args=["clinic", "load", str(CLINIC_FILE)])
    assert again.exit_code == 0
    assert again.output == "Nothing to change: the clinic already matches the file.\n"
    assert db.session.scalar(select(func.count()).select_from(Therapist)) == 2


def test_clinic_load_refuses_a_bad_file_naming_the_key_and_loads_nothing(app, tmp_path):
    bad = tmp_path / "clinic.toml"
    bad.write_text(CLINIC_FILE.read_text().replace('kind = "call"', 'kind = "massage"'))
    answer = app.test_cli_runner().invoke(args=["clinic", "load", str(bad)])
    assert answer.exit_code == 1
    assert "clinic.toml: services[0].kind: must be one of call, evaluation, treatment" in (
        answer.output
    )
    assert db.session.scalar(select(func.count()).select_from(Clinic)) == 0


def test_clinic_export_prints_a_file_that_loads_back_to_the_same_clinic(app, tmp_path):
    runner = app.test_cli_runner()
    runner.invoke(args=["clinic", "load", str(CLINIC_FILE)])
    exported = runner.invoke(args=["clinic", "export"])
    assert exported.exit_code == 0
    assert '[clinic]\nname = "Test Therapy Clinic"' in exported.output
    assert 'hours.mon = ["08:00-12:00", "13:00-17:00"]' in exported.output
    copy = tmp_path / "exported.toml"
    copy.write_text(exported.output)
    reloaded = runner.invoke(args=["clinic", "load", str(copy)])
    assert reloaded.output == "Nothing to change: the clinic already matches the file.\n"


def test_seed_demo_loads_the_demo_clinic_with_sample_visits_once(app):
    runner = app.test_cli_runner()
    seeded = runner.invoke(args=["seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    assert seeded.output == "Demo clinic loaded, with 4 sample appointments.\n"
    clinic = db.session.scalars(select(Clinic)).one()
    assert clinic.name == "Crawl Walk Jump Run Therapy Clinic"
    assert clinic.timezone == "America/Detroit"
    assert db.session.scalar(select(func.count()).select_from(Therapist)) == 6
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 4
    skipped = runner.invoke(args=["seed-demo", "--if-empty"])
    assert skipped.output == "A clinic is already loaded; leaving it as it is.\n"
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 4
