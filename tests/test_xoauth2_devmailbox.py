"""The local test mailbox takes sign-in tokens (XOAUTH2) through an injected checker.

Real DevMailbox on 127.0.0.1, driven by the wizard's own probe: a good
token delivers into the Maildir, a refused one gets Google's exchange, and
without a checker XOAUTH2 is not offered while password sign-in works as before.
"""
from __future__ import annotations

import smtplib
import ssl
import threading

from wizard.devmailbox import store
from wizard.devmailbox.server import DevMailbox
from wizard.smtp.message import build_test_email
from wizard.smtp.probe import probe_smtp
from wizard.smtp.types import SmtpTarget

USERNAME = "owner@bluefern.example.com"
TOKEN = "dev-token-4b1f8e2c9a7d"
RECIPIENT = "customer@example.com"


class TokenStore:
    """The checker a sign-in server's token store would give, remembering what it was asked."""

    def __init__(self, tokens: dict[str, str]):
        self.tokens = tokens
        self.asked: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, username: str, token: str) -> bool:
        with self.lock:
            self.asked.append((username, token))
        return self.tokens.get(username) == token


def target(mailbox, certs, *, auth="xoauth2", token=TOKEN, password=""):
    return SmtpTarget(host="127.0.0.1", port=mailbox.port, security="starttls", username=USERNAME, password=password,
                      sender_email=USERNAME, timeout=5.0, greeting_timeout=1.0, ca_file=str(certs[0]),
                      auth=auth, access_token=token)


def test_a_good_token_signs_in_and_the_test_email_lands_in_the_maildir(tmp_path, certs):
    checker = TokenStore({USERNAME: TOKEN})
    message = build_test_email(sender_name="Blue Fern", sender_email=USERNAME, recipient=RECIPIENT,
                               store_name="Blue Fern", provider_name="Local test mailbox")
    with DevMailbox(tmp_path / "maildir", certs[0], certs[1], port=0, token_checker=checker) as mailbox:
        result = probe_smtp(target(mailbox, certs), message=message, recipients=[RECIPIENT])
        delivered = store.list_messages(mailbox.maildir)
    assert result.ok, (result.stage, result.detail, result.reply)
    assert checker.asked == [(USERNAME, TOKEN)]
    [stored] = delivered
    assert stored.envelope_from == USERNAME and stored.envelope_to == [RECIPIENT]


def test_a_refused_token_gets_the_google_exchange(tmp_path, certs):
    checker = TokenStore({USERNAME: TOKEN})
    with DevMailbox(tmp_path / "maildir", certs[0], certs[1], port=0, token_checker=checker) as mailbox:
        result = probe_smtp(target(mailbox, certs, token="dev-token-revoked"))
        delivered = store.list_messages(mailbox.maildir)
    assert checker.asked == [(USERNAME, "dev-token-revoked")]
    assert (result.stage, result.category) == ("auth", "auth_failed")
    assert (result.reply.code, result.reply.enhanced) == (535, "5.7.8")
    start = result.transcript.index("C: AUTH XOAUTH2 [redacted]")
    assert result.transcript[start + 1:start + 3] == ["S: 334 [redacted]", "C: [redacted]"]
    assert delivered == []


def test_a_failing_checker_is_a_temporary_failure_without_the_token(tmp_path, certs, caplog):
    def broken(username, token):
        raise RuntimeError(f"token store down while checking {token}")

    with DevMailbox(tmp_path / "maildir", certs[0], certs[1], port=0, token_checker=broken) as mailbox:
        result = probe_smtp(target(mailbox, certs))
    assert (result.stage, result.category) == ("auth", "temporary_failure")
    assert result.reply.code == 454
    assert TOKEN not in caplog.text and TOKEN not in "\n".join(result.transcript)


def test_without_a_checker_xoauth2_is_not_offered_and_passwords_work_as_before(tmp_path, certs):
    with DevMailbox(tmp_path / "maildir", certs[0], certs[1], port=0) as mailbox:
        tokened = probe_smtp(target(mailbox, certs))
        password = probe_smtp(target(mailbox, certs, auth="password", password="any-password"))
        rejected = probe_smtp(target(mailbox, certs, auth="password", password="wrong-password"))
    assert (tokened.stage, tokened.category) == ("auth", "auth_unsupported")
    assert "XOAUTH2" in tokened.detail
    assert password.ok
    assert rejected.category == "auth_failed"


def test_with_a_checker_passwords_still_work_and_xoauth2_is_offered(tmp_path, certs):
    checker = TokenStore({USERNAME: TOKEN})
    context = ssl.create_default_context(cafile=str(certs[0]))
    with DevMailbox(tmp_path / "maildir", certs[0], certs[1], port=0, token_checker=checker) as mailbox:
        with smtplib.SMTP("127.0.0.1", mailbox.port, timeout=5) as client:
            client.starttls(context=context)
            client.ehlo()
            offered = client.esmtp_features.get("auth", "").split()
        password = probe_smtp(target(mailbox, certs, auth="password", password="any-password"))
        rejected = probe_smtp(target(mailbox, certs, auth="password", password="wrong-password"))
    assert {"PLAIN", "LOGIN", "XOAUTH2"} <= set(offered)
    assert password.ok and rejected.category == "auth_failed"
    assert checker.asked == []  # a password never reaches the token checker
