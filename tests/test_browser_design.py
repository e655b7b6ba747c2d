"""The design pass in Chromium at 1280 and 390 px: the compact header while setting
up, the SES region only with SES (with and without JavaScript), the provider cards'
preset on one line, the full navigation after set-up and, at 390 px, a Menu button
instead of wrapped lines (a <details> disclosure: no script needed). Screenshots go
to ``tests/artifacts/design-*.png``; step 3 with a live Fix at 1280 px is also saved as
the README's ``docs/screenshot.png``, so it always shows the current design."""
from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import (
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

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "mobile": {"width": 390, "height": 844}}
README_SHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"


def set_up_and_send(page, live, readme_shot: bool = False) -> None:
    """Steps 2 to 5 with the local test mailbox, ending with a delivered test email. With
    ``readme_shot``, step 3 with a live Fix and its one-click button becomes the README's picture."""
    choose_local_mailbox(page)
    expect(step(page, "smtp")).to_be_visible()
    fill_smtp(page)
    if readme_shot:
        page.get_by_label("Port", exact=True).fill("465")
        expect(page.locator("#feedback-port button[data-fix=port_security_mismatch]")).to_be_visible()
        bottom = page.locator("#field-port").bounding_box()
        top = page.evaluate("window.scrollY")
        page.screenshot(path=str(README_SHOT), caret="initial", full_page=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": bottom["y"] + top + bottom["height"] + 24})
        page.get_by_label("Port", exact=True).fill(str(live.mailbox_port))
        expect(page.locator("#feedback-port .msg")).to_have_count(0)
        page.locator("#password").fill(SMTP_SECRET)  # another port is another server: typed again
    page.get_by_role("button", name="Save draft and continue to test").click()
    expect(step(page, "test")).to_be_visible()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#result[data-status=finished]")).to_have_attribute("data-category", "ok")
    page.locator("#save-button").click()
    expect(step(page, "send")).to_be_visible()
    page.get_by_role("button", name="Send test email").click()
    expect(page.locator("#result")).to_have_attribute("data-category", "ok")


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_header_cards_and_home_at_each_width(live, new_page, artifacts, size):
    _context, page = new_page()
    page.set_viewport_size(VIEWPORTS[size])
    name = f"design-{size}"
    sign_up(page, live, f"Juniper Soap {size}", f"owner-{size}@juniper.example.com")

    # Setting up: brand, the set-up and the account menu; no main navigation yet.
    top = page.locator("header.topbar")
    expect(top).to_have_class("topbar topbar-compact")
    expect(top.get_by_role("link", name="Inbox")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Set-up progress")).to_be_visible()
    account = top.locator("details.account-menu")
    account.locator("summary").click()
    expect(account.get_by_role("button", name="Sign out")).to_be_visible()
    shot(page, artifacts, f"{name}-1-setting-up.png")
    account.locator("summary").click()
    expect(account.get_by_role("button", name="Sign out")).to_be_hidden()
    # Menus close as menus do: Escape (focus back on the button) and a click elsewhere.
    account.locator("summary").click()
    expect(account.get_by_role("button", name="Sign out")).to_be_visible()
    page.keyboard.press("Escape")
    expect(account.get_by_role("button", name="Sign out")).to_be_hidden()
    assert account.locator("summary").evaluate("el => el === document.activeElement")
    account.locator("summary").click()
    expect(account.get_by_role("button", name="Sign out")).to_be_visible()
    page.mouse.click(8, VIEWPORTS[size]["height"] - 8)  # the page's bottom-left corner, outside the menu
    expect(account.get_by_role("button", name="Sign out")).to_be_hidden()

    complete_pre_chat_form(page)
    expect(step(page, "provider")).to_be_visible()
    # The SES region only with SES; the preset on one line; "What to prepare" folded and neutral.
    region = page.get_by_label("Amazon SES region")
    expect(region).to_be_hidden()
    gmail = page.locator(".provider-card[data-provider=gmail]")
    expect(gmail.locator(".monogram")).to_have_text("G")
    preset = gmail.locator(".preset")
    expect(preset).to_have_text("smtp.gmail.com · 587 · STARTTLS")
    box = preset.bounding_box()
    line = preset.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    assert box["height"] < line * 1.5, box  # one line
    prepare = gmail.locator("details.prepare-details")
    expect(prepare.locator("summary")).to_have_text("What to prepare")
    assert prepare.locator("summary").evaluate("el => getComputedStyle(el).textTransform") == "none"
    expect(prepare.locator("ul.prepare")).to_be_hidden()
    page.locator("input[name=provider][value=ses]").check()
    expect(region).to_be_visible()
    shot(page, artifacts, f"{name}-2-provider-ses.png")
    page.locator("input[name=provider][value=gmail]").check()
    expect(region).to_be_hidden()
    shot(page, artifacts, f"{name}-3-provider.png")

    set_up_and_send(page, live, readme_shot=size == "desktop")
    # Set up: home answers "is my email working?" under the full navigation.
    page.goto(live.url("/"))
    expect(page).to_have_url(url_is(live, "/"))
    expect(page.locator("#email-health")).to_have_attribute("data-state", "tested")
    expect(page.get_by_role("heading", name="Your email is working")).to_be_visible()
    expect(page.locator("#home-connection")).to_contain_text("Accepted by the server")
    expect(page.locator("#home-outbox")).to_contain_text("failed this week")
    expect(page.locator("#next-step").get_by_role("link", name="Open the inbox")).to_be_visible()
    menu = top.locator("details.nav-menu")
    if size == "desktop":
        expect(top.locator("nav.nav-wide").get_by_role("link", name="Inbox")).to_be_visible()
        expect(menu).to_be_hidden()
        shot(page, artifacts, f"{name}-4-home.png")
    else:
        # One row: the links sit behind the Menu button, not wrapped under the brand.
        expect(top.locator("nav.nav-wide")).to_be_hidden()
        assert top.bounding_box()["height"] < 80
        expect(menu.get_by_role("link", name="Inbox")).to_be_hidden()
        shot(page, artifacts, f"{name}-4-home.png")
        menu.locator("summary").click()
        expect(menu.get_by_role("link", name="Inbox")).to_be_visible()
        shot(page, artifacts, f"{name}-5-menu-open.png")
        page.keyboard.press("Escape")
        expect(menu.get_by_role("link", name="Inbox")).to_be_hidden()
        menu.locator("summary").click()
        menu.get_by_role("link", name="Inbox").click()
        expect(page).to_have_url(url_is(live, "/inbox"))
    assert new_page.problems.items == []


def test_ses_region_without_javascript(live, new_page, artifacts):
    _context, page = new_page(java_script_enabled=False)
    page.set_viewport_size(VIEWPORTS["mobile"])
    sign_up(page, live, "Juniper Soap nojs", "owner-nojs@juniper.example.com")
    complete_pre_chat_form(page)
    region = page.get_by_label("Amazon SES region")
    expect(region).to_be_hidden()
    page.locator("input[name=provider][value=ses]").check()
    expect(region).to_be_visible()  # CSS alone shows it
    page.get_by_role("button", name="Use this provider").click()
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(page.get_by_label("SMTP host")).to_have_value("email-smtp.us-east-1.amazonaws.com")
    shot(page, artifacts, "design-nojs-smtp.png")
    assert new_page.problems.items == []
