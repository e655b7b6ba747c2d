"""Auto-detect ("find my settings") and DNS failures, with a DNS server of our own."""
from __future__ import annotations

import json
import time

import pytest

from wizard.catalogue import load_catalogue
from wizard.smtp.detect import detect_settings
from wizard.smtp.probe import probe_smtp
from wizard.smtp.types import SmtpTarget

from conftest import SMTP_PASSWORD, SMTP_USERNAME
from dns_server import DnsTestServer
from smtp_servers import silent_listener


def test_unknown_host_is_dns_not_found_through_probe_and_cli(app, monkeypatch):
    with DnsTestServer({"bluefern.example.com": {"MX": [(10, "mx.bluefern.example.com.")]}}) as dns:
        result = probe_smtp(SmtpTarget(host="smtp.bluefern.example.com", port=587, security="starttls",
                                       username="u", password="p", timeout=3, nameserver=dns.nameserver))
        assert (result.stage, result.category) == ("dns", "dns_not_found")
        app.config["DNS_NAMESERVER"] = dns.nameserver
        monkeypatch.setenv("SMTP_PASSWORD", "x")
        output = app.test_cli_runner().invoke(args=[
            "smtp-test", "--host", "smtp.bluefern.example.com", "--port", "587", "--security", "starttls",
            "--username", "u", "--sender-email", "a@bluefern.example.com", "--timeout", "3", "--json"])
    data = json.loads(output.output)
    assert data["category"] == "dns_not_found" and data["stage"] == "dns" and output.exit_code == 1


def test_a_record_from_our_dns_server_is_used(starttls_server, certs):
    with DnsTestServer({"localhost.test": {"A": ["127.0.0.1"]}}) as dns:
        result = probe_smtp(SmtpTarget(host="localhost", port=starttls_server.port, security="starttls",
                                       username=SMTP_USERNAME, password=SMTP_PASSWORD, sender_email=SMTP_USERNAME,
                                       timeout=3, ca_file=str(certs[0]), nameserver=dns.nameserver))
    # "localhost" is not in our zone: the probe asked our server, not /etc/hosts.
    assert result.category == "dns_not_found"


def test_detect_finds_the_working_combinations_without_credentials(starttls_server, ssl_server, certs):
    with silent_listener() as silent_port:
        began = time.monotonic()
        result = detect_settings(host="localhost", ports=[ssl_server.port, starttls_server.port, silent_port],
                                 timeout=2.0, ca_file=str(certs[0]), catalogue=load_catalogue())
        took = time.monotonic() - began
    assert took < 3.0  # concurrent: the silent port costs one timeout, not one per candidate
    outcome = {(c["port"], c["security"]): (c["ok"], c["category"]) for c in result["candidates"]}
    assert outcome[(starttls_server.port, "starttls")] == (True, "ok")
    assert outcome[(ssl_server.port, "ssl")] == (True, "ok")
    assert outcome[(starttls_server.port, "ssl")][1] == "tls_on_plain_port"
    assert outcome[(silent_port, "starttls")][1] == "no_greeting"
    assert result["recommended"]["host"] == "localhost"
    assert starttls_server.auth_attempts == [] and ssl_server.auth_attempts == []


def test_detect_guesses_the_provider_from_mx(app):
    zone = {"bluefern.example.com": {"MX": [(1, "aspmx.l.google.com.")]},
            "smtp.gmail.com": {"A": ["127.0.0.1"]}}
    with DnsTestServer(zone) as dns:
        output = app.test_cli_runner().invoke(args=[
            "smtp-detect", "--email", "owner@bluefern.example.com", "--ports", "1", "--timeout", "2",
            "--nameserver", dns.nameserver, "--json"])
    data = json.loads(output.output)
    assert output.exit_code == 0
    assert set(data) == {"provider", "candidates", "recommended", "elapsed_ms"}
    assert data["provider"] == "gmail"
    assert {c["host"] for c in data["candidates"]} == {"smtp.gmail.com"}
    assert all(set(c) == {"host", "port", "security", "ok", "category"} for c in data["candidates"])
    assert data["recommended"] is None


def test_detect_cli_answers_within_timeout_plus_one_with_a_silent_port(app, starttls_server, certs):
    with silent_listener() as silent_port:
        began = time.monotonic()
        output = app.test_cli_runner().invoke(args=[
            "smtp-detect", "--host", "localhost", "--ports", f"{starttls_server.port},{silent_port}",
            "--timeout", "2", "--ca-file", str(certs[0]), "--json"])
        took = time.monotonic() - began
    assert took < 3.0
    data = json.loads(output.output)
    assert data["recommended"] == {"host": "localhost", "port": starttls_server.port, "security": "starttls"}


@pytest.mark.parametrize("args", [
    ["--host", "a", "--email", "b@c.com"],
    [],
    ["--host", "localhost", "--ports", "0"],
    ["--host", "localhost", "--ports", "abc"],
    ["--host", "localhost", "--timeout", "-1"],
    ["--email", "no-at-sign"],
    ["--host", "localhost", "--nameserver", "dns.example.com"],
])
def test_detect_cli_refuses_bad_arguments(app, args):
    output = app.test_cli_runner().invoke(args=["smtp-detect", *args, "--json"])
    assert output.exit_code == 2
