"""Turning a failed IMAP stage into a category, a plain title and a hint.

Rules and texts are data (``catalogue/imap.toml``, its ``imap`` section): the
stage and the bracketed response code decide first, the answer's text
second. Exceptions on the wire (refused, timed out, TLS) are read like the
SMTP ones (``wizard.smtp.diagnosis``) and give the same category names.
"""
from __future__ import annotations

import imaplib
import re
import socket
import ssl
import tomllib
from functools import lru_cache
from pathlib import Path

from wizard.catalogue.hints import LenientValues
from wizard.inbound.imap_types import ImapAnswer, ImapFailure, ImapTarget
from wizard.smtp.certificates import explain_verification_error
from wizard.smtp.diagnosis import PLAINTEXT_PEER

__all__ = ["CATEGORIES", "imap_data", "answer_from_text", "classify_answer", "diagnose_answer",
           "diagnose_exception", "explain", "stage_label"]

DATA_FILE = Path(__file__).resolve().parent.parent / "catalogue" / "imap.toml"

CATEGORIES = (
    "ok", "dns_not_found", "connection_refused", "connection_timeout", "no_greeting", "tls_on_plain_port",
    "certificate_invalid", "tls_failed", "starttls_unsupported", "auth_unsupported", "auth_failed",
    "app_password_required", "imap_disabled", "folder_missing", "temporary_failure", "connection_dropped",
    "not_allowed", "login_unavailable", "unexpected",
)

_RESPONSE_CODE = re.compile(r"^\[([A-Za-z0-9.-]+)[^\]]*\]")


@lru_cache(maxsize=1)
def imap_data() -> dict:
    """The ``imap`` section of ``imap.toml``, with its patterns compiled; checked once."""
    with open(DATA_FILE, "rb") as handle:
        data = tomllib.load(handle)["imap"]
    for rule in data["rule"]:
        if "pattern" in rule:
            rule["regex"] = re.compile(rule["pattern"], re.IGNORECASE)
    named = {rule["category"] for rule in data["rule"]} | set(data["stage_default"].values())
    unknown, missing = named - set(CATEGORIES), set(CATEGORIES) - set(data["category"])
    if unknown or missing:
        raise ValueError(f"imap.toml: unknown categories {unknown}, missing {missing}")
    return data


def answer_from_text(status: str, text: bytes | str) -> ImapAnswer:
    """An answer from its status and text (the bracketed code, if any, read out)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(str(text).split())
    found = _RESPONSE_CODE.match(text)
    return ImapAnswer(status.upper(), found.group(1).upper() if found else None, text)


def _rule_matches(rule: dict, stage: str, answer: ImapAnswer, auth: str) -> bool:
    if "stages" in rule and stage not in rule["stages"]:
        return False
    if "auth" in rule and auth not in rule["auth"]:
        return False
    if "status" in rule and answer.status not in rule["status"]:
        return False
    if "codes" in rule and answer.code not in rule["codes"]:
        return False
    return not ("regex" in rule and not rule["regex"].search(answer.text))


def classify_answer(stage: str, answer: ImapAnswer, auth: str = "password") -> str:
    """The category for an unwanted ``answer`` at ``stage``."""
    data = imap_data()
    rule = next((r for r in data["rule"] if _rule_matches(r, stage, answer, auth)), None)
    if rule is not None:
        return rule["category"]
    return data["stage_default"].get(stage, "unexpected")


def diagnose_answer(stage: str, answer: ImapAnswer, target: ImapTarget) -> ImapFailure:
    return ImapFailure(classify_answer(stage, answer, target.auth), answer, str(answer))


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) < 300 else text[:297] + "…"


def diagnose_exception(stage: str, exc: BaseException, target: ImapTarget) -> ImapFailure:
    """A failure from an exception raised during ``stage`` (no server answer to read)."""
    detail = _describe(exc)
    if stage == "dns" or isinstance(exc, socket.gaierror):
        return ImapFailure("dns_not_found", None, detail)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ImapFailure("certificate_invalid", None, explain_verification_error(exc, target))
    if isinstance(exc, TimeoutError):
        return ImapFailure("no_greeting" if stage == "greeting" else "connection_timeout", None, detail)
    if isinstance(exc, ConnectionRefusedError) or (stage == "connect" and isinstance(exc, OSError)
                                                   and not isinstance(exc, ssl.SSLError)):
        return ImapFailure("connection_refused", None, detail)
    if isinstance(exc, (ConnectionError, EOFError, ssl.SSLEOFError, ssl.SSLZeroReturnError, imaplib.IMAP4.abort)):
        return ImapFailure("connection_dropped", None, detail)
    if isinstance(exc, ssl.SSLError):
        lowered = f"{exc.reason} {exc}".lower()
        if stage == "tls" and any(marker in lowered for marker in PLAINTEXT_PEER):
            return ImapFailure("tls_on_plain_port", None, detail)
        return ImapFailure("tls_failed", None, detail)
    return ImapFailure("unexpected", None, detail)


def explain(category: str, values: dict, *, auth: str = "password") -> tuple[str, str]:
    """``(title, hint)`` for ``category``, worded for the way the login is made."""
    entry = imap_data()["category"].get(category) or imap_data()["category"]["unexpected"]
    entry = entry.get("auth", {}).get(auth, entry)
    return entry["title"], entry["hint"].format_map(LenientValues(values))


def stage_label(stage: str) -> str:
    return imap_data()["stages"].get(stage, stage)
