"""Support agents: the CLI that creates them, who may open /support, store search,
and the read-only support view (history and transcripts, never the password)."""
from __future__ import annotations

import re

import pytest
from flask import render_template
from sqlmodel import Session, select

from wizard.commands.support_agent import PASSWORD_VARIABLE, register
from wizard.models import AuditEvent, ConnectionTest, Member, SendLog

from conftest import SMTP_PASSWORD, Merchant, run_connection_test, sign_up, smtp_form
from helpers import AGENT_EMAIL, AGENT_PASSWORD, add_member, all_bodies, prepare, sign_in, store_id_of, support_agent

# -- helpers (the other support test modules import them) -------------------------------


# -- the command --------------------------------------------------------------------------

def test_create_support_agent_command(app):
    register(app)
    runner = app.test_cli_runner()
    made = runner.invoke(args=["create-support-agent", "Agent@HeiChat.example.com"],
                         env={PASSWORD_VARIABLE: AGENT_PASSWORD})
    assert made.exit_code == 0, made.output
    assert "agent@heichat.example.com" in made.output
    with Session(app.extensions["db_engine"]) as db:
        member = db.exec(select(Member).where(Member.email == "agent@heichat.example.com")).one()
        assert member.role == "support" and member.store_id is None
        assert AGENT_PASSWORD not in member.password_hash

    taken = runner.invoke(args=["create-support-agent", "agent@heichat.example.com"], env={PASSWORD_VARIABLE: AGENT_PASSWORD})
    assert taken.exit_code == 2 and "already exists" in taken.output
    invalid = runner.invoke(args=["create-support-agent", "not-an-address"], env={PASSWORD_VARIABLE: AGENT_PASSWORD})
    assert invalid.exit_code == 2 and "not a valid email address" in invalid.output
    short = runner.invoke(args=["create-support-agent", "short@heichat.example.com"], env={PASSWORD_VARIABLE: "abc"})
    assert short.exit_code == 2 and "8 to 200 characters" in short.output

    # Without the variable: a hidden prompt, asked twice.
    prompted = runner.invoke(args=["create-support-agent", "second@heichat.example.com"], env={PASSWORD_VARIABLE: ""},
                             input="another-pass-2\nanother-pass-2\n")
    assert prompted.exit_code == 0, prompted.output
    assert "another-pass-2" not in prompted.output
    client = app.test_client()
    assert sign_in(client, "second@heichat.example.com", "another-pass-2").status_code == 302
    assert client.get("/support").status_code == 200


# -- who may open what ------------------------------------------------------------------------

SUPPORT_PAGES = ["/support", "/support?q=fern", "/support/stores/{store}", "/support/tests/1",
                 "/support/stores/{store}/deliverability"]


@pytest.mark.parametrize("role", ["owner", "staff"])
def test_store_members_get_403_on_every_support_page(app, client, merchant, starttls_server, role):
    prepare(merchant, starttls_server)
    run_connection_test(merchant)
    store = store_id_of(app, merchant.email)
    person = merchant
    if role == "staff":
        add_member(app, "staff@bluefern.example.com", "staff-pass-1", "staff", store)
        staff_client = app.test_client()
        assert sign_in(staff_client, "staff@bluefern.example.com", "staff-pass-1").status_code == 302
        person = Merchant(staff_client, "staff@bluefern.example.com")
        person.get("/wizard/smtp")
    for url in SUPPORT_PAGES:
        assert person.get(url.format(store=store)).status_code == 403, url
    assert person.post(f"/support/stores/{store}/links", {"target": "smtp"}).status_code == 403


def test_support_agents_get_403_on_store_member_pages(app, merchant):
    agent = support_agent(app)
    for url in ["/wizard", "/wizard/smtp", "/wizard/test", "/contacts", "/troubleshooting/deliverability", "/audit"]:
        assert agent.get(url).status_code == 403, url
    assert agent.post("/wizard/smtp", {"host": "smtp.example.com", "port": "587"}).status_code == 403
    assert agent.post("/share/suggestion/accept").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/support/tests/7")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signin?next=")


# -- search -------------------------------------------------------------------------------------

def test_search_by_store_name_slug_or_member_email(app, client):
    sign_up(client, "owner@bluefern.example.com", "Blue Fern Shop")
    sign_up(app.test_client(), "maria@redoak.example.com", "Red Oak Candles")
    agent = support_agent(app)

    by_name = agent.get("/support?q=fern").get_data(as_text=True)
    assert "Blue Fern Shop" in by_name and "Red Oak Candles" not in by_name
    by_slug = agent.get("/support?q=red-oak").get_data(as_text=True)
    assert "Red Oak Candles" in by_slug and "Blue Fern Shop" not in by_slug
    by_email = agent.get("/support?q=MARIA@redoak").get_data(as_text=True)
    assert "Red Oak Candles" in by_email and "maria@redoak.example.com" in by_email
    # LIKE wildcards are searched for literally.
    assert "No store matches" in agent.get("/support?q=%25").get_data(as_text=True)
    everything = agent.get("/support").get_data(as_text=True)
    assert "Blue Fern Shop" in everything and "Red Oak Candles" in everything

    live = agent.get("/support?q=fern", htmx=True)
    fragment = live.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="support-results"') and "<html" not in fragment
    assert "HX-Request" in live.headers["Vary"]
    store = store_id_of(app, "owner@bluefern.example.com")
    assert f'href="/support/stores/{store}"' in fragment


# -- the support view ----------------------------------------------------------------------------

def test_support_view_shows_history_and_transcripts_never_the_password(app, merchant, starttls_server):
    prepare(merchant, starttls_server, password="wrong-one")
    failed = run_connection_test(merchant).get_data(as_text=True)
    assert 'data-category="auth_failed"' in failed
    merchant.post("/wizard/smtp", smtp_form(starttls_server))
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302
    assert merchant.post("/wizard/send", {"recipient": "customer@example.com"}).status_code == 302
    store = store_id_of(app, merchant.email)
    with Session(app.extensions["db_engine"]) as db:
        failed_test = db.exec(select(ConnectionTest).where(ConnectionTest.ok.is_(False))).one()
        sent = db.exec(select(SendLog)).one()

    agent = support_agent(app)
    page = agent.get(f"/support/stores/{store}").get_data(as_text=True)
    saved = page.split('id="saved-settings"', 1)[1].split('id="draft"', 1)[0]
    assert "saved, encrypted" in saved and "localhost : " in saved and "tested" in saved
    draft = page.split('id="draft"', 1)[1].split('id="latest-test"', 1)[0]
    assert "saved, encrypted" in draft and "merchant@bluefern.example.com" in draft
    latest = page.split('id="latest-test"', 1)[1].split('id="test-history"', 1)[0]
    assert 'data-category="ok"' in latest and "AUTH PLAIN [redacted]" in latest
    assert 'id="apply-suggestion"' not in page  # no button acting on the merchant's wizard
    history = page.split('id="test-history"', 1)[1].split('id="latest-send"', 1)[0]
    assert "auth_failed" in history and "passed" in history and history.count("[redacted]") >= 2
    sends = page.split('id="send-history"', 1)[1].split('id="deliverability-check"', 1)[0]
    assert "customer@example.com" in sends and sent.queue_id in sends and "DATA" in sends
    assert f'hx-get="/support/stores/{store}/deliverability"' in page

    # The exact failed test, as the merchant's "send this to support" link opens it.
    focused = agent.get(f"/support/tests/{failed_test.id}").get_data(as_text=True)
    focus = focused.split('id="focus-test"', 1)[1].split('id="saved-settings"', 1)[0]
    assert f"Connection test #{failed_test.id}" in focus
    assert 'data-category="auth_failed"' in focus and "535" in focus and "[redacted]" in focus
    assert agent.get("/support/tests/999999").status_code == 404
    assert agent.get("/support/stores/999999").status_code == 404

    assert SMTP_PASSWORD not in all_bodies(agent)
    assert "wrong-one" not in all_bodies(agent)
    with Session(app.extensions["db_engine"]) as db:
        opened = db.exec(select(AuditEvent).where(AuditEvent.action == "support_view.opened")
                         .order_by(AuditEvent.id)).all()
    assert [e.detail.get("test_id") for e in opened] == [None, failed_test.id]
    assert {e.store_id for e in opened} == {store} and opened[0].actor_email == AGENT_EMAIL


def test_support_deliverability_check_uses_its_own_endpoint(app, merchant, starttls_server):
    from dns_server import DnsTestServer

    prepare(merchant, starttls_server, sender_email="support@bluefern.example.com")
    store = store_id_of(app, merchant.email)
    agent = support_agent(app)
    zone = {"bluefern.example.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 ~all"]},
            "_dmarc.bluefern.example.com": {"TXT": ["v=DMARC1; p=reject"]}}
    with DnsTestServer(zone) as dns:
        app.config["DNS_NAMESERVER"] = dns.nameserver
        fragment = agent.get(f"/support/stores/{store}/deliverability", htmx=True).get_data(as_text=True)
        plain = agent.get(f"/support/stores/{store}/deliverability")
        page = agent.get(f"/support/stores/{store}?check=dns").get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="deliverability"')
    assert 'data-check="spf" data-status="pass"' in fragment and "reject" in fragment
    assert plain.status_code == 302
    assert plain.headers["Location"] == f"/support/stores/{store}?check=dns#deliverability"
    assert 'data-check="dmarc" data-status="present"' in page
    # The merchant's own check still points at the troubleshooting endpoints.
    own = merchant.get("/troubleshooting").get_data(as_text=True)
    assert 'hx-get="/troubleshooting/deliverability"' in own
    assert 'href="/troubleshooting?check=dns#deliverability"' in own


# -- "send this to support" -------------------------------------------------------------------------

def test_send_to_support_partial_only_for_failed_finished_tests(app, merchant, starttls_server):
    prepare(merchant, starttls_server, password="wrong-one")
    run_connection_test(merchant)
    with Session(app.extensions["db_engine"]) as db:
        failed = db.exec(select(ConnectionTest)).one()
    ok = ConnectionTest(id=5, store_id=1, provider="custom", host="h", port=587, security="starttls", username="u",
                        sender_email="s@example.com", fingerprint="f", ok=True, status="finished")
    running = ConnectionTest(id=6, store_id=1, provider="custom", host="h", port=587, security="starttls", username="u",
                             sender_email="s@example.com", fingerprint="f", ok=False, status="running")
    send = SendLog(id=7, store_id=1, sender="s", recipient="r@example.com", subject="x", message_id="m", ok=False,
                   stage="data", category="sender_rejected")
    with app.test_request_context("/wizard/test", base_url="https://wizard.heichat.example"):
        shown = render_template("support/_send_to_support.html", record=failed)
        hidden = [render_template("support/_send_to_support.html", record=r) for r in (ok, running, None)]
        # A failed test email (issue 13): the same help as a failed test, pointing at the store's view.
        for_send = render_template("support/_send_to_support.html", record=send)
    assert f'value="https://wizard.heichat.example/support/stores/{send.store_id}"' in for_send
    assert f'value="https://wizard.heichat.example/support/tests/{failed.id}"' in shown
    assert "readonly" in shown and "Send this to HeiChat support" in shown
    assert all(not html.strip() for html in hidden)
    # Once the lead includes it in the result, the merchant sees it on the failure.
    page = merchant.get("/wizard/test").get_data(as_text=True)
    if "send-to-support" in page:
        assert f"/support/tests/{failed.id}" in page
    # The address works for support only.
    assert merchant.get(f"/support/tests/{failed.id}").status_code == 403
    agent = support_agent(app)
    assert re.search(r'data-category="auth_failed"', agent.get(f"/support/tests/{failed.id}").get_data(as_text=True))
