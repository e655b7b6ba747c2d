"""Find my settings in step 3, with and without JavaScript."""
from __future__ import annotations

from conftest import smtp_form
from helpers import choose_other, enable_prechat


def test_detect_offers_what_answered_and_one_click_fills_it(merchant, starttls_server, app):
    app.config["DETECT_TIMEOUT"] = 2.0
    app.config["DETECT_PORTS"] = (starttls_server.port,)
    enable_prechat(merchant)
    choose_other(merchant)
    # The merchant typed the host but the wrong security.
    form = smtp_form(starttls_server, security="ssl")
    fragment = merchant.post("/wizard/smtp/detect", form, htmx=True).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="detect-results"')
    assert f"localhost · port {starttls_server.port} · STARTTLS" in fragment
    assert "recommended" in fragment
    assert starttls_server.auth_attempts == []
    # The typed values were kept as the draft meanwhile.
    assert 'value="ssl" selected' in merchant.get("/wizard/smtp").get_data(as_text=True)


def test_detect_without_javascript_renders_the_step_with_results(merchant, app):
    enable_prechat(merchant)
    choose_other(merchant)
    page = merchant.post("/wizard/smtp/detect", {"host": "", "sender_email": "", "port": "587",
                                                 "security": "starttls"}).get_data(as_text=True)
    assert "<html" in page and "Enter the sender email (or a host) first" in page


def test_use_detected_fills_the_draft(merchant, starttls_server):
    enable_prechat(merchant)
    choose_other(merchant)
    merchant.post("/wizard/smtp", smtp_form(starttls_server, port="2525"))
    response = merchant.post("/wizard/smtp/use-detected", {"host": "localhost", "port": str(starttls_server.port),
                                                             "security": "starttls"})
    assert response.status_code == 302 and response.headers["Location"] == "/wizard/smtp"
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert f'value="{starttls_server.port}"' in page
    assert merchant.post("/wizard/smtp/use-detected", {"host": "x", "port": "abc", "security": "tls"}).status_code == 400
