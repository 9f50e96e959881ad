"""What a security probe of the whole service found, each answered as the user would see it:
ids too long for the database are no such page, and a NUL character is refused in any form
however it is encoded."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from booking.extensions import db
from booking.models import TimeOff
from tests.conftest import next_weekday
from tests.desk_staff import signed_in, staff_logins

BEYOND_64_BITS = "99999999999999999999"


@pytest.mark.usefixtures("clinic")
@pytest.mark.parametrize("method, path", [
    ("GET", f"/desk/appointments/{BEYOND_64_BITS}"),
    ("POST", f"/desk/appointments/{BEYOND_64_BITS}/move"),
    ("POST", f"/desk/appointments/{BEYOND_64_BITS}/cancel"),
    ("GET", f"/desk/patients/{BEYOND_64_BITS}"),
    ("POST", f"/desk/notifications/{BEYOND_64_BITS}/resend"),
    ("POST", f"/desk/users/{BEYOND_64_BITS}/active"),
    ("POST", f"/desk/therapists/alex-rivera/time-off/{BEYOND_64_BITS}/remove"),
    ("POST", f"/desk/therapists/alex-rivera/busy-calendars/{BEYOND_64_BITS}/remove"),
    ("GET", f"/desk/therapists/alex-rivera/busy-calendars/{BEYOND_64_BITS}/replace"),
    ("GET", f"/api/v1/appointments/{BEYOND_64_BITS}"),
])
def test_an_id_too_long_for_the_database_is_no_such_page(app, method, path):
    admin = signed_in(app, staff_logins()["admin"])
    answer = admin.open(path, method=method)
    assert answer.status_code == 404, answer.get_data(as_text=True)[:300]


@pytest.mark.usefixtures("clinic")
def test_a_nul_character_in_a_multipart_desk_form_is_refused_and_nothing_is_saved(app):
    desk = signed_in(app, staff_logins()["front_desk"])
    tuesday = next_weekday(1)
    answer = desk.post(
        "/desk/therapists/jamie-lee/time-off",
        data={"starts": f"{tuesday}T12:00", "ends": f"{tuesday}T17:00", "reason": "Co\x00urse"},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert "reason: must not contain a NUL character" in answer.get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TimeOff)) == 0
