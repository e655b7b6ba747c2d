"""The home page a returning merchant lands on: is my email working? Its states
(tested, untested, reconnect needed, failing), the last test and send, the outbox
(queued, failed this week, held) and the one next thing to do — plus the header:
compact while setting up, the full navigation (and the mobile Menu) after.
Real SMTP peers on loopback, a real database; the held and reconnect rows are
written as the outbox worker and the sign-in refresh write them."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session, select
from test_outbox import drain, queue_email

from wizard.models import OAuthGrant, SmtpSettings, utcnow
from wizard.models.outbox import FAILED, OutboxEmail
from wizard.setup.sign_in import HELD_FOR_SIGN_IN, HELD_FOR_TOKEN, RECONNECT_NEEDED
from wizard.smtp.diagnosis import category_title

from conftest import SMTP_PASSWORD, SMTP_USERNAME, run_connection_test, sign_up
from helpers import prepare, store_id_of, support_agent

OWNER = "owner@bluefern.example.com"


def header(page: str) -> str:
    return page.split("<header", 1)[1].split("</header>", 1)[0]


def health_of(page: str) -> dict:
    """What the home page says: the state, the next step, the three outbox counts."""
    counts = dict(re.findall(r'data-count="(\w+)"[^>]*><span class="count">(\d+)</span>', page))
    return {"state": re.search(r'id="email-health" data-state="(\w+)"', page).group(1),
            "next": re.search(r'data-next="(\w+)"', page).group(1),
            **{name: int(value) for name, value in counts.items()}}


def save_tested(merchant, server) -> None:
    prepare(merchant, server)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302


def test_still_setting_up_the_wizard_continues_under_a_compact_header(merchant):
    landing = merchant.get("/")
    assert landing.status_code == 302 and landing.headers["Location"] == "/wizard"
    page = merchant.get("/wizard/pre-chat-form").get_data(as_text=True)
    top = header(page)
    assert "topbar-compact" in top and "Email set-up" in top
    assert f"Signed in as <strong>{OWNER}</strong>" in top and "Sign out" in top  # the account menu
    assert 'href="/inbox"' not in top and 'href="/contacts"' not in top and ">Menu<" not in top
    assert 'aria-label="Set-up progress"' in page  # the steps, right under it


def test_tested_settings_the_home_page_says_it_works_and_the_full_navigation_appears(merchant, starttls_server):
    save_tested(merchant, starttls_server)
    page = merchant.get("/").get_data(as_text=True)
    assert health_of(page) == {"state": "tested", "next": "send_test_email", "queued": 0, "failed": 0, "held": 0}
    assert "Your email is working" in page
    assert 'id="home-connection"' in page and "Passed" in page and "Nothing sent yet" in page
    top = header(page)
    assert "topbar-compact" not in top
    wide = top.split('class="nav-wide"', 1)[1].split("</nav>", 1)[0]
    for link in ('href="/inbox"', 'href="/contacts"', 'href="/troubleshooting"', 'href="/wizard"'):
        assert link in wide
    assert ">Menu<" in top  # the same links in the mobile menu

    sent = merchant.post("/wizard/send", {"recipient": "customer@example.com"})
    assert sent.status_code in (200, 302)
    page = merchant.get("/").get_data(as_text=True)
    assert health_of(page)["next"] == "follow_up"
    assert "Accepted by the server" in page and "Test email to customer@example.com" in page


def test_signing_in_again_lands_on_the_home_page(app, merchant, starttls_server):
    from helpers import sign_in

    save_tested(merchant, starttls_server)
    other = app.test_client()
    response = sign_in(other, OWNER, "merchant-pass-1")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert 'id="email-health"' in other.get("/").get_data(as_text=True)


def test_untested_settings_say_so_and_ask_for_a_test(merchant, starttls_server):
    prepare(merchant, starttls_server, password="wrong-one")
    run_connection_test(merchant)
    assert merchant.post("/wizard/save", {"confirm_untested": "yes"}).status_code == 302
    page = merchant.get("/").get_data(as_text=True)
    assert health_of(page) == {"state": "untested", "next": "test", "queued": 0, "failed": 0, "held": 0}
    assert "saved but not tested" in page
    # The failed test in plain words, never its code.
    assert category_title("auth_failed") in page and "auth_failed" not in page.split('id="home-connection"')[1]


def test_reconnect_needed_holds_the_mail_and_asks_to_sign_in_again(app, merchant, starttls_server):
    save_tested(merchant, starttls_server)
    store_id = store_id_of(app, OWNER)
    queue_email(app, store_id, "held-1")
    with Session(app.extensions["db_engine"]) as session:
        grant = OAuthGrant(store_id=store_id, provider="google", account_email=SMTP_USERNAME,
                           access_token_encrypted="", token_binding="", expires_at=utcnow(),
                           status=RECONNECT_NEEDED, problem="invalid_grant")
        session.add(grant)
        session.flush()
        saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store_id)).one()
        saved.auth_method, saved.oauth_grant_id = "xoauth2", grant.id
        email = session.exec(select(OutboxEmail).where(OutboxEmail.store_id == store_id)).one()
        email.last_category = HELD_FOR_SIGN_IN  # as the worker leaves it
        session.add_all([saved, email])
        session.commit()
    page = merchant.get("/").get_data(as_text=True)
    assert health_of(page) == {"state": "reconnect_needed", "next": "reconnect", "queued": 0, "failed": 0, "held": 1}
    assert f"sign-in for {SMTP_USERNAME}" in page and "Sign in again" in page


def test_held_for_the_provider_is_counted_and_explained(app, merchant, starttls_server):
    save_tested(merchant, starttls_server)
    store_id = store_id_of(app, OWNER)
    queue_email(app, store_id, "waiting-1")
    queue_email(app, store_id, "held-2")
    with Session(app.extensions["db_engine"]) as session:
        email = session.exec(select(OutboxEmail).where(OutboxEmail.idempotency_key == "held-2")).one()
        email.last_category = HELD_FOR_TOKEN
        session.add(email)
        session.commit()
    page = merchant.get("/").get_data(as_text=True)
    assert health_of(page) == {"state": "tested", "next": "held", "queued": 1, "failed": 0, "held": 1}


def test_an_email_that_failed_this_week_turns_the_page_to_needs_attention(app, merchant, certs):
    from smtp_servers import start_test_server

    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           data_reply="554 5.7.1 Message rejected as spam") as server:
        save_tested(merchant, server)
        store_id = store_id_of(app, OWNER)
        queue_email(app, store_id, "rejected-1")
        drain(app)
    with Session(app.extensions["db_engine"]) as session:
        failed = session.exec(select(OutboxEmail).where(OutboxEmail.store_id == store_id)).one()
        assert failed.status == FAILED
        # An older failure is outside "this week".
        session.add(OutboxEmail(store_id=store_id, kind="follow_up", idempotency_key="old-1", message_id="<old-1@x>",
                                sender_name="B", sender_email=SMTP_USERNAME, recipient="old@example.com",
                                subject="Old", body_text="Old", body_html="", status=FAILED,
                                created_at=utcnow() - timedelta(days=8)))
        session.commit()
    page = merchant.get("/").get_data(as_text=True)
    state = health_of(page)
    assert state["state"] == "failing" and state["failed"] == 1
    assert state["next"] == "last_send_failed"
    assert "Your email needs attention" in page and "Email to visitor@example.com" in page


def test_support_agents_and_visitors_do_not_get_the_merchant_home(app, client):
    assert "Create account" in client.get("/").get_data(as_text=True)
    agent = support_agent(app)
    response = agent.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/support"


def test_troubleshooting_starts_with_the_one_thing_wrong(merchant, starttls_server):
    prepare(merchant, starttls_server, password="wrong-one")
    run_connection_test(merchant)
    page = merchant.get("/troubleshooting").get_data(as_text=True)
    first = page.split('id="headline"', 1)[1].split("</div>", 1)[0]
    assert 'data-state="failing"' in page and category_title("auth_failed") in first
    assert page.index('id="headline"') < page.index('id="latest-test"')
    # The evidence folded below the headline, and the help topic for the failure opened.
    assert '<details class="section" id="latest-test-details">' in page
    assert re.search(r'<details class="section help-topic" open>\s*<summary>[^<]+</summary>\s*<section id="auth-failed"',
                     page)


def test_support_view_names_the_provider_not_its_key(app, merchant, starttls_server):
    save_tested(merchant, starttls_server)
    agent = support_agent(app)
    page = agent.get(f"/support/stores/{store_id_of(app, OWNER)}").get_data(as_text=True)
    assert "<dt>Provider</dt><dd>Other SMTP provider</dd>" in page
    assert "<dd>custom</dd>" not in page
    assert page.index('id="headline"') < page.index('id="saved-settings"')
    assert "Your email is working" in page.split('id="headline"', 1)[1].split("</div>", 1)[0]


def test_a_second_store_sees_only_its_own_health(app, client, starttls_server):
    first = sign_up(client)
    save_tested(first, starttls_server)
    other = sign_up(app.test_client(), email="owner@other.example.com", store="Other Shop")
    assert other.get("/").headers["Location"] == "/wizard"
