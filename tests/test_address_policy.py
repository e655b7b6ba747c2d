"""The web app connects only to public addresses and allowed ports (SSRF defence)."""
from __future__ import annotations

import socket
import threading

import pytest
from cryptography.fernet import Fernet

from wizard import create_app
from wizard.smtp.address_policy import AddressPolicy

from conftest import SMTP_PASSWORD, SMTP_USERNAME, run_connection_test, sign_up
from dns_server import DnsTestServer
from helpers import choose_other, enable_prechat

REFUSED = ["127.0.0.1", "127.0.0.2", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
           "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
           "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1"]
ALLOWED = ["8.8.8.8", "2606:4700:4700::1111", "142.250.102.108"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address):
    assert AddressPolicy().address_refusal(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert AddressPolicy().address_refusal(address) is None


def test_ports_and_explicit_allowances():
    policy = AddressPolicy.from_config("25,465,587,2525", "")
    assert policy.port_refusal(587) is None and "not allowed" in policy.port_refusal(6379)
    allowed = policy.with_allowed("127.0.0.1", 8025)
    assert allowed.address_refusal("127.0.0.1", 8025) is None and allowed.port_refusal(8025) is None
    assert allowed.address_refusal("127.0.0.2", 8025)  # only the one address
    assert allowed.address_refusal("127.0.0.1", 587)  # and only on its own port
    assert AddressPolicy.from_config("", "127.0.0.0/8").port_refusal(6379) is None


class CountingListener:
    """A TCP listener that counts connections — proof that nothing arrived."""

    def __init__(self, host: str):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self):
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def strict_app(tmp_path, certs):
    """The app with the production policy: nothing but public addresses."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "k",
                      "ENCRYPTION_KEYS": Fernet.generate_key().decode(), "SMTP_TIMEOUT": 3.0,
                      "SMTP_GREETING_TIMEOUT": 1.0, "DEV_MAILBOX": False, "SMTP_ALLOWED_PORTS": ""})
    yield app
    app.extensions["db_engine"].dispose()


def refused_page(app, host: str, port: int) -> str:
    merchant = sign_up(app.test_client())
    enable_prechat(merchant)
    choose_other(merchant)
    response = merchant.post("/wizard/smtp", {"host": host, "port": str(port), "security": "starttls",
                                              "sender_name": "Blue Fern", "sender_email": SMTP_USERNAME,
                                              "username": SMTP_USERNAME, "password": SMTP_PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return run_connection_test(merchant).get_data(as_text=True)


@pytest.mark.parametrize("host,listen_on", [
    ("127.0.0.2", "127.0.0.2"),
    ("[::1]", "::1"),
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("localhost", "127.0.0.1"),
])
def test_loopback_targets_are_refused_before_any_packet(strict_app, host, listen_on):
    listener = CountingListener(listen_on)
    try:
        page = refused_page(strict_app, host, listener.port)
    finally:
        listener.close()
    assert "HeiChat will not connect to this address" in page
    assert "only connects to mail servers on the public internet" in page
    assert listener.accepted == 0


@pytest.mark.parametrize("host", ["10.0.0.1", "169.254.169.254"])
def test_private_and_metadata_addresses_are_refused(strict_app, host):
    page = refused_page(strict_app, host, 587)
    assert 'data-category="connection_refused"' in page
    assert "HeiChat will not connect to this address" in page


def test_a_name_resolving_to_loopback_is_refused(strict_app):
    listener = CountingListener("127.0.0.1")
    try:
        with DnsTestServer({"smtp.rebind.example.com": {"A": ["127.0.0.1"]}}) as dns:
            strict_app.config["DNS_NAMESERVER"] = dns.nameserver
            page = refused_page(strict_app, "smtp.rebind.example.com", listener.port)
    finally:
        listener.close()
    assert "127.0.0.1 is a loopback address" in page
    assert listener.accepted == 0


def test_ports_outside_the_list_are_refused(strict_app):
    """Said in step 3 already, next to the port (nothing is tried, the draft is kept)."""
    strict_app.config["SMTP_ALLOWED_PORTS"] = "25,465,587,2525"
    merchant = sign_up(strict_app.test_client())
    enable_prechat(merchant)
    choose_other(merchant)
    response = merchant.post("/wizard/smtp", {"host": "smtp.example.com", "port": "6379", "security": "starttls",
                                              "sender_name": "Blue Fern", "sender_email": SMTP_USERNAME,
                                              "username": SMTP_USERNAME, "password": SMTP_PASSWORD})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Port 6379 is not allowed" in page
    assert 'data-code="port_not_allowed"' in page and 'value="6379"' in page


def test_the_operator_cli_has_no_policy(app, starttls_server, certs, monkeypatch):
    import json

    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    output = app.test_cli_runner().invoke(args=[
        "smtp-test", "--host", "localhost", "--port", str(starttls_server.port), "--security", "starttls",
        "--username", SMTP_USERNAME, "--sender-email", SMTP_USERNAME, "--ca-file", str(certs[0]), "--json"])
    assert json.loads(output.output)["ok"] is True
