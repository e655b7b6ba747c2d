"""Auto-detect ("find my settings"): which host, port and security answer.

From a sender address (or a host): guess the provider from the domain and
its MX records, pick the candidate hosts, then try every port with both
security modes at once, each with a short timeout and without credentials
(the probe stops after EHLO on an encrypted connection). The answer lists
every combination with its outcome and recommends one: 587 + STARTTLS
first, then 465 + SSL/TLS, then the others.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from wizard.catalogue import LOCAL_KEY, Catalogue
from wizard.dns.provider_guess import guess_provider
from wizard.smtp.probe import probe_smtp
from wizard.smtp.types import SmtpTarget

DEFAULT_PORTS = (587, 465, 2525, 25)
SECURITY_MODES = ("starttls", "ssl")
PREFERENCE = [(587, "starttls"), (465, "ssl")]


def candidate_hosts(domain: str, provider_key: str | None, catalogue: Catalogue, email: str = "") -> list[str]:
    """The SMTP hosts worth trying for ``domain`` (``email``: the sender, for Zoho's two kinds of account)."""
    preset = catalogue.get(provider_key)
    if preset is not None and preset.key != LOCAL_KEY:
        if preset.host:
            return [preset.host_for_account(preset.host, preset.account_kind(email))]
        if preset.host_template:
            return [preset.host_for_region(preset.default_region)]
    # An own mail server usually answers as smtp.<domain> or mail.<domain>.
    return [f"smtp.{domain}", f"mail.{domain}"]


def _rank(candidate: dict) -> tuple:
    key = (candidate["port"], candidate["security"])
    return (PREFERENCE.index(key) if key in PREFERENCE else len(PREFERENCE), candidate["port"])


def detect_settings(*, email: str | None = None, host: str | None = None, ports=DEFAULT_PORTS,
                    timeout: float = 5.0, ca_file: str | None = None, nameserver: str | None = None,
                    resolver=None, catalogue: Catalogue, address_policy=None, provider: str | None = None) -> dict:
    """Probe the candidates concurrently; the result is JSON-ready.

    ``{"provider", "candidates": [{"host", "port", "security", "ok", "category"}],
    "recommended": {"host", "port", "security"} or None, "elapsed_ms"}``.
    ``provider`` (a catalogue key) skips the guess. Raises ValueError for a
    malformed address or host.
    """
    started = time.monotonic()
    if host:
        hosts = [host.strip().lower().rstrip(".")]
        owner = catalogue.provider_for_host(hosts[0])
        provider = provider or (owner.key if owner else None)
    elif email:
        domain = email.strip().rpartition("@")[2].lower()
        if provider is None and resolver is not None:
            provider = guess_provider(email, resolver, catalogue)
        hosts = candidate_hosts(domain, provider, catalogue, email.strip())
    else:
        raise ValueError("give a sender address or a host")
    # The guess itself spent part of the budget; the probes share what is left.
    remaining = max(0.5, timeout - (time.monotonic() - started))
    combinations = [(h, p, s) for h in hosts for p in ports for s in SECURITY_MODES]

    def attempt(combination) -> dict:
        h, p, s = combination
        target = SmtpTarget(host=h, port=p, security=s, username="", password="", timeout=remaining,
                            greeting_timeout=min(5.0, remaining / 2), ca_file=ca_file, nameserver=nameserver,
                            address_policy=address_policy)
        result = probe_smtp(target, authenticate=False)
        found = {"host": h, "port": p, "security": s, "ok": result.ok, "category": result.category}
        # Only the web app has a policy: the CLI's JSON never carries this key.
        return found | ({"refusal": result.refusal} if result.refusal else {})

    with ThreadPoolExecutor(max_workers=min(32, len(combinations))) as pool:
        candidates = list(pool.map(attempt, combinations))
    working = sorted((c for c in candidates if c["ok"]), key=_rank)
    recommended = {k: working[0][k] for k in ("host", "port", "security")} if working else None
    return {
        "provider": provider,
        "candidates": candidates,
        "recommended": recommended,
        "elapsed_ms": int((time.monotonic() - started) * 1000),
    }
