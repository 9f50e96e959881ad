"""The pages a patient lands on, and the headers every response carries."""

import pytest


@pytest.mark.usefixtures("clinic")
def test_the_home_page_offers_the_clinics_services(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in ("Schedule a call", "Physical therapy evaluation", "Dry needling session"):
        assert f"<h2>{name}</h2>" in html
    assert "Available after an evaluation at the clinic." in html
    assert "Test Therapy Clinic" in html


def test_before_a_clinic_is_loaded_the_home_page_says_to_call(client):
    page = client.get("/")
    assert page.status_code == 503
    assert "Online booking is not open yet" in page.get_data(as_text=True)


def test_every_response_carries_the_security_headers(client):
    for url in ("/", "/healthz", "/api/v1/services", "/api/v1/nowhere"):
        headers = client.get(url).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in headers  # plain HTTP here
        assert len(headers.getlist("Content-Security-Policy")) == 1
    secure = client.get("/healthz", base_url="https://clinic.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
