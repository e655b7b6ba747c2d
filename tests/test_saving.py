"""Step 4's save rules: only tested values save directly; anything else needs
an explicit confirmation and is marked untested; any change asks for a new test."""
from __future__ import annotations

from conftest import SMTP_PASSWORD, run_connection_test, smtp_form
from helpers import choose_other, enable_prechat, prepare


def test_save_is_offered_only_after_the_exact_values_pass(merchant, starttls_server):
    prepare(merchant, starttls_server)
    before = merchant.get("/wizard/test").get_data(as_text=True)
    assert 'id="save-button"' not in before and 'id="save-untested-button"' in before
    tested = run_connection_test(merchant).get_data(as_text=True)
    assert 'data-category="ok"' in tested and 'id="save-button"' in tested
    # Change one field: the test no longer counts.
    merchant.post("/wizard/smtp", smtp_form(starttls_server, sender_name="Blue Fern Team", password=""))
    after = merchant.get("/wizard/test").get_data(as_text=True)
    assert 'id="save-button"' not in after
    live = merchant.post("/wizard/smtp/check", smtp_form(starttls_server, sender_name="Blue Fern Team", password=""),
                         htmx=True, trigger="sender_name").get_data(as_text=True)
    assert "Test again" in live
    back = merchant.post("/wizard/smtp/check", smtp_form(starttls_server, password=""), htmx=True,
                         trigger="sender_name").get_data(as_text=True)
    assert "passed a connection test" in back


def test_failed_test_then_save_needs_confirmation_and_is_marked_untested(merchant, starttls_server):
    prepare(merchant, starttls_server, password="wrong-one")
    failed = run_connection_test(merchant).get_data(as_text=True)
    assert 'data-category="auth_failed"' in failed
    assert "Signing in" in failed  # the stage, in plain words
    first = merchant.post("/wizard/save")
    assert first.status_code == 200
    assert "Save settings that have not passed a test?" in first.get_data(as_text=True)
    assert "Not saved yet" in merchant.get("/wizard/done").get_data(as_text=True)
    confirmed = merchant.post("/wizard/save", {"confirm_untested": "yes"})
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/wizard/send"
    summary = merchant.get("/wizard/done").get_data(as_text=True)
    assert "untested" in summary


def test_blank_password_keeps_the_saved_one(merchant, starttls_server):
    prepare(merchant, starttls_server)
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert "saved — leave blank to keep it" in page
    assert SMTP_PASSWORD not in page
    merchant.post("/wizard/smtp", smtp_form(starttls_server, password=""))
    result = run_connection_test(merchant).get_data(as_text=True)
    assert 'data-category="ok"' in result


def test_failed_send_is_explained_and_logged(merchant, certs):
    from conftest import SMTP_USERNAME
    from smtp_servers import start_test_server

    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           data_reply="550 The from address does not match a verified Sender Identity.") as server:
        prepare(merchant, server)
        run_connection_test(merchant)
        merchant.post("/wizard/save")
        response = merchant.post("/wizard/send", {"recipient": "customer@example.com"})
        page = merchant.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-category="sender_rejected"' in page
    assert "verified Sender Identity" in page
    assert "Handing over the message" in page


def test_resume_goes_to_the_first_unfinished_step(merchant, starttls_server):
    assert merchant.get("/wizard").headers["Location"] == "/wizard/pre-chat-form"
    enable_prechat(merchant)
    assert merchant.get("/wizard").headers["Location"] == "/wizard/provider"
    choose_other(merchant)
    assert merchant.get("/wizard").headers["Location"] == "/wizard/smtp"


def test_step_one_is_not_done_without_a_required_email(merchant):
    response = merchant.post("/wizard/pre-chat-form", {"enabled": "y", "name_mode": "optional"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "follow-ups need an address" in body
    assert merchant.get("/wizard").headers["Location"] == "/wizard/pre-chat-form"


def test_htmx_requests_get_the_step_fragment(merchant):
    full = merchant.get("/wizard/provider")
    fragment = merchant.get("/wizard/provider", htmx=True)
    assert "<html" in full.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<section id="wizard-step"')
    assert "HX-Request" in fragment.headers["Vary"]
    boosted = merchant.client.get("/wizard/provider", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)


def test_successful_htmx_post_pushes_the_next_step_url(merchant):
    response = enable_prechat(merchant, htmx=True)
    assert response.status_code == 200
    assert '"path": "/wizard/provider"' in response.headers["HX-Location"]
