"""Every answer that differs by request type says so (``Vary: HX-Request``),
and htmx-only fragments send a plain request to the page that holds them."""
from __future__ import annotations

import re
import time

from conftest import RUN_URL
from helpers import prepare


def vary(response) -> set[str]:
    return {part.strip() for part in response.headers.get("Vary", "").split(",")}


def test_the_live_test_poll_varies_and_a_plain_request_goes_to_the_step(merchant, starttls_server):
    prepare(merchant, starttls_server)
    started = merchant.post("/wizard/test", htmx=True)
    poll_url = RUN_URL.search(started.get_data(as_text=True)).group(1)
    polled = merchant.get(poll_url, htmx=True)
    assert polled.status_code == 200 and "HX-Request" in vary(polled)
    plain = merchant.get(poll_url)
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/wizard/test")
    assert "HX-Request" in vary(plain)
    # Let the background test finish before the database goes away.
    for _ in range(200):
        body = merchant.get(poll_url, htmx=True).get_data(as_text=True)
        if poll_url not in body:
            break
        time.sleep(0.05)
    assert 'data-category="ok"' in body


def test_a_wizard_step_varies_and_its_fragment_is_only_the_step(merchant):
    page = merchant.get("/wizard/provider")
    fragment = merchant.get("/wizard/provider", htmx=True)
    assert "HX-Request" in vary(page) and "HX-Request" in vary(fragment)
    assert "<html" in page.get_data(as_text=True) and "<html" not in fragment.get_data(as_text=True)
    assert re.search(r'id="wizard-step"', fragment.get_data(as_text=True))


def test_after_a_post_htmx_is_sent_to_the_next_step_and_a_plain_form_is_redirected(merchant):
    merchant.get("/wizard/pre-chat-form")
    form = {"enabled": "y", "email_required": "y", "name_mode": "optional", "intro": "Leave your email."}
    plain = merchant.post("/wizard/pre-chat-form", form)
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/wizard/provider")
    located = merchant.post("/wizard/pre-chat-form", form, htmx=True)
    assert located.status_code == 200 and '"path": "/wizard/provider"' in located.headers["HX-Location"]
    assert "HX-Request" in vary(plain) and "HX-Request" in vary(located)
