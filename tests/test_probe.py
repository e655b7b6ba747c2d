"""The staged SMTP probe against real aiosmtpd servers on 127.0.0.1."""
from __future__ import annotations

import base64
import socket
import time

import pytest

from wizard.smtp.message import build_test_email
from wizard.smtp.probe import probe_smtp
from wizard.smtp.types import SmtpTarget

from conftest import SMTP_PASSWORD, SMTP_USERNAME
from smtp_servers import silent_listener, start_test_server


def target(port, security="starttls", *, ca_file=None, password=SMTP_PASSWORD, host="localhost", **kwargs):
    return SmtpTarget(host=host, port=port, security=security, username=SMTP_USERNAME, password=password,
                      sender_email=SMTP_USERNAME, timeout=kwargs.pop("timeout", 5.0),
                      greeting_timeout=kwargs.pop("greeting_timeout", 1.0), ca_file=ca_file, **kwargs)


def stage_names(result):
    return [s.name for s in result.stages]


def test_starttls_login_succeeds_and_sends_nothing(starttls_server, certs):
    result = probe_smtp(target(starttls_server.port, ca_file=str(certs[0])))
    assert result.ok, result
    assert result.category == "ok" and result.stage == "done"
    assert stage_names(result) == ["dns", "connect", "greeting", "ehlo", "starttls", "auth", "sender"]
    assert starttls_server.messages == []
    assert starttls_server.auth_attempts[-1][1] == SMTP_USERNAME
    assert result.elapsed_ms < 1000


def test_implicit_tls_login_succeeds(ssl_server, certs):
    result = probe_smtp(target(ssl_server.port, "ssl", ca_file=str(certs[0])))
    assert result.ok, result
    assert stage_names(result) == ["dns", "connect", "tls", "greeting", "ehlo", "auth", "sender"]


def test_wrong_password_is_auth_failed_with_the_servers_reply(starttls_server, certs):
    result = probe_smtp(target(starttls_server.port, ca_file=str(certs[0]), password="nope"))
    assert not result.ok
    assert (result.stage, result.category) == ("auth", "auth_failed")
    assert result.reply.code == 535 and result.reply.enhanced == "5.7.8"


def test_starttls_on_an_implicit_tls_port_is_no_greeting_and_suggests_465(certs):
    with silent_listener() as port:
        began = time.monotonic()
        result = probe_smtp(target(port, greeting_timeout=1.0))
        took = time.monotonic() - began
    assert (result.stage, result.category) == ("greeting", "no_greeting")
    assert took < 2.5


def test_ssl_on_a_starttls_port_is_tls_on_plain_port(starttls_server, certs):
    result = probe_smtp(target(starttls_server.port, "ssl", ca_file=str(certs[0])))
    assert (result.stage, result.category) == ("tls", "tls_on_plain_port")


def test_untrusted_certificate_is_refused(starttls_server):
    result = probe_smtp(target(starttls_server.port))  # no CA file: the self-signed cert is not trusted
    assert (result.stage, result.category) == ("starttls", "certificate_invalid")
    assert starttls_server.auth_attempts == []


def test_no_starttls_means_no_credentials_sent(plain_server, certs):
    result = probe_smtp(target(plain_server.port, ca_file=str(certs[0])))
    assert (result.stage, result.category) == ("starttls", "starttls_unsupported")
    assert plain_server.auth_attempts == []
    assert not any(line.startswith("C: AUTH") for line in result.transcript)


def test_closed_port_is_connection_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    result = probe_smtp(target(port, host="127.0.0.1"))
    assert (result.stage, result.category) == ("connect", "connection_refused")


def test_transcript_never_holds_the_password(starttls_server, certs):
    for password in (SMTP_PASSWORD, "wrong-" + SMTP_PASSWORD):
        result = probe_smtp(target(starttls_server.port, ca_file=str(certs[0]), password=password))
        text = "\n".join(result.transcript)
        assert "AUTH PLAIN [redacted]" in text
        forbidden = [password, base64.b64encode(f"\0{SMTP_USERNAME}\0{password}".encode()).decode(),
                     base64.b64encode(password.encode()).decode()]
        for secret in forbidden:
            assert secret not in text


def test_real_send_reports_queue_id_and_delivers(starttls_server, certs):
    message = build_test_email(sender_name="Blue Fern Support", sender_email=SMTP_USERNAME,
                               recipient="customer@example.com", store_name="Blue Fern", provider_name="Other SMTP")
    result = probe_smtp(target(starttls_server.port, ca_file=str(certs[0])), message=message,
                        recipients=["customer@example.com"])
    assert result.ok and result.queue_id == "TEST000001"
    assert stage_names(result)[-2:] == ["recipient", "data"]
    [received] = starttls_server.messages
    assert received.message["Message-ID"] == message["Message-ID"]
    assert "[message content" in "\n".join(result.transcript)


@pytest.mark.parametrize(
    "reply,category",
    [
        ("550 The from address does not match a verified Sender Identity.", "sender_rejected"),
        ("554 5.2.252 SendAsDenied; owner@x not allowed to send as sales@x", "sender_rejected"),
        ("554 Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1: customer@example.com", "recipient_rejected"),  # noqa: E501
        ("451 4.3.0 Temporary server error", "temporary_failure"),
        ("552 5.3.4 Message size exceeds fixed limit", "message_rejected"),
    ],
)
def test_rejections_after_data_are_classified(certs, reply, category):
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           data_reply=reply) as server:
        message = build_test_email(sender_name="Blue Fern", sender_email=SMTP_USERNAME, recipient="customer@example.com",
                                   store_name="Blue Fern", provider_name="x")
        result = probe_smtp(target(server.port, ca_file=str(certs[0])), message=message, recipients=["customer@example.com"])
    assert (result.stage, result.category) == ("data", category)
    assert result.reply.code == int(reply[:3])


@pytest.mark.parametrize(
    "auth_reply,category",
    [
        ("534 5.7.9 Application-specific password required. Learn more at https://support.google.com/mail/?p=InvalidSecondFactor", "app_password_required"),  # noqa: E501
        ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", "smtp_auth_disabled"),
        ("535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.", "auth_failed"),
        ("535 Authentication Credentials Invalid", "auth_failed"),
        ("454 4.7.0 Too many login attempts, please try again later.", "temporary_failure"),
    ],
)
def test_provider_login_replies_are_classified(certs, auth_reply, category):
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           auth_reply=auth_reply) as server:
        result = probe_smtp(target(server.port, ca_file=str(certs[0]), password="not-it"))
    assert (result.stage, result.category) == ("auth", category)


def test_auth_login_transcript_is_redacted_too(certs):
    # Only LOGIN offered: username and password travel as separate base64 lines.
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           exclude_mechanisms=("PLAIN",)) as server:
        result = probe_smtp(target(server.port, ca_file=str(certs[0])))
    assert result.ok
    assert server.auth_attempts[-1][0] == "LOGIN"
    text = "\n".join(result.transcript)
    assert "AUTH LOGIN" in text
    for secret in (SMTP_PASSWORD, base64.b64encode(SMTP_PASSWORD.encode()).decode(),
                   base64.b64encode(SMTP_USERNAME.encode()).decode()):
        assert secret not in text


def test_cli_runs_as_a_separate_process(tmp_path):
    import json
    import os
    import subprocess
    import sys

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = dict(os.environ, SMTP_PASSWORD="x", WIZARD_INSTANCE_PATH=str(tmp_path))
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wizard", "smtp-test", "--host", "127.0.0.1",
                           "--port", str(port), "--security", "starttls", "--username", "u",
                           "--sender-email", "a@example.com", "--timeout", "3", "--json"],
                          capture_output=True, text=True, env=env, timeout=30)
    took = time.monotonic() - began
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["category"] == "connection_refused"
    assert took < 4
    missing = subprocess.run([sys.executable, "-m", "flask", "--app", "wizard", "smtp-test", "--host", "h",
                              "--port", "587", "--security", "starttls", "--username", "u", "--sender-email", "a@b.com"],
                             capture_output=True, text=True, env=dict(env, SMTP_PASSWORD=""), timeout=30)
    assert missing.returncode == 2 and "SMTP_PASSWORD" in missing.stderr
