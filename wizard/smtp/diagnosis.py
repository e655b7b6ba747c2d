"""Turning a failed SMTP stage into a category, a plain title and a hint.

Rules and texts are data (``catalogue/diagnosis.toml``): the reply code and
enhanced status code decide first, the reply text second. The categories
are a closed set shared by the wizard, the troubleshooting page and the CLI.
How the target logs in (``SmtpTarget.auth``: a password or a sign-in token)
is data too: a rule may hold for one auth method only, and a category may
have its own title and hints for one (``[category.<name>.auth.<method>]``).
"""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass

from wizard.catalogue.hints import LenientValues
from wizard.smtp.certificates import explain_verification_error
from wizard.smtp.diagnosis_data import CATEGORIES as CATEGORIES
from wizard.smtp.diagnosis_data import diagnosis_data
from wizard.smtp.transcript import split_enhanced
from wizard.smtp.types import Reply, SmtpTarget

# OpenSSL's words for "this peer is not speaking TLS at all".
PLAINTEXT_PEER = ("wrong_version_number", "wrong version number", "http_request", "unknown_protocol",
                  "record layer failure", "packet length too long", "record_layer_failure")


@dataclass
class Failure:
    category: str
    reply: Reply | None
    detail: str
    suggestion: dict | None = None
    # A sending quota that resets (``[quota.<name>]``): seconds to wait before
    # the next try, and why, in plain words.
    retry_after: float | None = None
    wait_reason: str = ""


def suggestion_for(category: str, target: SmtpTarget) -> dict | None:
    """The settings to try next for a transport mismatch."""
    if category == "no_greeting" and target.security == "starttls":
        return {"port": 465, "security": "ssl"}
    if category == "tls_on_plain_port":
        return {"port": 587 if target.port == 465 else target.port, "security": "starttls"}
    return None


def _failure(category: str, reply, detail: str, target) -> Failure:
    return Failure(category, reply, detail, suggestion_for(category, target))


def enhanced_matches(enhanced: str | None, pattern: str) -> bool:
    """Whether ``enhanced`` (e.g. ``5.7.30``) falls under ``pattern`` (``5.7.3``, ``5.7``).

    Whole dotted components only: ``5.7.3`` is not a prefix of ``5.7.30``.
    """
    have = (enhanced or "").split(".")
    want = pattern.rstrip(".").split(".")
    return bool(enhanced) and have[:len(want)] == want


def _rule_matches(rule: dict, stage: str, reply: Reply, target) -> bool:
    if "stages" in rule and stage not in rule["stages"]:
        return False
    if "auth" in rule and getattr(target, "auth", "password") not in rule["auth"]:
        return False
    if "codes" in rule and reply.code not in rule["codes"]:
        return False
    if "enhanced" in rule and not any(enhanced_matches(reply.enhanced, p) for p in rule["enhanced"]):
        return False
    if "regex" in rule and not rule["regex"].search(reply.text):
        return False
    if "mentions" in rule:
        sender = getattr(target, "sender_email", "") or ""
        named = bool(sender) and sender.lower() in reply.text.lower()
        if named != (rule["mentions"] == "sender"):
            return False
    return True


def matching_rule(stage: str, reply: Reply, target) -> dict | None:
    """The first rule of ``diagnosis.toml`` that ``reply`` at ``stage`` matches."""
    return next((r for r in diagnosis_data()["rule"] if _rule_matches(r, stage, reply, target)), None)


def classify_reply(stage: str, reply: Reply, target) -> str:
    """The category for an unwanted ``reply`` at ``stage``."""
    rule = matching_rule(stage, reply, target)
    if rule is not None:
        return rule["category"]
    if 400 <= reply.code < 500:
        return "temporary_failure"
    return diagnosis_data()["stage_default"].get(stage, "unexpected")


def quota_for(stage: str, reply: Reply | None, target=None) -> dict | None:
    """``{"wait_seconds", "reason"}`` when ``reply`` is a sending quota that resets."""
    if reply is None:
        return None
    rule = matching_rule(stage, reply, target)
    if rule is None or "quota" not in rule:
        return None
    return diagnosis_data()["quota"][rule["quota"]]


def _with_quota(failure: Failure, stage: str, target) -> Failure:
    quota = quota_for(stage, failure.reply, target) if failure.category == "temporary_failure" else None
    if quota is not None:
        failure.retry_after = float(quota["wait_seconds"])
        failure.wait_reason = quota["reason"]
    return failure


def diagnose_reply(stage: str, reply, target, *, category: str | None = None, detail: str = "") -> Failure:
    """A failure from a server reply (or a known condition given as ``category``)."""
    if category is None:
        category = classify_reply(stage, reply, target)
    return _with_quota(_failure(category, reply, detail, target), stage, target)


def non_ascii_address_message(address: str) -> str | None:
    """The step-3 message for a sender address SMTP cannot carry, else None.

    Without the SMTPUTF8 extension (which the wizard does not use) an address
    must be plain ASCII; the wizard, the probe and the outbox say the same.
    """
    if not address or address.isascii():
        return None
    from wizard.catalogue import load_catalogue

    return load_catalogue().hints["sender_email_non_ascii"]["text"].format_map(LenientValues({"address": address}))


def diagnose_exception(stage: str, exc: BaseException, target) -> Failure:
    """A failure from an exception raised during ``stage``."""
    # smtplib reports a read timeout as "Connection unexpectedly closed";
    # the timeout itself is the more useful truth.
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
        exc = exc.__context__
    detail = _describe(exc)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        enhanced, text = split_enhanced(text)
        reply = Reply(exc.smtp_code, enhanced, text)
        return _with_quota(_failure(classify_reply(stage, reply, target), reply, detail, target), stage, target)
    if stage == "dns" or isinstance(exc, socket.gaierror):
        # A name that cannot be encoded (UnicodeError) is a DNS matter only here.
        return _failure("dns_not_found", None, detail, target)
    if isinstance(exc, UnicodeError) and stage in {"sender", "recipient"}:
        address = getattr(target, "sender_email", "") if stage == "sender" else ""
        message = non_ascii_address_message(address) if address else None
        category = "sender_rejected" if stage == "sender" else "recipient_rejected"
        return _failure(category, None, message or f"The address has characters SMTP cannot carry: {detail}", target)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _failure("certificate_invalid", None, explain_verification_error(exc, target), target)
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        category = "no_greeting" if stage == "greeting" else "connection_timeout"
        return _failure(category, None, detail, target)
    if isinstance(exc, ConnectionRefusedError) or (stage == "connect" and isinstance(exc, OSError)
                                                   and not isinstance(exc, ssl.SSLError)):
        return _failure("connection_refused", None, detail, target)
    # The server closed the connection (at any stage, during a TLS handshake
    # too): nothing it said explains why, so that is all we can say.
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, EOFError, ssl.SSLEOFError,
                        ssl.SSLZeroReturnError)):
        return _failure("connection_dropped", None, detail, target)
    if isinstance(exc, ssl.SSLError):
        lowered = f"{exc.reason} {exc}".lower()
        if stage == "tls" and any(marker in lowered for marker in PLAINTEXT_PEER):
            return _failure("tls_on_plain_port", None, detail, target)
        return _failure("tls_failed", None, detail, target)
    return _failure("unexpected", None, detail, target)


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) < 300 else text[:297] + "…"


def explain(category: str, provider_key: str | None, values: dict, *, auth: str = "password") -> tuple[str, str]:
    """``(title, hint)`` for ``category``, worded for the auth method and the provider.

    A category's ``auth.<method>`` variant replaces its title, hint and
    provider hints as a whole (a sign-in token never gets app-password
    advice); without one the category's own texts hold for every method.
    """
    entry = diagnosis_data()["category"][category]
    entry = entry.get("auth", {}).get(auth, entry)
    hint = entry.get("providers", {}).get(provider_key or "", entry["hint"])
    return entry["title"], hint.format_map(LenientValues(values))


# What Python's socket and ssl modules say in their own terms ("[Errno 111] Connection
# refused", "[SSL: WRONG_VERSION_NUMBER] … (_ssl.c:1006)"): kept for the transcript.
LIBRARY_TEXT = re.compile(r"\[Errno -?\d+\]|\[SSL[:\]]|_ssl\.c:\d+|^\[|Errno \d+")


def is_library_text(detail: str) -> bool:
    """Whether a stage detail is a library's raw error text rather than words written for the merchant."""
    return bool(detail) and bool(LIBRARY_TEXT.search(detail))


def category_title(category: str) -> str:
    """A failure category in plain words (its diagnosis title), for lists that show many outcomes."""
    entry = diagnosis_data()["category"].get(category)
    return entry["title"] if entry else "Something unexpected went wrong"


def stage_label(stage: str) -> str:
    return diagnosis_data()["stages"].get(stage, stage)
