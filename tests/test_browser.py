"""The wizard in a real browser: Debian's Chromium driven by Playwright.

A live werkzeug server runs the app with the local test mailbox, and the
merchant walks all five steps like a person would: htmx swaps, pushed URLs,
live field hints and a real email that lands in the mailbox. A second test
repeats the first steps with JavaScript off to prove the plain-form path gives
the same answers.

Screenshots of every step go to ``tests/artifacts/`` (git-ignored).
"""
from __future__ import annotations

import re

from browser_helpers import (
    SENDER_EMAIL,
    SENDER_NAME,
    SMTP_SECRET,
    choose_local_mailbox,
    complete_pre_chat_form,
    expect,
    fill_smtp,
    shot,
    sign_up,
    step,
    url_is,
)

from wizard.devmailbox.store import list_messages


def test_whole_wizard_in_the_browser(live, new_page, artifacts):
    context, page = new_page()
    email = "owner@bluefern-browser.example.com"
    after_password: list[str] = []  # page HTML captured after the password was typed

    # 1. Sign up.
    page.goto(live.url("/signup"))
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    shot(page, artifacts, "01-signup.png")
    sign_up(page, live, "Blue Fern Browser Shop", email)
    expect(step(page, "pre-chat-form")).to_be_visible()
    expect(page.locator("li.progress-step.is-done")).to_have_count(0)
    shot(page, artifacts, "02-pre-chat-form.png")

    # Step 1: the pre-chat form, saved through htmx; HX-Location pushes /wizard/provider.
    complete_pre_chat_form(page)
    expect(page).to_have_url(url_is(live, "/wizard/provider"))
    expect(step(page, "provider")).to_be_visible()
    expect(page.locator("li.progress-step.is-done")).to_have_count(1)
    expect(page.locator("li.progress-step").first).to_have_class(re.compile(r"\bis-done\b"))
    expect(page.locator("li.progress-step a[aria-current=step]")).to_contain_text("Provider")
    shot(page, artifacts, "03-provider.png")

    # Step 2: the local test mailbox card.
    choose_local_mailbox(page)
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(step(page, "smtp")).to_be_visible()
    expect(page.get_by_label("SMTP Host")).to_have_value("127.0.0.1")
    expect(page.get_by_label("Port", exact=True)).to_have_value(str(live.mailbox_port))
    expect(page.get_by_label("Security Protocol")).to_have_value("starttls")
    expect(page.locator("li.progress-step.is-done")).to_have_count(2)
    shot(page, artifacts, "04-smtp.png")

    # Step 3: fill in, then watch the live hint for port 465 with STARTTLS.
    fill_smtp(page)
    after_password.append(page.content())
    port = page.get_by_label("Port", exact=True)
    mismatch = page.locator("#feedback-port [data-code=port_security_mismatch]")
    port.fill("465")
    expect(mismatch).to_be_visible()
    expect(mismatch).to_contain_text("465")
    # Typed, not submitted: still step 3 at the same URL.
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    after_password.append(page.content())
    shot(page, artifacts, "05-smtp-port-hint.png")
    port.fill(str(live.mailbox_port))
    expect(mismatch).to_have_count(0)
    expect(page.locator("#wizard-step [data-code][class*=msg-error]")).to_have_count(0)
    after_password.append(page.content())
    page.get_by_role("button", name="Save draft and continue to test").click()
    expect(page).to_have_url(url_is(live, "/wizard/test"))
    expect(step(page, "test")).to_be_visible()
    expect(page.locator(".card .lead")).to_contain_text(f"port {live.mailbox_port}")
    after_password.append(page.content())
    shot(page, artifacts, "06-test.png")

    # Step 4: test the connection, then save.
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#result[data-category=ok]")
    expect(result).to_be_visible()
    expect(result).to_contain_text("Connection works")
    stages = result.locator("ol.timeline > li")
    assert stages.count() >= 3, result.inner_html()
    expect(result.locator("ol.timeline > li.fail")).to_have_count(0)
    after_password.append(page.content())
    shot(page, artifacts, "07-test-passed.png")
    page.locator("#save-button").click()
    expect(page).to_have_url(url_is(live, "/wizard/send"))
    expect(step(page, "send")).to_be_visible()
    expect(page.locator("li.progress-step.is-done")).to_have_count(4)
    after_password.append(page.content())
    shot(page, artifacts, "08-send.png")

    # Step 5: a real test email to the sign-up address.
    expect(page.get_by_label("Send the test email to")).to_have_value(email)
    page.locator("#send-button").click()
    expect(page).to_have_url(re.compile(re.escape(live.url("/wizard/send?sent=")) + r"\d+$"))
    sent = page.locator("#result[data-category=ok]")
    expect(sent).to_be_visible()
    expect(sent).to_contain_text(f"Sent — the server accepted the message for {email}")
    expect(page.locator("code.queue-id")).to_have_text(re.compile(r"\S+"))
    after_password.append(page.content())
    shot(page, artifacts, "09-sent.png")

    [message] = list_messages(live.app.config["DEV_MAILBOX_DIR"])
    assert message.envelope_to == [email]
    assert SENDER_NAME in (message.from_header or "")
    assert SENDER_EMAIL in (message.from_header or "")
    assert message.subject

    # The local test mailbox, opened from the wizard's own link (a new tab).
    with context.expect_page() as opened:
        page.get_by_role("link", name="Open the local test mailbox").click()
    inbox = opened.value
    inbox.wait_for_load_state()
    expect(inbox).to_have_url(url_is(live, "/dev/mailbox"))
    row = inbox.locator("table.mailbox tbody tr", has_text=message.subject)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(email)
    row.get_by_role("link", name=message.subject).click()
    expect(inbox).to_have_url(url_is(live, f"/dev/mailbox/{message.key}"))
    expect(inbox.get_by_role("heading", level=1)).to_have_text(message.subject)
    expect(inbox.locator("dd.from-header")).to_contain_text(SENDER_NAME)
    after_password.append(inbox.content())
    shot(inbox, artifacts, "10-mailbox-message.png")
    inbox.close()

    # The checklist: all three boxes, saved as a plain form post.
    page.get_by_label("It arrived").check()
    page.get_by_label("The sender name looks right").check()
    page.get_by_label("It was in the inbox, not in spam").check()
    page.get_by_role("button", name="Save checklist").click()
    expect(page).to_have_url(url_is(live, "/wizard/done"))
    expect(step(page, "done")).to_be_visible()
    expect(page.locator("li.progress-step")).to_have_count(5)
    expect(page.locator("li.progress-step.is-done")).to_have_count(5)
    expect(page.locator(".badge.ok")).to_have_text("tested")
    expect(page.locator(".badge.warn")).to_have_count(0)
    expect(page.locator("dl.summary")).to_contain_text(f"{SENDER_NAME} <{SENDER_EMAIL}>")
    expect(page.locator("dl.summary")).to_contain_text("arrived")
    after_password.append(page.content())
    shot(page, artifacts, "11-done.png")

    # The SMTP password never came back in any page after it was typed.
    assert len(after_password) == 9
    for html in after_password:
        assert SMTP_SECRET not in html
    assert new_page.problems.items == [], "\n".join(new_page.problems.items)


def test_without_javascript_the_port_hint_matches(live, new_page, artifacts):
    """No JS: full-page posts only, and step 3 shows the same port/security message."""
    _context, page = new_page(java_script_enabled=False)
    sign_up(page, live, "Blue Fern No-Script", "noscript@bluefern-browser.example.com")

    complete_pre_chat_form(page)
    expect(page).to_have_url(url_is(live, "/wizard/provider"))
    expect(page.locator("li.progress-step.is-done")).to_have_count(1)

    choose_local_mailbox(page)
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(page.get_by_label("SMTP Host")).to_have_value("127.0.0.1")

    fill_smtp(page)
    page.get_by_label("Port", exact=True).fill("465")
    expect(page.get_by_label("Security Protocol")).to_have_value("starttls")
    page.get_by_role("button", name="Save draft and continue to test").click()
    page.wait_for_load_state()
    # The form came back (no move to step 4), with the message beside the port field.
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(step(page, "smtp")).to_be_visible()
    mismatch = page.locator("#field-port #feedback-port [data-code=port_security_mismatch]")
    expect(mismatch).to_be_visible()
    expect(mismatch).to_contain_text("465")
    expect(page.locator("#field-port")).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.get_by_label("Port", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Port", exact=True)).to_have_value("465")
    assert SMTP_SECRET not in page.content()
    shot(page, artifacts, "12-nojs-smtp-port-hint.png")
    assert new_page.problems.items == [], "\n".join(new_page.problems.items)
