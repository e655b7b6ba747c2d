"""Issue 9, item 2: IPv6 forms that carry a local IPv4 address, or reach local
networks, are refused by every path of the web app that connects anywhere —
Test Connection, the test email, the outbox and Find my settings — before a
single packet is sent.

The app here has the production policy (no network allowed beyond the public
internet, the default ports); the SMTP host is a name that the tests' own DNS
server resolves to the form under test.
"""
from __future__ import annotations

import ipaddress

import pytest
from cryptography.fernet import Fernet
from test_inbox import compose_post, open_compose

from wizard import create_app
from wizard.smtp.address_policy import AddressPolicy, embedded_ipv4

from conftest import SMTP_PASSWORD, SMTP_USERNAME, run_connection_test, sign_up
from dns_server import DnsTestServer
from helpers import choose_other, conversation_row, enable_prechat, set_last_seen, start_chat

LOOPBACK_INSIDE = "an IPv6 form of 127.0.0.1, which is a loopback address"
# name -> (address the host resolves to, what the refusal says)
FORMS = {
    "ipv4-mapped": ("::ffff:127.0.0.1", LOOPBACK_INSIDE),
    "ipv4-compatible": ("::127.0.0.1", LOOPBACK_INSIDE),
    "ipv4-translated": ("::ffff:0:127.0.0.1", LOOPBACK_INSIDE),
    "nat64": ("64:ff9b::7f00:1", LOOPBACK_INSIDE),
    "nat64-metadata": ("64:ff9b::a9fe:a9fe", "an IPv6 form of 169.254.169.254, which is a link-local address"),
    "nat64-local-use": ("64:ff9b:1::808:808", "a local-use NAT64 address"),
    "6to4": ("2002:7f00:1::1", LOOPBACK_INSIDE),
    "6to4-private": ("2002:a00:1::1", "an IPv6 form of 10.0.0.1, which is a private network address"),
    # Teredo: a public server (65.54.227.120), the client 127.0.0.1 obfuscated (bits inverted).
    "teredo": ("2001:0:4136:e378:8000:63bf:80ff:fffe", LOOPBACK_INSIDE),
    "site-local": ("fec0::1", "a site-local (private) address"),
}
REFUSED = "HeiChat will not connect to this address"


def host_for(form: str) -> str:
    return f"smtp.{form}.forms.example"


@pytest.fixture(scope="module")
def forms_dns():
    zone = {host_for(name): {"AAAA": [address]} for name, (address, _why) in FORMS.items()}
    with DnsTestServer(zone) as server:
        yield server


@pytest.fixture
def strict_app(tmp_path, certs, database_url, forms_dns):
    """The production policy: public addresses only, ports 25/465/587/2525."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url,
                      "SECRET_KEY": "k", "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                      "SMTP_TIMEOUT": 2.0, "SMTP_GREETING_TIMEOUT": 1.0, "DEV_MAILBOX": False,
                      "DNS_NAMESERVER": forms_dns.nameserver, "DNS_TIMEOUT": 1.0,
                      "DETECT_PORTS": (587,), "DETECT_TIMEOUT": 2.0})
    yield app
    app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("form", FORMS)
def test_every_connecting_path_refuses_the_form(strict_app, form):
    _address, why = FORMS[form]
    host = host_for(form)
    merchant = sign_up(strict_app.test_client())
    enable_prechat(merchant)
    choose_other(merchant)
    settings = {"host": host, "port": "587", "security": "starttls", "sender_name": "Blue Fern",
                "sender_email": SMTP_USERNAME, "username": SMTP_USERNAME, "password": SMTP_PASSWORD}
    assert merchant.post("/wizard/smtp", settings).status_code == 302

    # Test Connection.
    page = run_connection_test(merchant).get_data(as_text=True)
    assert REFUSED in page and why in page

    # Find my settings (no credentials; still nothing may be knocked on).
    found = merchant.post("/wizard/smtp/detect", settings, htmx=True).get_data(as_text=True)
    assert REFUSED in found and why in found

    # The test email, from settings saved without a passing test.
    assert merchant.post("/wizard/save", {"confirm_untested": "yes"}).status_code == 302
    sent = merchant.post("/wizard/send", {"recipient": "customer@example.com"})
    page = merchant.get(sent.headers["Location"]).get_data(as_text=True)
    assert REFUSED in page and why in page

    # The outbox: a follow-up to a visitor, delivered by the worker command.
    start_chat(strict_app)
    conversation_id = conversation_row(strict_app).id
    set_last_seen(strict_app, conversation_id, 60)
    _page, key = open_compose(merchant, conversation_id)
    queued = compose_post(merchant, conversation_id, key, "send", subject="Hello", body="Hi {visitor_name}")
    assert queued.status_code == 302
    result = strict_app.test_cli_runner().invoke(args=["outbox-worker", "--once"])
    assert result.exit_code == 0, result.output
    timeline = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert 'data-status="failed"' in timeline and why in timeline


def test_embedded_addresses_are_decoded():
    decoded = {name: [str(a) for a in embedded_ipv4(ipaddress.ip_address(address))]
               for name, (address, _why) in FORMS.items() if name != "site-local"}
    assert decoded["teredo"] == ["65.54.227.120", "127.0.0.1"]
    assert decoded["6to4-private"] == ["10.0.0.1"]
    assert decoded["nat64-local-use"] == ["8.8.8.8"]
    assert all(decoded[name] == ["127.0.0.1"] for name in ("ipv4-mapped", "ipv4-compatible", "ipv4-translated",
                                                           "nat64"))


@pytest.mark.parametrize("address", ["8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8",
                                     "2001:0:4136:e378:8000:63bf:f7f7:f7f7", "2606:4700:4700::1111",
                                     "192.0.0.9", "2001:1::1"])
def test_forms_carrying_a_public_address_stay_allowed(address):
    assert AddressPolicy().address_refusal(address) is None


@pytest.mark.parametrize("address", ["192.0.0.8", "192.0.2.1", "198.18.0.1", "240.0.0.1", "100::1", "2001:db8::1",
                                     "2001:2::1", "2001:10::1", "3fff::1", "5f00::1", "fec0::1", "4000::1",
                                     "2001:0:a00:1::f7f7:f7f7"])
def test_special_purpose_ranges_are_refused(address):
    # Ranges Python's is_private / is_global got wrong before 3.11.10, and IPv6 outside 2000::/3;
    # the last one is a Teredo address whose server is private.
    assert AddressPolicy().address_refusal(address)
