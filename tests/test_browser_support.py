"""Support in a real browser: a support agent finds a store and sends a share link
to the SMTP step; the merchant opens it, accepts the suggestion, types the
password, tests and saves; the owner reads it all in the audit log.

Same set-up as ``test_browser.py`` (Debian's Chromium through Playwright, a live
werkzeug server, the local test mailbox); screenshots go to ``tests/artifacts/``.
"""
from __future__ import annotations

import re

from browser_helpers import (
    SENDER_EMAIL,
    SENDER_NAME,
    SMTP_SECRET,
    SMTP_USER,
    choose_local_mailbox,
    complete_pre_chat_form,
    expect,
    shot,
    sign_up,
    step,
    url_is,
)

from wizard.commands.support_agent import PASSWORD_VARIABLE, register

AGENT = "agent@heichat-browser.example.com"
AGENT_PASSWORD = "support-browser-pass-1"
OWNER = "owner@support-browser.example.com"
STORE = "Blue Fern Support Shop"


def create_agent(app) -> None:
    """The way operators do it: the CLI command (password from the environment)."""
    register(app)
    result = app.test_cli_runner().invoke(args=["create-support-agent", AGENT], env={PASSWORD_VARIABLE: AGENT_PASSWORD})
    assert result.exit_code == 0, result.output


def test_support_agent_shares_a_link_the_merchant_accepts(live, new_page, artifacts):
    create_agent(live.app)
    agent_pages: list[str] = []  # every support page's HTML, checked for the password at the end

    # The merchant signed up earlier and is past steps 1-2 (the local test mailbox).
    _merchant_context, merchant = new_page()
    sign_up(merchant, live, STORE, OWNER)
    complete_pre_chat_form(merchant)
    expect(merchant).to_have_url(url_is(live, "/wizard/provider"))
    choose_local_mailbox(merchant)
    expect(step(merchant, "smtp")).to_be_visible()

    # The support agent signs in on the same page and finds the store by a member's email.
    _agent_context, agent = new_page()
    agent.goto(live.url("/signin?next=/support"))
    agent.get_by_label("Email", exact=True).fill(AGENT)
    agent.get_by_label("Password", exact=True).fill(AGENT_PASSWORD)
    agent.get_by_role("button", name="Sign in").click()
    expect(agent).to_have_url(url_is(live, "/support"))
    search = agent.get_by_label("Store name, slug or a member's email")
    search.fill("no-such-store")
    expect(agent.locator("#support-results")).to_contain_text("No store matches")
    search.fill(OWNER)
    expect(agent).to_have_url(re.compile(re.escape(live.url("/support?q=")) + ".+"))
    result = agent.locator("#support-results tr[data-store-id]")
    expect(result).to_have_count(1)
    expect(result).to_contain_text(STORE)
    agent_pages.append(agent.content())
    shot(agent, artifacts, "support-01-search.png")
    result.get_by_role("link", name=STORE).click()
    expect(agent.get_by_role("heading", level=1)).to_have_text(STORE)
    agent_pages.append(agent.content())

    # A link to step 3 that suggests the local test mailbox's settings.
    agent.select_option("#link-target", "smtp")
    agent.locator("#link-host").fill("127.0.0.1")
    agent.locator("#link-port").fill(str(live.mailbox_port))
    agent.select_option("#link-security", "starttls")
    agent.locator("#link-username").fill(SMTP_USER)
    agent.locator("#link-sender_name").fill(SENDER_NAME)
    agent.locator("#link-sender_email").fill(SENDER_EMAIL)
    agent.locator("#link-note").fill("These are the local test mailbox settings")
    expect(agent.locator("#share-links input[name=password]")).to_have_count(0)
    agent.locator("#create-share-link").click()
    created = agent.locator("#share-links tr[data-state=active]")
    expect(created).to_have_count(1)
    expect(created).to_contain_text("Step 3 · SMTP settings")
    link = created.locator("input.share-url").input_value()
    assert re.fullmatch(re.escape(live.url("/share/")) + r"[\w.-]+", link), link
    agent_pages.append(agent.content())
    shot(agent, artifacts, "support-02-link-created.png")

    # The merchant opens it: step 3 with the suggestion, sent without a Referer-worthy policy.
    with merchant.expect_response(lambda r: "/share/" in r.url) as shared:
        landing = merchant.goto(link)
    assert shared.value.headers["referrer-policy"] == "no-referrer"
    assert landing.url == live.url("/wizard/smtp") and landing.headers["referrer-policy"] == "no-referrer"
    panel = merchant.locator("#share-suggestion")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("These are the local test mailbox settings")
    expect(panel.locator("dd[data-field=username]")).to_have_text(SMTP_USER)
    expect(panel.locator("dd[data-field=sender_email]")).to_have_text(SENDER_EMAIL)
    expect(merchant.get_by_label("Username")).to_have_value(OWNER)  # not applied yet
    shot(merchant, artifacts, "support-03-suggestion.png")
    # Dismiss first: the panel goes, nothing changes; the link still opens it again.
    merchant.locator("#dismiss-suggestion").click()
    expect(merchant.locator("#share-suggestion")).to_have_count(0)
    expect(merchant.get_by_label("Username")).to_have_value(OWNER)
    merchant.goto(link)
    expect(merchant).to_have_url(url_is(live, "/wizard/smtp"))
    expect(panel).to_be_visible()
    merchant.locator("#accept-suggestion").click()
    expect(merchant.locator("#share-suggestion")).to_have_count(0)
    expect(merchant).to_have_url(url_is(live, "/wizard/smtp"))
    expect(merchant.get_by_label("Username")).to_have_value(SMTP_USER)
    expect(merchant.get_by_label("Sender Name")).to_have_value(SENDER_NAME)
    expect(merchant.get_by_label("Sender Email")).to_have_value(SENDER_EMAIL)
    expect(merchant.get_by_label("Port", exact=True)).to_have_value(str(live.mailbox_port))
    expect(merchant.locator("#password")).to_have_value("")

    # The password is the merchant's to type; then test and save as usual.
    merchant.locator("#password").fill(SMTP_SECRET)
    merchant.get_by_role("button", name="Save draft and continue to test").click()
    expect(merchant).to_have_url(url_is(live, "/wizard/test"))
    merchant.get_by_role("button", name="Test connection").click()
    expect(merchant.locator("#result[data-category=ok]")).to_be_visible()
    merchant.locator("#save-button").click()
    expect(merchant).to_have_url(url_is(live, "/wizard/send"))
    shot(merchant, artifacts, "support-04-saved.png")

    # The agent sees the result, the opening, and never the password.
    agent.reload()
    expect(agent.locator("#result[data-category=ok]").first).to_be_visible()
    expect(agent.locator("#share-links tr[data-state=active]")).to_contain_text("opened 2 times")
    expect(agent.locator("#saved-settings + dl")).to_contain_text("saved, encrypted")
    agent_pages.append(agent.content())
    shot(agent, artifacts, "support-05-store-after.png")

    # The owner's audit log, newest first.
    merchant.goto(live.url("/audit"))
    rows = merchant.locator("table.audit-log tbody tr")
    actions = [rows.nth(i).get_attribute("data-action") for i in range(rows.count())]
    assert "share_link.created" in actions and "share_link.opened" in actions
    assert actions.index("share_link.opened") < actions.index("share_link.created")
    expect(merchant.locator("tr[data-action='share_link.created']")).to_contain_text(AGENT)
    assert actions.count("share_link.opened") == 2
    expect(merchant.locator("tr[data-action='share_link.opened']").first).to_contain_text(OWNER)
    # Recorded by the wizard's own views once they are wired: checked whenever present.
    if "settings.tested" in actions:
        assert actions.index("settings.tested") < actions.index("share_link.opened")
    if "settings.saved" in actions:
        assert actions.index("settings.saved") < actions.index("share_link.opened")
        if "settings.tested" in actions:
            assert actions.index("settings.saved") < actions.index("settings.tested")
    assert SMTP_SECRET not in merchant.content()
    shot(merchant, artifacts, "support-06-audit.png")

    assert len(agent_pages) == 4
    for html in agent_pages:
        assert SMTP_SECRET not in html
    assert new_page.problems.items == [], "\n".join(new_page.problems.items)
