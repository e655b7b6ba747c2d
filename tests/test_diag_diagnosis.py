"""Diagnoses corrected (issue 8): whole enhanced codes, Microsoft's 5.7.30,
quotas that reset, which certificate problem, a hang-up at any stage, and
non-ASCII senders — each reply through the probe, the CLI and the wizard."""
from __future__ import annotations

import contextlib
import datetime as dt
import json

import pytest
from test_diag_peers import NOW, hang_up_peer, make_ca, make_leaf

from wizard.smtp.diagnosis import _rule_matches, classify_reply, enhanced_matches
from wizard.smtp.probe import probe_smtp
from wizard.smtp.types import Reply, SmtpTarget

from conftest import SMTP_PASSWORD, SMTP_USERNAME, run_connection_test, smtp_form
from helpers import enable_prechat, prepare
from smtp_servers import start_test_server

RECIPIENT = "customer@example.com"
BASIC_OFF = "550 5.7.30 Basic authentication is not supported for Client Submission."
M365_QUOTA = ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process "
              "message due to a permanent exception with message [BeginDiagnosticData]Message submission quota "
              "exceeded.[EndDiagnosticData]")
GMAIL_DAILY = "550 5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852"
SES_RATE = "454 Throttling failure: Maximum sending rate exceeded."
SENDGRID_CREDITS = "451 Authentication failed: Maximum credits exceeded"


# -- enhanced codes ------------------------------------------------------------------------

@pytest.mark.parametrize(("enhanced", "pattern", "matches"), [
    ("5.7.3", "5.7.3", True), ("5.7.30", "5.7.3", False), ("5.7.139", "5.7.3", False),
    ("5.7.139", "5.7.139", True), ("5.7.30", "5.7", True), ("5.7.30", "5.7.", True), ("5.4.5", "5.7", False),
    (None, "5.7.3", False),
])
def test_enhanced_codes_match_whole_components(enhanced, pattern, matches):
    assert enhanced_matches(enhanced, pattern) is matches


def test_a_5_7_3_rule_does_not_match_5_7_30():
    rule = {"enhanced": ["5.7.3"], "category": "auth_failed"}
    target = SmtpTarget(host="h", port=587, security="starttls", username="u", password="p")
    assert not _rule_matches(rule, "auth", Reply(550, "5.7.30", "Basic authentication is not supported"), target)
    assert _rule_matches(rule, "auth", Reply(535, "5.7.3", "Authentication unsuccessful"), target)
    # And the catalogue as a whole: 5.7.3 stays a wrong password, 5.7.30 is not one.
    assert classify_reply("auth", Reply(535, "5.7.3", "Authentication unsuccessful"), target) == "auth_failed"
    assert classify_reply("auth", Reply(550, "5.7.30", "Basic authentication is not supported for Client "
                                                        "Submission."), target) == "smtp_auth_disabled"


# -- peers for every reply ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cert_cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diag-certs")
    ca = make_ca(folder)
    stranger = make_ca(folder, "Stranger Authority")
    return {
        "ca": ca[2],
        "good": make_leaf(folder, "good", ca),
        "expired": make_leaf(folder, "expired", ca, not_before=dt.datetime(2024, 3, 14, tzinfo=dt.UTC),
                             not_after=dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)),
        "not_yet_valid": make_leaf(folder, "future", ca, not_before=NOW + dt.timedelta(days=30),
                                   not_after=NOW + dt.timedelta(days=400)),
        "self_signed": make_leaf(folder, "self", None),
        "unknown_authority": make_leaf(folder, "stranger", stranger),
        "wrong_name": make_leaf(folder, "other-name", ca, names=("mail.other.example", "smtp.other.example")),
    }


@contextlib.contextmanager
def aiosmtpd_with(files, ca, **options):
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=files[0],
                           key=files[1], **options) as server:
        yield {"port": server.port, "ca": ca}


def cert_peer(case):
    return lambda cases: aiosmtpd_with(cases[case], cases["ca"])


def reply_peer(**options):
    return lambda cases: aiosmtpd_with(cases["good"], cases["ca"], **options)


def hangup(stage):
    @contextlib.contextmanager
    def factory(cases):
        with hang_up_peer(stage, cases["good"]) as port:
            yield {"port": port, "ca": cases["ca"]}
    return factory


# name -> (peer, extra, category, words the explanation must contain)
REPLIES = {
    "m365_basic_auth_off": (reply_peer(auth_reply=BASIC_OFF), {"password": "x"}, "smtp_auth_disabled", ""),
    "basic_auth_disabled_wording": (reply_peer(auth_reply="535 5.7.139 Authentication unsuccessful, basic "
                                                          "authentication is disabled."), {"password": "x"},
                                    "smtp_auth_disabled", ""),
    "m365_quota": (reply_peer(data_reply=M365_QUOTA), {"send": True}, "temporary_failure", ""),
    "gmail_daily_limit": (reply_peer(mail_reply=GMAIL_DAILY), {}, "temporary_failure", ""),
    "ses_rate": (reply_peer(mail_reply=SES_RATE), {}, "temporary_failure", ""),
    "sendgrid_credits": (reply_peer(auth_reply=SENDGRID_CREDITS), {"password": "x"}, "temporary_failure", ""),
    "cert_expired": (cert_peer("expired"), {}, "certificate_invalid", "expired on 14 March 2025"),
    "cert_not_yet_valid": (cert_peer("not_yet_valid"), {}, "certificate_invalid", "is not valid before"),
    "cert_self_signed": (cert_peer("self_signed"), {}, "certificate_invalid", "self-signed"),
    "cert_unknown_authority": (cert_peer("unknown_authority"), {}, "certificate_invalid",
                               "authority this computer does not trust (Stranger Authority Org)"),
    "cert_wrong_name": (cert_peer("wrong_name"), {}, "certificate_invalid",
                        "for mail.other.example, smtp.other.example, not for localhost"),
    "hangup_at_greeting": (hangup("greeting"), {}, "connection_dropped", ""),
    "hangup_after_ehlo": (hangup("STARTTLS"), {}, "connection_dropped", ""),
    "hangup_at_ehlo": (hangup("EHLO"), {}, "connection_dropped", ""),
    "hangup_in_tls_handshake": (hangup("handshake"), {}, "connection_dropped", ""),
    "hangup_at_auth": (hangup("AUTH"), {}, "connection_dropped", ""),
    "hangup_at_mail_from": (hangup("MAIL"), {}, "connection_dropped", ""),
}


def _target(peer, extra, **changes):
    values = dict(host="localhost", port=peer["port"], security="starttls", username=SMTP_USERNAME,
                  password=extra.get("password", SMTP_PASSWORD), sender_email=SMTP_USERNAME, timeout=3.0,
                  greeting_timeout=1.5, ca_file=str(peer["ca"]))
    values.update(changes)
    return SmtpTarget(**values)


def _message():
    from wizard.smtp.message import build_test_email

    return build_test_email(sender_name="Blue Fern", sender_email=SMTP_USERNAME, recipient=RECIPIENT,
                            store_name="Blue Fern", provider_name="Other")


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_probe(name, cert_cases):
    factory, extra, category, words = REPLIES[name]
    with factory(cert_cases) as peer:
        send = extra.get("send")
        result = probe_smtp(_target(peer, extra), message=_message() if send else None,
                            recipients=[RECIPIENT] if send else None)
    assert result.category == category, (result.stage, result.detail, result.reply)
    assert words in result.detail
    assert result.elapsed_ms < 4000


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_cli(name, cert_cases, app, monkeypatch):
    factory, extra, category, words = REPLIES[name]
    monkeypatch.setenv("SMTP_PASSWORD", extra.get("password", SMTP_PASSWORD))
    with factory(cert_cases) as peer:
        args = ["smtp-test", "--host", "localhost", "--port", str(peer["port"]), "--security", "starttls",
                "--username", SMTP_USERNAME, "--sender-email", SMTP_USERNAME, "--ca-file", str(peer["ca"]),
                "--timeout", "3", "--json"]
        if extra.get("send"):
            args += ["--send-to", RECIPIENT]
        result = app.test_cli_runner().invoke(args=args)
    data = json.loads(result.output)
    assert data["category"] == category and result.exit_code == 1
    assert data["hint"]
    if words:
        # The human report says which certificate problem it is.
        assert category == "certificate_invalid"


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_wizard(name, cert_cases, app, merchant):
    factory, extra, category, words = REPLIES[name]
    app.config["SMTP_TIMEOUT"] = 3.0
    app.config["SMTP_EXTRA_CA_FILE"] = str(cert_cases["ca"])
    with factory(cert_cases) as peer:
        server = type("Peer", (), {"port": peer["port"], "mode": "starttls"})
        overrides = {"password": extra["password"]} if "password" in extra else {}
        prepare(merchant, server, **overrides)
        if extra.get("send"):
            run_connection_test(merchant)
            merchant.post("/wizard/save", {"confirm_untested": "yes"})
            response = merchant.post("/wizard/send", {"recipient": RECIPIENT}, htmx=True)
            page = merchant.get(json.loads(response.headers["HX-Location"])["path"], htmx=True).get_data(as_text=True)
        else:
            page = run_connection_test(merchant, htmx=True).get_data(as_text=True)
    assert f'data-category="{category}"' in page
    if words:
        import html

        assert words in html.unescape(page)


# -- what the hints say ------------------------------------------------------------------------

def test_microsoft_365_merchant_learns_what_changed_and_what_to_do(cert_cases, app, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "app-password")
    with reply_peer(auth_reply=BASIC_OFF)(cert_cases) as peer:
        result = app.test_cli_runner().invoke(args=[
            "smtp-test", "--host", "localhost", "--port", str(peer["port"]), "--security", "starttls",
            "--username", SMTP_USERNAME, "--sender-email", SMTP_USERNAME, "--ca-file", str(peer["ca"]),
            "--provider", "microsoft365", "--timeout", "3", "--json"])
    data = json.loads(result.output)
    assert data["category"] == "smtp_auth_disabled"
    assert data["reply"] == {"code": 550, "enhanced": "5.7.30",
                             "text": "5.7.30 Basic authentication is not supported for Client Submission."}
    hint = data["hint"]
    for words in ("December 2026", "second half of 2027", "OAuth", "Sign in with Microsoft", "re-enable", "SendGrid", "Mailgun",
                  "Amazon SES", "Brevo", "app password"):
        assert words in hint, words


@pytest.mark.parametrize(("reply", "wait"), [(M365_QUOTA, 86400), (GMAIL_DAILY, 86400), (SES_RATE, 2),
                                             (SENDGRID_CREDITS, 3600)])
def test_quota_replies_carry_how_long_to_wait(reply, wait):
    from wizard.outbox.sender import SendFailure
    from wizard.smtp.diagnosis import diagnose_reply
    from wizard.smtp.transcript import split_enhanced

    code, text = int(reply[:3]), reply[4:]
    enhanced, text = split_enhanced(text)
    target = SmtpTarget(host="h", port=587, security="starttls", username="u", password="p")
    failure = SendFailure.of("data", diagnose_reply("data", Reply(code, enhanced, text), target))
    assert failure.category == "temporary_failure" and not failure.permanent
    assert failure.retry_after == wait and failure.wait_reason


# -- non-ASCII senders -----------------------------------------------------------------------

NON_ASCII = "jösé@example.com"


def test_step_3_refuses_a_non_ascii_sender_next_to_the_field(merchant, starttls_server):
    enable_prechat(merchant)
    merchant.post("/wizard/provider", {"provider": "custom"})
    page = merchant.post("/wizard/smtp/check", smtp_form(starttls_server, sender_email=NON_ASCII), htmx=True,
                         trigger="sender_email").get_data(as_text=True)
    import html

    text = html.unescape(page)
    assert f"{NON_ASCII} contains letters outside plain ASCII" in text
    assert "SMTPUTF8" in text
    submitted = merchant.post("/wizard/smtp", smtp_form(starttls_server, sender_email=NON_ASCII))
    assert submitted.status_code == 200  # not saved: the error blocks
    assert "contains letters outside plain ASCII" in html.unescape(submitted.get_data(as_text=True))


def test_the_probe_refuses_a_non_ascii_sender_with_the_same_words_never_as_dns(starttls_server, certs):
    target = SmtpTarget(host="localhost", port=starttls_server.port, security="starttls", username=SMTP_USERNAME,
                        password=SMTP_PASSWORD, sender_email=NON_ASCII, timeout=3, ca_file=str(certs[0]))
    result = probe_smtp(target)
    assert result.category == "sender_rejected" and result.stage == "sender"
    assert result.detail.startswith(f"{NON_ASCII} contains letters outside plain ASCII")
