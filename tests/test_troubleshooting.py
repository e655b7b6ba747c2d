"""The troubleshooting page: the latest test with its diagnosis, history, help topics."""
from __future__ import annotations

from wizard.catalogue.help import help_topics, topic_for_category
from wizard.smtp.diagnosis import CATEGORIES

from conftest import run_connection_test
from helpers import prepare

ANCHORS = ["test-connection-fails", "auth-failed", "sender-rejected", "spam", "sender-vs-username", "best-practices"]


def test_help_topics_have_stable_anchors_and_are_public(client):
    page = client.get("/troubleshooting").get_data(as_text=True)
    for anchor in ANCHORS:
        assert f'id="{anchor}"' in page
    assert "apikey" in page and "AKIA" in page  # the Sender Email vs Username examples
    assert "Sign in" in page


def test_every_failure_category_links_to_a_topic():
    anchors = {t.anchor for t in help_topics()}
    for category in CATEGORIES:
        assert topic_for_category(category) in anchors
    assert topic_for_category("auth_failed") == "auth-failed"
    assert topic_for_category("app_password_required") == "auth-failed"


def test_latest_failure_history_and_link_from_the_wizard(merchant, starttls_server):
    prepare(merchant, starttls_server)
    run_connection_test(merchant)
    merchant.post("/wizard/smtp", {"host": "localhost", "port": str(starttls_server.port), "security": "starttls",
                                   "sender_name": "Blue Fern", "sender_email": "merchant@bluefern.example.com",
                                   "username": "merchant@bluefern.example.com", "password": "wrong"})
    failed = run_connection_test(merchant).get_data(as_text=True)
    assert 'href="/troubleshooting#auth-failed"' in failed
    page = merchant.get("/troubleshooting").get_data(as_text=True)
    latest = page.split('id="latest-test"', 1)[1].split('id="history"', 1)[0]
    assert 'data-category="auth_failed"' in latest
    assert "Signing in" in latest and "535" in latest
    assert "AUTH PLAIN [redacted]" in latest
    history = page.split('id="history"', 1)[1].split('id="help"', 1)[0]
    assert "passed" in history


def test_deliverability_check_for_the_sender_domain(app, merchant, starttls_server):
    from dns_server import DnsTestServer

    prepare(merchant, starttls_server, sender_email="support@bluefern.example.com")
    zone = {"bluefern.example.com": {"TXT": ["v=spf1 include:_spf.google.com ~all"]},
            "_spf.google.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 ~all"]},
            "_dmarc.bluefern.example.com": {"TXT": ["v=DMARC1; p=quarantine"]}}
    with DnsTestServer(zone) as dns:
        app.config["DNS_NAMESERVER"] = dns.nameserver
        fragment = merchant.get("/troubleshooting/deliverability", htmx=True).get_data(as_text=True)
        page = merchant.get("/troubleshooting?check=dns").get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="deliverability"')
    # "Other SMTP" has no known include: a valid SPF record passes, DMARC is read.
    assert 'data-check="spf" data-status="pass"' in fragment
    assert 'data-check="dmarc" data-status="present"' in fragment and "quarantine" in fragment
    assert 'data-check="spf"' in page and "<html" in page
    assert merchant.get("/troubleshooting/deliverability").headers["Location"].endswith("check=dns#deliverability")
