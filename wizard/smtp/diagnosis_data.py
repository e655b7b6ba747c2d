"""The diagnosis rules and texts (``catalogue/diagnosis.toml``), loaded and checked once.

Read by ``wizard.smtp.diagnosis`` (rules, categories, hints) and
``wizard.smtp.certificates`` (the certificate texts), so neither needs the other's loader.
"""
from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path

from wizard.smtp.types import AUTH_METHODS

CATEGORIES = (
    "ok", "dns_not_found", "connection_refused", "connection_timeout", "no_greeting",
    "tls_on_plain_port", "certificate_invalid", "tls_failed", "starttls_unsupported",
    "auth_unsupported", "auth_failed", "app_password_required", "smtp_auth_disabled",
    "sender_rejected", "recipient_rejected", "message_rejected", "temporary_failure",
    "connection_dropped", "unexpected", "port_not_allowed",
)
DATA_FILE = Path(__file__).resolve().parent.parent / "catalogue" / "diagnosis.toml"


def _check_auth_methods(data: dict) -> None:
    """Rules and hint variants name only known auth methods; a variant has its own title and hint."""
    named = {method for rule in data["rule"] for method in rule.get("auth", [])}
    for name, entry in data["category"].items():
        for method, variant in entry.get("auth", {}).items():
            named.add(method)
            if "title" not in variant or "hint" not in variant:
                raise ValueError(f"diagnosis.toml: category.{name}.auth.{method} needs a title and a hint")
    unknown = named - set(AUTH_METHODS)
    if unknown:
        raise ValueError(f"diagnosis.toml: unknown auth methods {unknown}")


@lru_cache(maxsize=1)
def diagnosis_data() -> dict:
    with open(DATA_FILE, "rb") as handle:
        data = tomllib.load(handle)
    for rule in data["rule"]:
        if "pattern" in rule:
            rule["regex"] = re.compile(rule["pattern"], re.IGNORECASE)
    unknown_quotas = {r["quota"] for r in data["rule"] if "quota" in r} - set(data.get("quota", {}))
    if unknown_quotas:
        raise ValueError(f"diagnosis.toml: rules name unknown quotas {unknown_quotas}")
    _check_auth_methods(data)
    unknown = {r["category"] for r in data["rule"]} - set(CATEGORIES)
    missing = set(CATEGORIES) - set(data["category"])
    if unknown or missing:
        raise ValueError(f"diagnosis.toml: unknown {unknown}, missing {missing}")
    return data
