"""Test IMAP against a real Dovecot: the staged result the merchant sees, for a good login and for the usual mistakes."""
from __future__ import annotations

import pytest

from wizard.inbound.imap_check import check_imap
from wizard.inbound.imap_diagnosis import answer_from_text, classify_answer
from wizard.inbound.imap_types import ImapTarget
from wizard.smtp.address_policy import AddressPolicy

from dovecot_server import (
    dovecot,  # noqa: F401  (the fixture)
    free_port,
)
from failure_peers import SMTP_PASSWORD, SMTP_USERNAME


def target(server, certs, **overrides) -> ImapTarget:
    values = dict(host="127.0.0.1", port=server.imaps_port, security="ssl", username=SMTP_USERNAME,
                  password=SMTP_PASSWORD, ca_file=str(certs[0]), timeout=5.0, greeting_timeout=1.0)
    values.update(overrides)
    return ImapTarget(**values)


def names(result) -> list[str]:
    return [stage.name for stage in result.stages]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_good_login_passes_every_stage(dovecot, certs, security):  # noqa: F811
    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    result = check_imap(target(dovecot, certs, port=port, security=security))
    assert result.ok, (result.category, result.detail)
    expected = ["tls", "greeting"] if security == "ssl" else ["greeting", "starttls"]
    assert names(result) == ["dns", "connect", *expected, "login", "folder"]
    assert all(stage.ok for stage in result.stages)
    assert "IDLE" in result.capabilities
    assert result.folder_state["uidvalidity"]
    transcript = "\n".join(result.transcript)
    assert "LOGIN [redacted]" in transcript and "EXAMINE" in transcript  # read-only, never SELECT
    assert SMTP_PASSWORD not in transcript


def test_wrong_password_is_auth_failed_without_the_password(dovecot, certs):  # noqa: F811
    result = check_imap(target(dovecot, certs, password="not-the-" + SMTP_PASSWORD))
    assert (result.ok, result.stage, result.category) == (False, "login", "auth_failed")
    assert result.answer.code == "AUTHENTICATIONFAILED"
    assert "folder" not in names(result)
    everything = "\n".join(result.transcript) + result.detail + str(result.answer)
    assert SMTP_PASSWORD not in everything


def test_closed_port_is_connection_refused(dovecot, certs):  # noqa: F811
    result = check_imap(target(dovecot, certs, port=free_port()))
    assert (result.stage, result.category) == ("connect", "connection_refused")
    assert "login" not in names(result)


def test_starttls_on_the_ssl_port_is_caught_at_the_greeting(dovecot, certs):  # noqa: F811
    result = check_imap(target(dovecot, certs, security="starttls"))
    assert (result.stage, result.category) == ("greeting", "no_greeting")


def test_ssl_on_the_starttls_port_is_tls_on_plain_port(dovecot, certs):  # noqa: F811
    result = check_imap(target(dovecot, certs, port=dovecot.imap_port, security="ssl"))
    assert (result.stage, result.category) == ("tls", "tls_on_plain_port")
    assert "login" not in names(result)


def test_untrusted_certificate_stops_before_the_login(dovecot, certs):  # noqa: F811
    result = check_imap(target(dovecot, certs, ca_file=None))
    assert (result.stage, result.category) == ("tls", "certificate_invalid")
    assert "self-signed" in result.detail
    assert not any(line.startswith("C:") for line in result.transcript)  # nothing was sent, the password least of all


def test_missing_folder(dovecot, certs):  # noqa: F811
    result = check_imap(target(dovecot, certs, folder="Replies"))
    assert (result.stage, result.category) == ("folder", "folder_missing")


def test_address_policy_refuses_loopback_before_connecting(dovecot, certs):  # noqa: F811
    result = check_imap(target(dovecot, certs, address_policy=AddressPolicy.from_config("", "")))
    assert (result.ok, result.category) == (False, "not_allowed")
    assert "loopback" in result.detail and "IMAP host" in result.detail
    assert result.transcript == []


def test_address_policy_ports_are_imaps_own(dovecot, certs):  # noqa: F811
    policy = AddressPolicy.from_config("993,143", "127.0.0.0/8")
    result = check_imap(target(dovecot, certs, address_policy=policy))
    assert result.category == "not_allowed" and "993" in result.detail


def test_xoauth2_is_never_tried_where_the_server_does_not_offer_it(dovecot, certs):  # noqa: F811
    result = check_imap(target(dovecot, certs, auth="xoauth2", password="", access_token="ya29.secret-token-1"))
    assert (result.stage, result.category) == ("login", "auth_unsupported")
    assert "ya29.secret-token-1" not in "\n".join(result.transcript)


@pytest.mark.parametrize("stage, status, text, category", [
    ("login", "NO", "[ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 "
     "(Failure)", "app_password_required"),
    ("login", "NO", "[ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable "
     "your account for IMAP access. (Failure)", "imap_disabled"),
    ("folder", "BAD", "User is authenticated but not connected.", "imap_disabled"),
    ("login", "NO", "[AUTHENTICATIONFAILED] Invalid credentials (Failure)", "auth_failed"),
    ("login", "NO", "LOGIN failed.", "auth_failed"),
    ("folder", "NO", "[NONEXISTENT] Unknown Mailbox: Replies (Failure)", "folder_missing"),
    ("login", "NO", "[UNAVAILABLE] Temporary authentication failure.", "temporary_failure"),
])
def test_providers_real_answers_are_classified(stage, status, text, category):
    assert classify_answer(stage, answer_from_text(status, text)) == category
