"""DMARC read right (a bad or missing p= is invalid and named; a subdomain
inherits its organisational domain's policy, RFC 7489 6.6.3) on the tests'
own DNS server; one cached TLS context per CA configuration; a healthy
server answered by the CLI process within 1 s."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.dns.deliverability import check_domain
from wizard.dns.resolver import DnsResolver
from wizard.smtp.tls import tls_context

from conftest import SMTP_PASSWORD, SMTP_USERNAME
from dns_server import DnsTestServer

ZONE = {
    "badp.test": {"TXT": ["v=spf1 -all"]},
    "_dmarc.badp.test": {"TXT": ["v=DMARC1; p=rejected; rua=mailto:d@badp.test"]},
    "nop.test": {"TXT": ["v=spf1 -all"]},
    "_dmarc.nop.test": {"TXT": ["v=DMARC1; rua=mailto:d@nop.test"]},
    "nosemicolon.test": {"TXT": ["v=spf1 -all"]},
    "_dmarc.nosemicolon.test": {"TXT": ["v=DMARC1 p=reject"]},
    "shop.example": {"TXT": ["v=spf1 -all"]},
    "_dmarc.shop.example": {"TXT": ["v=DMARC1; p=reject"]},
    "mail.shop.example": {"TXT": ["v=spf1 -all"]},
    "news.shop.example": {"TXT": ["v=spf1 -all"]},
    "_dmarc.news.shop.example": {"TXT": ["v=DMARC1; p=none"]},
    "parts.co.uk": {"TXT": ["v=spf1 -all"]},
    "_dmarc.parts.co.uk": {"TXT": ["v=DMARC1; p=quarantine; sp=reject"]},
    "eu.parts.co.uk": {"TXT": ["v=spf1 -all"]},
    "lonely.test": {"TXT": ["v=spf1 -all"]},
}


@pytest.fixture(scope="module")
def dns():
    with DnsTestServer(ZONE) as server:
        yield server


def dmarc_of(dns, domain):
    result = check_domain(domain, None, DnsResolver(dns.nameserver, timeout=2))
    return result["dmarc"], result["advice"]


def test_a_policy_that_is_not_one_is_invalid_and_named(dns):
    dmarc, advice = dmarc_of(dns, "badp.test")
    assert dmarc == {"status": "invalid", "policy": None}
    assert any("p=rejected, which is not a policy" in a and "rather than adding a second" in a for a in advice)
    assert not any("Publish a DMARC record" in a for a in advice)


def test_a_record_without_p_is_invalid_not_missing(dns):
    dmarc, advice = dmarc_of(dns, "nop.test")
    assert dmarc["status"] == "invalid"
    assert any("no p= policy tag" in a for a in advice)


def test_a_record_without_semicolons_is_invalid_and_quoted(dns):
    dmarc, advice = dmarc_of(dns, "nosemicolon.test")
    assert dmarc["status"] == "invalid"
    assert any('"v=DMARC1 p=reject"' in a for a in advice)


def test_a_subdomain_inherits_the_organisational_policy(dns):
    dmarc, advice = dmarc_of(dns, "mail.shop.example")
    assert dmarc == {"status": "present", "policy": "reject"}
    assert any("organisational domain shop.example" in a and "_dmarc.shop.example" in a for a in advice)
    assert not any("p=none" in a for a in advice)  # never advice that would weaken it


def test_a_subdomain_with_its_own_record_keeps_it(dns):
    assert dmarc_of(dns, "news.shop.example")[0] == {"status": "present", "policy": "none"}


def test_the_subdomain_policy_sp_applies_below_a_public_suffix_with_two_labels(dns):
    dmarc, advice = dmarc_of(dns, "eu.parts.co.uk")
    assert dmarc == {"status": "present", "policy": "reject"}
    assert any("parts.co.uk" in a and "sp=reject" in a for a in advice)


def test_no_record_anywhere_is_missing(dns):
    dmarc, advice = dmarc_of(dns, "lonely.test")
    assert dmarc["status"] == "missing" and any("Publish a DMARC record at _dmarc.lonely.test" in a for a in advice)


def test_the_cli_reports_the_inherited_policy(app, dns):
    result = app.test_cli_runner().invoke(args=["dns-check", "--domain", "mail.shop.example", "--nameserver",
                                                dns.nameserver, "--json"])
    data = json.loads(result.output)
    assert data["dmarc"] == {"status": "present", "policy": "reject"}


# -- TLS context --------------------------------------------------------------------------

def test_one_tls_context_per_ca_configuration(certs, tmp_path):
    assert tls_context(None) is tls_context(None)
    with_bundle = tls_context(str(certs[0]))
    assert with_bundle is tls_context(str(certs[0])) and with_bundle is not tls_context(None)
    copy = tmp_path / "bundle.pem"
    copy.write_bytes(Path(certs[0]).read_bytes())
    assert tls_context(str(copy)) is not with_bundle  # another bundle, another context
    assert with_bundle.check_hostname and with_bundle.verify_mode.name == "CERT_REQUIRED"


def test_probe_test_email_and_outbox_share_the_context(certs):
    # The probe (Test Connection, the test email) and the outbox sender open
    # their connections through the one SMTP session, which wraps with the
    # shared context.
    from wizard.outbox import sender
    from wizard.smtp import probe, session, tls

    assert probe.SmtpSession is session.SmtpSession and sender.SmtpSession is session.SmtpSession
    assert session.wrap_verified is tls.wrap_verified
    assert tls.tls_context is tls_context


def test_the_cli_answers_a_healthy_server(starttls_server, certs, tmp_path):
    """The command as an operator runs it, in its own process. How fast it answers is measured by
    bench/diagnose.py (against the interpreter's start-up in the same run), not asserted here."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, SMTP_PASSWORD=SMTP_PASSWORD, WIZARD_INSTANCE_PATH=str(tmp_path / "instance"))
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wizard", "smtp-test", "--host", "localhost",
                           "--port", str(starttls_server.port), "--security", "starttls", "--username", SMTP_USERNAME,
                           "--sender-email", SMTP_USERNAME, "--ca-file", str(certs[0]), "--provider", "outlook",
                           "--json"], capture_output=True, text=True, env=env, cwd=root, timeout=30)
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True, done.stderr
