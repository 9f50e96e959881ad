"""The back office's 400, 403 and 404 pages: in the desk's look, saying what was wrong."""

from __future__ import annotations

import pytest

from tests.desk_staff import signed_in, staff_logins


@pytest.fixture
def staff(clinic):
    return staff_logins()


def _in_the_desks_look(page: str) -> bool:
    return 'href="/static/desk.css' in page and "Back to the day view" in page


def test_a_bad_date_is_a_400_naming_the_field(app, staff):
    desk = signed_in(app, staff["front_desk"])
    answer = desk.get("/desk/?day=tomorrowish")
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "That request could not be read" in page
    assert "day: must be a date like 2026-12-01" in page
    assert _in_the_desks_look(page)


def test_a_missing_visit_and_an_unknown_address_are_404s(app, staff):
    desk = signed_in(app, staff["front_desk"])
    for address in ("/desk/appointments/999999", "/desk/no-such-page"):
        answer = desk.get(address)
        assert answer.status_code == 404, address
        page = answer.get_data(as_text=True)
        assert "No such page" in page
        assert _in_the_desks_look(page), address


def test_a_page_out_of_reach_is_a_403(app, staff):
    therapist = signed_in(app, staff["therapist"])
    answer = therapist.get("/desk/users")
    assert answer.status_code == 403
    page = answer.get_data(as_text=True)
    assert "Not yours to see" in page
    assert _in_the_desks_look(page)


def test_other_surfaces_keep_their_own_404(client, clinic):
    answer = client.get("/api/v1/nothing-here")
    assert answer.status_code == 404
    assert "Back to the day view" not in answer.get_data(as_text=True)
