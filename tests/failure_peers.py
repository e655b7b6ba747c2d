"""Real peers on 127.0.0.1 that produce each failure category — shared by
the category tests and ``bench/diagnose.py``."""
from __future__ import annotations

import contextlib
import socket
import tempfile
from pathlib import Path

from wizard.devmailbox.certs import ensure_self_signed_cert

from scripted_smtp import scripted_server
from smtp_servers import silent_listener, start_test_server

SMTP_USERNAME = "merchant@bluefern.example.com"
SMTP_PASSWORD = "Zq7-unique-SMTP-secret-4711"


@contextlib.contextmanager
def aiosmtpd(certs, mode="starttls", **options):
    with start_test_server(mode, username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           **options) as server:
        yield {"port": server.port, "security": "ssl" if mode == "ssl" else "starttls"}


@contextlib.contextmanager
def closed_port(_certs):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield {"port": port, "security": "starttls"}


@contextlib.contextmanager
def silent(_certs):
    with silent_listener() as port:
        yield {"port": port, "security": "starttls"}


@contextlib.contextmanager
def scripted(_certs, **script):
    with scripted_server(**script) as port:
        yield {"port": port, "security": "starttls"}


@contextlib.contextmanager
def untrusted_certificate(_certs):
    other = ensure_self_signed_cert(Path(tempfile.mkdtemp()), "untrusted")
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=other[0], key=other[1]) as server:
        yield {"port": server.port, "security": "starttls"}


# category -> (peer factory, extra settings)
SCENARIOS = {
    "ok": (lambda c: aiosmtpd(c), {}),
    "connection_refused": (closed_port, {}),
    "connection_timeout": (lambda c: scripted(c, replies={"EHLO": "silent"}), {}),
    "no_greeting": (silent, {}),
    "tls_on_plain_port": (lambda c: aiosmtpd(c), {"security": "ssl"}),
    "certificate_invalid": (untrusted_certificate, {}),
    "tls_failed": (lambda c: scripted(c, replies={"STARTTLS": "tls-garbage"}), {}),
    "starttls_unsupported": (lambda c: aiosmtpd(c, "plain"), {}),
    "auth_unsupported": (lambda c: aiosmtpd(c, offer_auth=False), {}),
    "auth_failed": (lambda c: aiosmtpd(c), {"password": "not-the-password"}),
    "app_password_required": (lambda c: aiosmtpd(c, auth_reply="534 5.7.9 Application-specific password required. "
                                                   "Learn more at https://support.google.com/mail/?p=InvalidSecondFactor"),
                              {"password": "normal-google-password"}),
    "smtp_auth_disabled": (lambda c: aiosmtpd(c, auth_reply="535 5.7.139 Authentication unsuccessful, "
                                                "SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled"),
                           {"password": "x"}),
    "sender_rejected": (lambda c: aiosmtpd(c, mail_reply="550 5.7.1 Sender address rejected: not owned by user"), {}),
    "recipient_rejected": (lambda c: aiosmtpd(c, rcpt_reply="550 5.1.1 <customer@example.com>: Recipient address rejected: User unknown"),  # noqa: E501
                           {"send": True}),
    "message_rejected": (lambda c: aiosmtpd(c, data_reply="554 5.6.0 Message rejected: content not accepted"), {"send": True}),
    "temporary_failure": (lambda c: scripted(c, banner="421 4.3.2 Service not available, closing transmission channel"), {}),
    "connection_dropped": (lambda c: scripted(c, replies={"EHLO": "close"}), {}),
    "unexpected": (lambda c: scripted(c, banner="554 5.3.2 No SMTP service here"), {}),
}
# dns_not_found needs a DNS server of the tests' own: see test_detect.py; port_not_allowed
# an address policy, not a peer: see test_ux_fixes.py.
UNCOVERED_HERE = {"dns_not_found", "port_not_allowed"}
