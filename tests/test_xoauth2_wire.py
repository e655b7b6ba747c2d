"""Sign-in tokens on the SMTP wire (issue 11): SASL XOAUTH2 through the one session.

Against real aiosmtpd servers on 127.0.0.1 that speak XOAUTH2 the way Google
and Microsoft do: what the server received (username, token, the empty answer
to Google's error report), what the merchant is told, and what the transcript
keeps (never the token, in any form).
"""
from __future__ import annotations

import base64
import json
import smtplib

import pytest

from wizard.devmailbox.xoauth2 import GOOGLE_ERROR_REPORT
from wizard.smtp.diagnosis import explain
from wizard.smtp.probe import probe_smtp
from wizard.smtp.session import MECHANISMS_FOR_AUTH, xoauth2_initial_response
from wizard.smtp.types import AUTH_METHODS, SmtpTarget

from smtp_servers import Xoauth2Attempt, Xoauth2Offer, start_test_server

USERNAME = "owner@bluefern.example.com"
# Distinctive, so a leak anywhere is easy to find.
TOKEN = "ya29.a0AfB-test-Token-7c4e9d1f2b8a6350e1d4c7b9a2f0"
PASSWORD = "merchant-Password-4417"


def token_target(port, certs, security="starttls", token=TOKEN, **kwargs):
    return SmtpTarget(host="127.0.0.1", port=port, security=security, username=USERNAME, password="",
                      sender_email=USERNAME, timeout=5.0, greeting_timeout=1.0, ca_file=str(certs[0]),
                      auth="xoauth2", access_token=token, **kwargs)


def password_target(port, certs):
    return SmtpTarget(host="127.0.0.1", port=port, security="starttls", username=USERNAME, password=PASSWORD,
                      sender_email=USERNAME, timeout=5.0, greeting_timeout=1.0, ca_file=str(certs[0]))


def token_server(certs, mode="starttls", **offer):
    offer.setdefault("accepts", {USERNAME: TOKEN})
    return start_test_server(mode, username=USERNAME, password=PASSWORD, cert=certs[0], key=certs[1],
                             xoauth2=Xoauth2Offer(**offer))


def received(server):
    with server.lock:
        return list(server.xoauth2_attempts), list(server.auth_attempts)


def hint_for(result):
    return explain(result.category, None, {"username": USERNAME, "host": "127.0.0.1", "port": 587}, auth="xoauth2")


def exchange(transcript):
    """The AUTH command and every line after it, up to and including the final reply."""
    start = next(i for i, line in enumerate(transcript) if line.startswith("C: AUTH"))
    end = next(i for i in range(start + 1, len(transcript)) if not transcript[i].startswith(("S: 334", "C: [redacted]")))
    return transcript[start:end + 1]


# -- success, and the choice of mechanism ---------------------------------------------------

@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_a_valid_token_signs_in_with_xoauth2(certs, mode):
    with token_server(certs, mode) as server:
        result = probe_smtp(token_target(server.port, certs, security=mode))
        attempts, mechanisms = received(server)
    assert result.ok, (result.stage, result.detail, result.reply)
    assert attempts == [Xoauth2Attempt(USERNAME, TOKEN, None)]
    # The server also offers PLAIN and LOGIN: a token goes only to XOAUTH2.
    assert mechanisms == [("XOAUTH2", USERNAME)]
    assert "C: AUTH XOAUTH2 [redacted]" in result.transcript


def test_the_initial_response_is_the_documented_format():
    # user=U ^A auth=Bearer T ^A ^A, base64 added by smtplib.
    assert xoauth2_initial_response("a@b.example", "tok") == "user=a@b.example\x01auth=Bearer tok\x01\x01"


@pytest.mark.parametrize("excluded, expected", [((), [("PLAIN", USERNAME)]), (("PLAIN", "LOGIN"), [])])
def test_password_auth_never_chooses_xoauth2(certs, excluded, expected):
    with start_test_server("starttls", username=USERNAME, password=PASSWORD, cert=certs[0], key=certs[1],
                           exclude_mechanisms=excluded, xoauth2=Xoauth2Offer({USERNAME: TOKEN})) as server:
        result = probe_smtp(password_target(server.port, certs))
        attempts, mechanisms = received(server)
    assert attempts == []
    assert mechanisms == expected
    if expected:
        assert result.ok, (result.stage, result.detail)
    else:
        # Only XOAUTH2 on offer: a password has no mechanism to go to.
        assert (result.stage, result.category) == ("auth", "auth_unsupported")
        assert "XOAUTH2" in result.detail


def test_every_auth_method_has_its_mechanisms():
    assert set(MECHANISMS_FOR_AUTH) == set(AUTH_METHODS)
    assert MECHANISMS_FOR_AUTH["xoauth2"] == ("XOAUTH2",)
    assert "XOAUTH2" not in MECHANISMS_FOR_AUTH["password"]


# -- refusals: Google, Microsoft, a mailbox with SMTP AUTH off ------------------------------

def test_google_style_refusal_is_answered_with_an_empty_line(certs):
    with token_server(certs, failure_style="google") as server:
        result = probe_smtp(token_target(server.port, certs, token="ya29.expired-token-0001"))
        attempts, _ = received(server)
    # The client answered the 334 error report with an empty line: b"" once decoded.
    assert attempts == [Xoauth2Attempt(USERNAME, "ya29.expired-token-0001", b"")]
    assert (result.stage, result.category) == ("auth", "auth_failed")
    assert (result.reply.code, result.reply.enhanced) == (535, "5.7.8")
    assert exchange(result.transcript) == [
        "C: AUTH XOAUTH2 [redacted]", "S: 334 [redacted]", "C: [redacted]",
        "S: 535 5.7.8 Username and Password not accepted. For more information, go to",
    ]
    title, hint = hint_for(result)
    assert "Sign in again" in hint and "expired" in hint
    assert "app password" not in hint.lower()
    assert title == "The sign-in was not accepted"


def test_microsoft_style_refusal(certs):
    with token_server(certs, failure_style="microsoft") as server:
        result = probe_smtp(token_target(server.port, certs, token="eyJ0eXAi.revoked"))
        attempts, _ = received(server)
    assert attempts == [Xoauth2Attempt(USERNAME, "eyJ0eXAi.revoked", None)]
    assert (result.stage, result.category) == ("auth", "auth_failed")
    assert (result.reply.code, result.reply.enhanced) == (535, "5.7.3")
    assert exchange(result.transcript) == ["C: AUTH XOAUTH2 [redacted]", "S: 535 5.7.3 Authentication unsuccessful"]
    assert "Sign in again" in hint_for(result)[1]


def test_mailbox_with_smtp_auth_off_refuses_even_a_good_token(certs):
    with token_server(certs, mailbox_auth_disabled=True) as server:
        result = probe_smtp(token_target(server.port, certs))
        attempts, _ = received(server)
    assert attempts == [Xoauth2Attempt(USERNAME, TOKEN, None)]
    assert (result.stage, result.category) == ("auth", "smtp_auth_disabled")
    assert (result.reply.code, result.reply.enhanced) == (535, "5.7.139")
    _title, hint = hint_for(result)
    # Addressed to the administrator, and not "sign in again".
    assert "administrator" in hint and "Authenticated SMTP" in hint and "needs it too" in hint
    assert "Sign in again" not in hint
    _title, microsoft = explain(result.category, "microsoft365", {"username": USERNAME}, auth="xoauth2")
    assert "admin" in microsoft and "Authenticated SMTP" in microsoft and USERNAME in microsoft


def test_server_without_xoauth2_is_auth_unsupported(certs):
    with start_test_server("starttls", username=USERNAME, password=PASSWORD, cert=certs[0], key=certs[1]) as server:
        result = probe_smtp(token_target(server.port, certs))
        _, mechanisms = received(server)
    assert mechanisms == []  # nothing was tried: neither the token nor a password
    assert (result.stage, result.category) == ("auth", "auth_unsupported")
    assert "LOGIN" in result.detail and "PLAIN" in result.detail and "XOAUTH2" in result.detail
    title, hint = hint_for(result)
    assert title == "This server does not accept sign-in tokens"
    assert "password option" in hint


def test_no_token_before_tls_even_when_the_server_offers_xoauth2_in_the_clear(certs):
    with start_test_server("plain", username=USERNAME, password=PASSWORD, cert=certs[0], key=certs[1],
                           auth_in_the_clear=True, xoauth2=Xoauth2Offer({USERNAME: TOKEN})) as server:
        # The server really offers XOAUTH2 without TLS, so the refusal below is the client's own.
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
            client.ehlo()
            assert "XOAUTH2" in client.esmtp_features.get("auth", "").split()
        result = probe_smtp(token_target(server.port, certs))
        attempts, mechanisms = received(server)
    assert (result.stage, result.category) == ("starttls", "starttls_unsupported")
    assert attempts == [] and mechanisms == []
    assert not any(line.startswith("C: AUTH") for line in result.transcript)


# -- the transcript never holds the token ---------------------------------------------------

def base64_windows(secret: bytes, width: int = 12) -> set[str]:
    """Every ``width``-character stretch of every base64 encoding of ``secret`` (all three
    alignments, so a fragment of the token inside a longer payload is covered too)."""
    windows = set()
    for shift in range(3):
        encoded = base64.b64encode(secret[shift:]).decode().rstrip("=")
        # The last 4 characters depend on what follows; leave them out.
        encoded = encoded[:-4]
        windows |= {encoded[i:i + width] for i in range(max(len(encoded) - width + 1, 0))}
    return windows


@pytest.mark.parametrize("offer, token", [
    ({}, TOKEN),
    ({"failure_style": "google"}, "ya29.refused-Google-token-" + "9" * 24),
    ({"failure_style": "microsoft"}, "eyJ0eXAiOiJKV1Qi.refused-Microsoft-" + "8" * 24),
    ({"mailbox_auth_disabled": True}, TOKEN),
])
def test_transcript_keeps_neither_token_nor_payload_in_any_form(certs, offer, token):
    with token_server(certs, **offer) as server:
        result = probe_smtp(token_target(server.port, certs, token=token))
    text = "\n".join(result.transcript)
    payload = xoauth2_initial_response(USERNAME, token).encode()
    assert "C: AUTH XOAUTH2 [redacted]" in text
    assert token not in text
    assert base64.b64encode(payload).decode() not in text
    assert not [w for w in base64_windows(payload) | base64_windows(token.encode()) if w in text]
    # Google's error report is redacted too (it names the scopes the token lacked).
    assert GOOGLE_ERROR_REPORT not in text
    assert base64.b64encode(GOOGLE_ERROR_REPORT.encode()).decode() not in text
    assert json.loads(GOOGLE_ERROR_REPORT)["scope"] not in text
