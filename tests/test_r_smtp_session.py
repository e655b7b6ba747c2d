"""One SMTP session for Test Connection, the test email and the outbox (issue 10).

Against real aiosmtpd servers on 127.0.0.1: the probe and the outbox sender
open their connections the same way (same mechanism choice, same TLS
verification, same refusals), because both go through ``wizard.smtp.session``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from wizard.outbox.sender import SendError, SmtpConnection
from wizard.smtp.address_policy import AddressPolicy
from wizard.smtp.probe import probe_smtp
from wizard.smtp.session import MECHANISMS
from wizard.smtp.types import SmtpTarget

from conftest import SMTP_PASSWORD, SMTP_USERNAME
from smtp_servers import start_test_server

WIZARD = Path(__file__).resolve().parent.parent / "wizard"
PAYLOAD = (b"From: shop@example.com\r\nTo: customer@example.com\r\nSubject: Your order\r\n"
           b"Message-ID: <r-smtp-1@example.com>\r\n\r\nThank you.\r\n")


def target(port, security="starttls", *, ca_file=None, password=SMTP_PASSWORD, **kwargs):
    return SmtpTarget(host="localhost", port=port, security=security, username=SMTP_USERNAME, password=password,
                      sender_email=SMTP_USERNAME, timeout=5.0, greeting_timeout=1.0, ca_file=ca_file, **kwargs)


def send_once(smtp_target):
    connection = SmtpConnection(smtp_target)
    try:
        return connection.send(SMTP_USERNAME, "customer@example.com", PAYLOAD)
    finally:
        connection.close()


@pytest.mark.parametrize("excluded, expected", [((), "PLAIN"), (("PLAIN",), "LOGIN")])
def test_probe_and_outbox_choose_the_same_mechanism(certs, excluded, expected):
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0],
                           key=certs[1], exclude_mechanisms=excluded) as server:
        probed = probe_smtp(target(server.port, ca_file=str(certs[0])))
        delivered = send_once(target(server.port, ca_file=str(certs[0])))
        with server.lock:
            attempts = [mechanism for mechanism, _login in server.auth_attempts]
            received = len(server.messages)
    assert probed.ok, probed
    assert delivered.reply.code == 250
    assert attempts == [expected, expected]
    assert received == 1
    assert list(MECHANISMS)[:2] == ["PLAIN", "LOGIN"]  # the order of preference is the table's


def test_outbox_over_implicit_tls_delivers(ssl_server, certs):
    delivered = send_once(target(ssl_server.port, "ssl", ca_file=str(certs[0])))
    assert delivered.reply.code == 250
    with ssl_server.lock:
        assert len(ssl_server.messages) == 1


def test_outbox_explains_an_untrusted_certificate_like_the_probe(starttls_server):
    # No CA file: the self-signed certificate is not trusted, and both say why in the same words.
    probed = probe_smtp(target(starttls_server.port))
    with pytest.raises(SendError) as raised:
        send_once(target(starttls_server.port))
    failure = raised.value.failure
    assert (probed.stage, probed.category) == ("starttls", "certificate_invalid")
    assert (failure.stage, failure.category) == ("starttls", "certificate_invalid")
    assert failure.detail == probed.detail and "self-signed" in failure.detail.lower()
    with starttls_server.lock:
        assert starttls_server.auth_attempts == []  # no credentials over an untrusted connection


def test_outbox_and_probe_refuse_the_same_address(starttls_server, certs):
    policy = AddressPolicy.from_config([starttls_server.port], [])  # loopback not among the allowed networks
    probed = probe_smtp(target(starttls_server.port, ca_file=str(certs[0]), address_policy=policy))
    with pytest.raises(SendError) as raised:
        send_once(target(starttls_server.port, ca_file=str(certs[0]), address_policy=policy))
    failure = raised.value.failure
    assert probed.refusal and failure.refusal == probed.refusal
    assert failure.permanent and failure.category == "connection_refused"
    with starttls_server.lock:
        assert starttls_server.messages == [] and starttls_server.auth_attempts == []


def _modules_matching(pattern: str) -> set[str]:
    found = set()
    for path in WIZARD.rglob("*.py"):
        if "devmailbox" in path.parts:  # the local test mailbox's server side
            continue
        if re.search(pattern, path.read_text()):
            found.add(str(path.relative_to(WIZARD)))
    return found


def test_tls_wrap_and_auth_are_written_once():
    # IMAP's STARTTLS is imapclient's own command, given the shared verified context of smtp/tls.py.
    assert _modules_matching(r"\.wrap_socket\(|SMTP_SSL|\.starttls\(") == {"smtp/tls.py", "inbound/imap_session.py"}
    assert _modules_matching(r'"STARTTLS"\)') == {"smtp/session.py"}
    assert _modules_matching(r"\.auth\(|\.login\(|auth_plain|auth_login|auth_cram_md5") == {"smtp/session.py"}
