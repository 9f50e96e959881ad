"""Two front desks moving visits on the board at once, on SQLite as `make run` has it: the
scheduler in the same process, writing its heartbeat and sending mail all the while. Every
move answers (no 503) and none is lost."""

from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import func, select

from booking import create_app
from booking.extensions import db
from booking.models import Appointment, AuditEntry, last_dispatcher_run
from booking.notifications.periodic_work import stop_in_process
from tests.conftest import local, next_weekday
from tests.desk_staff import PASSWORD, add_staff
from tests.servers import dispose_engines, free_port, serving_in_a_thread

MOVES = 8

pytestmark = pytest.mark.usefixtures("smtp_settings")


def test_two_desks_moving_at_once_lose_nothing(app_settings, clinic, book, monkeypatch):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the one-writer database of `make run`")
    from werkzeug.serving import make_server

    add_staff("desk@clinic.example", "front_desk")
    add_staff("desk2@clinic.example", "front_desk")
    day = next_weekday(0)
    visits = {
        "alex-rivera": book(start=local(day, 13), therapist="alex-rivera").id,
        "jamie-lee": book(start=local(day, 13), therapist="jamie-lee", name="Other Person",
                          email="other@example.com").id,
    }
    db.session.commit()
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    served = create_app({**app_settings, "BOOKING_SCHEDULER": True,
                         "NOTIFICATION_DISPATCH_SECONDS": 0.05})
    server = make_server("127.0.0.1", free_port(), served, threaded=True)
    answers: dict[str, list[int]] = {"desk@clinic.example": [], "desk2@clinic.example": []}
    last: dict[str, str] = {}

    def desk(email: str, therapist: str, base: str):
        with requests.Session() as session:
            session.post(f"{base}/desk/login", data={"email": email, "password": PASSWORD},
                         timeout=30)
            for move in range(MOVES):
                start = f"{day}T{14 + move % 3:02d}:{15 * (move % 4):02d}"
                answer = session.post(
                    f"{base}/desk/board/appointments/{visits[therapist]}/move",
                    json={"start": start, "therapist": therapist}, timeout=30)
                answers[email].append(answer.status_code)
                last[therapist] = start

    try:
        with serving_in_a_thread(server):
            base = f"http://127.0.0.1:{server.server_port}"
            desks = [threading.Thread(target=desk, args=(email, therapist, base))
                     for email, therapist in zip(answers, visits, strict=True)]
            for thread in desks:
                thread.start()
            for thread in desks:
                thread.join(timeout=120)
    finally:
        stop_in_process()
        with served.app_context():
            dispose_engines()
    assert answers == {email: [200] * MOVES for email in answers}
    db.session.rollback()
    assert last_dispatcher_run() is not None  # the scheduler was writing meanwhile
    for therapist, visit_id in visits.items():
        visit = db.session.get(Appointment, visit_id)
        assert f"{visit.start_at.astimezone(local(day, 0).tzinfo):%Y-%m-%dT%H:%M}" == (
            last[therapist]
        )
        assert visit.sequence == MOVES
    moves = db.session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "rescheduled")
    )
    assert moves == 2 * MOVES
