"""Test Connection in the wizard: the live timeline and the one-click fix."""
from __future__ import annotations

import re
import time

from conftest import RUN_URL, SMTP_PASSWORD, run_connection_test
from helpers import prepare
from smtp_servers import silent_listener


def test_timeline_fills_in_while_the_test_runs(merchant, starttls_server):
    with silent_listener() as port:
        prepare(merchant, starttls_server, port=str(port))
        first = merchant.post("/wizard/test", htmx=True).get_data(as_text=True)
        assert 'data-status="running"' in first
        poll_url = RUN_URL.search(first).group(1)
        time.sleep(0.4)  # dns and connect are done; the greeting never comes (1 s wait)
        middle = merchant.get(poll_url, htmx=True)
        body = middle.get_data(as_text=True)
        assert 'data-status="running"' in body and "HX-Retarget" not in middle.headers
        assert re.search(r'class="ok".*Looking up the server', body, re.S)
        assert re.search(r'class="ok".*Connecting', body, re.S)
        assert re.search(r'class="now".*Waiting for the server&#39;s greeting', body, re.S)
        final = run_connection_test(merchant, htmx=True)
    assert final.headers.get("HX-Retarget") == "#wizard-step"
    page = final.get_data(as_text=True)
    assert 'data-category="no_greeting"' in page
    assert "Use port 465 with SSL/TLS and test again" in page


def test_one_click_fix_switches_to_starttls_and_passes(merchant, starttls_server):
    prepare(merchant, starttls_server, security="ssl", port=str(starttls_server.port))
    failed = run_connection_test(merchant).get_data(as_text=True)
    assert 'data-category="tls_on_plain_port"' in failed
    assert f"Use port {starttls_server.port} with STARTTLS and test again" in failed
    # Another security mode is another server: the password is typed again next to the button (issue 9, item 1).
    fixed = run_connection_test(merchant, data={"apply_suggestion": "yes", "password": SMTP_PASSWORD}).get_data(as_text=True)
    assert 'data-category="ok"' in fixed
    assert 'id="save-button"' in fixed
    assert 'value="starttls" selected' in merchant.get("/wizard/smtp").get_data(as_text=True)


def test_polling_another_stores_run_is_404(app, merchant, starttls_server, client):
    prepare(merchant, starttls_server)
    body = merchant.post("/wizard/test", htmx=True).get_data(as_text=True)
    poll_url = RUN_URL.search(body).group(1)
    run_connection_test(merchant, htmx=True)
    merchant.post("/signout")
    from conftest import sign_up

    other = sign_up(client, email="other@shop.example.com", store="Other Shop")
    assert other.get(poll_url, htmx=True).status_code == 404
