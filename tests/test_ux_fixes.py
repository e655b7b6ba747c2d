"""Issue 13's bugs and contradictions, through the Flask test client: what the
merchant reads (and can press) after each fix. The browser walk is in
``test_browser_ux.py``; here every fix is pinned on its own, with and without htmx."""
from __future__ import annotations

import re

import pytest

from conftest import run_connection_test, smtp_form
from dns_server import DnsTestServer
from failure_peers import SMTP_PASSWORD
from helpers import choose_other, enable_prechat, prepare, start_chat


def choose(merchant, provider: str):
    return merchant.post("/wizard/provider", {"provider": provider, "ses_region": "us-east-1"})


def codes(page: str, field: str) -> list[str]:
    box = re.search(rf'<div id="feedback-{field}".*?</div>', page, re.S)
    return re.findall(r'data-code="([a-z0-9_]+)"', box.group(0)) if box else []


# -- 1: Enter submits the primary action -----------------------------------------------

def test_step_3_default_button_is_save_and_continue(merchant):
    enable_prechat(merchant)
    choose_other(merchant)
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    form = page[page.index('id="smtp-form"'):page.index("</form>", page.index('id="smtp-form"'))]
    first_submit = re.search(r"<button[^>]*type=\"submit\"[^>]*>([^<]*)<", form)
    # The browser's implicit submission (Enter) uses the form's first submit button.
    assert first_submit.group(1) == "Save and continue"
    assert 'formaction="/wizard/smtp/detect"' not in first_submit.group(0)


def test_every_multi_button_form_starts_with_its_primary_action(merchant):
    """No other step form has a secondary submit button ahead of the primary one."""
    enable_prechat(merchant)
    choose_other(merchant)
    for url in ("/wizard/pre-chat-form", "/wizard/provider", "/wizard/test"):
        page = merchant.get(url).get_data(as_text=True)
        for form in re.findall(r"<form.*?</form>", page, re.S):
            buttons = re.findall(r"<button[^>]*>", form)
            submits = [b for b in buttons if 'type="button"' not in b]
            if len(submits) > 1:
                assert "secondary" not in submits[0] and "formaction" not in submits[0], (url, submits)


# -- 2: one-click fixes -----------------------------------------------------------------

@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_port_security_mismatch_offers_the_switch_and_applies_it(merchant, starttls_server, htmx):
    enable_prechat(merchant)
    choose_other(merchant)
    values = smtp_form(starttls_server, port="465", security="starttls")
    page = merchant.post("/wizard/smtp", values, htmx=htmx).get_data(as_text=True)
    assert 'name="fix" value="security=ssl"' in page and "Switch Security to SSL/TLS" in page
    fixed = merchant.post("/wizard/smtp", {**values, "fix": "security=ssl"}, htmx=htmx)
    body = fixed.get_data(as_text=True)
    assert fixed.status_code == 200 and "Security protocol is now SSL/TLS." in body
    assert re.search(r'<option value="ssl" selected>', body)
    assert "port_security_mismatch" not in codes(body, "port")


def test_a_host_typo_that_does_not_exist_is_a_fix_with_the_right_host(app, merchant, starttls_server):
    with DnsTestServer({"smtp.gmail.com": {"A": ["127.0.0.1"]}}) as dns:
        app.config["DNS_NAMESERVER"] = dns.nameserver
        enable_prechat(merchant)
        choose_other(merchant)
        page = merchant.post("/wizard/smtp", smtp_form(starttls_server, host="smtp.gmial.com")).get_data(as_text=True)
    assert codes(page, "host") == ["host_near_miss_unknown"]
    assert 'class="msg msg-error" data-code="host_near_miss_unknown"' in page
    assert 'name="fix" value="host=smtp.gmail.com"' in page and ">Use smtp.gmail.com</button>" in page


def test_a_failed_lookup_of_a_typo_offers_the_known_host_in_step_4(app, merchant, starttls_server):
    # SERVFAIL proves nothing in step 3 (a Tip, the test may run), and the test then cannot find the host.
    with DnsTestServer({}, servfail={"smtp.sendgird.net"}) as dns:
        app.config["DNS_NAMESERVER"] = dns.nameserver
        enable_prechat(merchant)
        choose_other(merchant)
        merchant.post("/wizard/smtp", smtp_form(starttls_server, host="smtp.sendgird.net"))
        page = run_connection_test(merchant).get_data(as_text=True)
    assert 'data-category="dns_not_found"' in page
    assert "Use smtp.sendgrid.net and test again" in page
    assert 'name="apply_host" value="yes"' in page


# -- 3: the wizard does not contradict itself ---------------------------------------------

def test_sendgrid_with_a_gmail_sender_says_only_that_it_cannot_send_as_gmail(merchant, starttls_server):
    enable_prechat(merchant)
    choose(merchant, "sendgrid")
    page = merchant.post("/wizard/smtp", smtp_form(starttls_server, sender_email="shop@gmail.com", host="smtp.sendgrid.net",
                                                   port="587", username="apikey")).get_data(as_text=True)
    assert codes(page, "sender_email") == ["sender_free_mailbox_service"]
    assert "authenticate the domain gmail.com" not in page


def test_switching_provider_drops_the_old_password_and_says_why(merchant, starttls_server):
    prepare(merchant, starttls_server)
    choose(merchant, "gmail")
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert "password_provider_changed" in codes(page, "password")
    assert "Password saved (encrypted)" not in page


def test_typing_a_new_password_replaces_the_saved_note(merchant, starttls_server):
    prepare(merchant, starttls_server)
    merchant.get("/wizard/smtp")
    answer = merchant.post("/wizard/smtp/check", smtp_form(starttls_server, password="another-secret"),
                           htmx=True, trigger="password").get_data(as_text=True)
    assert 'id="password-saved" hx-swap-oob="true"' in answer
    assert "replaces the saved one" in answer and "leave the field blank" not in answer


def test_sender_name_is_prefilled_with_the_store_name(merchant):
    enable_prechat(merchant)
    choose_other(merchant)
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert re.search(r'id="sender_name" name="sender_name" type="text" value="Blue Fern Shop Support"', page)
    assert 'placeholder="Blue Fern Shop Support"' not in page


# -- 4: a result for other settings, the port policy, plain words ------------------------------

def test_a_result_for_earlier_settings_says_so(merchant, starttls_server):
    prepare(merchant, starttls_server)
    run_connection_test(merchant)
    merchant.post("/wizard/smtp", smtp_form(starttls_server, port="465", security="ssl"))
    page = merchant.get("/wizard/test").get_data(as_text=True)
    assert 'data-stale="true"' in page and "For earlier settings:" in page
    assert f"port {starttls_server.port}" in page and "with STARTTLS" in page


def test_a_port_outside_the_allowed_list_is_a_port_problem_everywhere(app, merchant, starttls_server):
    app.config["SMTP_ALLOWED_PORTS"] = "587,465"
    enable_prechat(merchant)
    choose_other(merchant)
    page = merchant.post("/wizard/smtp", smtp_form(starttls_server)).get_data(as_text=True)
    assert "port_not_allowed" in codes(page, "port")
    assert f"Port {starttls_server.port} is not allowed for outgoing mail here" in page
    page = merchant.get("/wizard/test").get_data(as_text=True)
    assert "Fix first" in page and 'data-code="port_not_allowed"' in page


def test_the_probe_records_a_refused_port_as_a_port_problem(starttls_server):
    from wizard.smtp.address_policy import AddressPolicy
    from wizard.smtp.probe import probe_smtp
    from wizard.smtp.types import SmtpTarget

    policy = AddressPolicy.from_config("587", "127.0.0.0/8")
    result = probe_smtp(SmtpTarget(host="127.0.0.1", port=starttls_server.port, security="starttls", username="u",
                                   password="p", timeout=2.0, address_policy=policy))
    assert (result.ok, result.category) == (False, "port_not_allowed")
    assert starttls_server.messages == []


def test_library_error_text_goes_to_the_transcript(merchant, certs):
    enable_prechat(merchant)
    choose_other(merchant)
    from types import SimpleNamespace

    from wizard.devmailbox.server import find_free_port

    closed = SimpleNamespace(port=find_free_port(), mode="starttls")  # nothing listens there any more
    merchant.post("/wizard/smtp", smtp_form(closed, host="127.0.0.1"))
    page = run_connection_test(merchant).get_data(as_text=True)
    assert 'data-category="connection_refused"' in page
    timeline = page[page.index('<ol class="timeline"'):page.index("</ol>", page.index('<ol class="timeline"'))]
    assert "Errno" not in timeline
    assert "(error) [Errno 111]" in page  # kept, inside the transcript


def test_the_test_button_is_disabled_while_a_test_runs(merchant, starttls_server):
    prepare(merchant, starttls_server)
    page = merchant.post("/wizard/test", {}, htmx=True).get_data(as_text=True)
    if 'data-status="running"' in page:
        assert re.search(r'id="test-button" disabled', page)
    run_connection_test(merchant, htmx=True)
    assert not re.search(r'id="test-button" disabled', merchant.get("/wizard/test").get_data(as_text=True))


# -- 5: step 5's ending and the summary ---------------------------------------------------------

def test_step_5_keeps_its_result_and_ends_with_finish(merchant, starttls_server):
    prepare(merchant, starttls_server)
    run_connection_test(merchant)
    merchant.post("/wizard/save", {})
    merchant.post("/wizard/send", {"recipient": "customer@example.com"})
    page = merchant.get("/wizard/send").get_data(as_text=True)
    assert "Sent — the server accepted the message for customer@example.com" in page
    assert 'id="finish" href="/wizard/done">Finish</a>' in page
    assert 'action="/wizard/send/' in page  # the checklist is back too
    summary = merchant.get("/wizard/done").get_data(as_text=True)
    assert "Next steps" in summary and "/s/blue-fern-shop/chat" in summary and 'href="/inbox"' in summary


def test_untested_settings_do_not_tick_step_4_and_the_summary_uses_words(merchant, starttls_server):
    prepare(merchant, starttls_server, password="wrong-password")
    run_connection_test(merchant)
    merchant.post("/wizard/save", {"confirm_untested": "yes"})
    summary = merchant.get("/wizard/done").get_data(as_text=True)
    step_4 = re.search(r'<li class="progress-step[^"]*"[^>]*>\s*<a href="/wizard/test"', summary)
    assert step_4 and "is-done" not in step_4.group(0)
    assert "failed (" not in summary and "auth_failed" not in summary
    assert "failed: " in summary


def test_a_failed_test_email_names_the_host_and_links_support(app, merchant, starttls_server):
    prepare(merchant, starttls_server)
    run_connection_test(merchant)
    merchant.post("/wizard/save", {})
    starttls_server.stop()  # the server is gone by the time the email is sent
    page = merchant.post("/wizard/send", {"recipient": "customer@example.com"}, follow_redirects=True).get_data(as_text=True)
    assert "What to check next:" in page and f"port {starttls_server.port}" in page
    assert "Send this to HeiChat support" in page


# -- 7: Find my settings -------------------------------------------------------------------------

def test_use_these_forms_are_not_nested_in_the_smtp_form(merchant):
    enable_prechat(merchant)
    choose_other(merchant)
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    smtp_form_html = page[page.index('id="smtp-form"'):page.index("</form>", page.index('id="smtp-form"'))]
    assert "<form" not in smtp_form_html
    assert '<div id="detect-forms">' in page[page.index("</form>", page.index('id="smtp-form"')):]


# -- 8: outgoing content guards -----------------------------------------------------------------------

def test_a_template_instruction_blocks_sending(app, merchant, starttls_server):
    from test_inbox import compose_post, configure_email, emails, field_value, open_compose

    enable_prechat(merchant)
    start_chat(app)
    configure_email(merchant, starttls_server)
    from helpers import conversation_row

    conversation_id = conversation_row(app).id
    page, key = open_compose(merchant, conversation_id, kind="support_reply")
    body = field_value(page, "body")
    assert "[Write your answer here.]" in body
    answer = compose_post(merchant, conversation_id, key, "send", kind="support_reply",
                          subject=field_value(page, "subject"), body=body).get_data(as_text=True)
    assert "Replace “[Write your answer here.]” with your own words before sending." in answer
    assert emails(app) == []  # nothing was queued


def test_the_test_email_reads_as_english():
    from wizard.smtp.message import build_test_email

    message = build_test_email(sender_name="Lumen Candles Support", sender_email="hi@lumen.example.com",
                               recipient="me@example.com", store_name="Lumen Candles", provider_name="Gmail")
    assert "This is a test email from Lumen Candles' HeiChat email set-up" in message.get_content()


# -- 12, 14: customer pages and the support address ------------------------------------------------------

def test_customer_pages_carry_the_store_name_not_the_merchant_app(app, client):
    from conftest import sign_up
    from helpers import CHAT

    merchant = sign_up(client)
    enable_prechat(merchant)
    client.post("/signout", data={"csrf_token": merchant.token})
    page = client.get(CHAT).get_data(as_text=True)
    header = page[page.index("<header"):page.index("</header>")]
    assert "Blue Fern Shop" in header and "Sign in" not in header and "Create account" not in header
    assert "HeiChat support" not in page
    assert "<title>Chat with Blue Fern Shop</title>" in page


def test_the_support_address_comes_from_configuration(app, client):
    assert "heicarbook@gmail.com" not in client.get("/signin").get_data(as_text=True)
    app.config["SUPPORT_EMAIL"] = "help@heichat.example.com"
    page = client.get("/signin").get_data(as_text=True)
    assert 'href="mailto:help@heichat.example.com"' in page


def test_sign_up_promises_no_team_invites(client):
    assert "invite your team" not in client.get("/signup").get_data(as_text=True)


# -- 15: titles and the skip link ---------------------------------------------------------------------------

def test_every_step_has_its_own_title_and_a_skip_link(merchant, starttls_server):
    prepare(merchant, starttls_server)
    titles = set()
    for url in ("/wizard/pre-chat-form", "/wizard/provider", "/wizard/smtp", "/wizard/test", "/wizard/done"):
        page = merchant.get(url).get_data(as_text=True)
        titles.add(re.search(r"<title>(.*?)</title>", page).group(1))
        assert '<a class="skip-link" href="#main">' in page and 'id="main"' in page
    assert len(titles) == 5
    assert SMTP_PASSWORD not in "".join(merchant.bodies)
