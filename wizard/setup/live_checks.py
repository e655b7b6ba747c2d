"""Step 3's checks that need this installation: its address policy and its DNS.

``wizard.smtp.validation`` judges the typed values on their own; two things
it cannot know are whether this server may connect to the port at all, and
whether a near-miss of a known host (a typo) exists. Both are decided here,
before a test, so the merchant reads them next to the field instead of as a
failed connection in step 4."""
from __future__ import annotations

import socket

from wizard.catalogue import LOCAL_KEY, Catalogue
from wizard.catalogue.hints import render_fix, render_hint
from wizard.smtp.lookup import resolve, resolve_with_nameserver
from wizard.smtp.target_options import TargetOptions
from wizard.smtp.validation import Finding

# A typo check must not hold up typing: an answer later than this counts as "exists".
LOOKUP_SECONDS = 1.5


def host_exists(host: str, nameserver: str | None, timeout: float = LOOKUP_SECONDS) -> bool:
    """False only when DNS says the name does not exist; a slow or broken lookup is no proof."""
    try:
        if nameserver:
            resolve_with_nameserver(nameserver, host, 25, timeout)
        else:
            resolve(host, 25, timeout)
    except socket.gaierror as exc:
        return exc.errno not in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
    except (OSError, TimeoutError):
        return True
    return True


def _finding(catalogue: Catalogue, provider: str, field: str, code: str, params: dict) -> Finding:
    level, text = render_hint(catalogue.hints, code, catalogue.get(provider), params)
    fix = render_fix(catalogue.hints, code, params) or ("", "", "")
    return Finding(field, code, level, text, *fix)


def with_installation_checks(findings: list[Finding], typed: dict[str, str], provider: str, catalogue: Catalogue,
                             options: TargetOptions) -> list[Finding]:
    """``findings`` plus the port policy; a near-miss host that does not exist becomes a Fix."""
    checked: list[Finding] = []
    host = typed.get("host", "").strip().lower().rstrip(".")
    for finding in findings:
        if finding.code == "host_near_miss" and not host_exists(host, options.nameserver):
            finding = _finding(catalogue, provider, "host", "host_near_miss_unknown",
                               {"host": host, "suggestion": finding.fix_value})
        checked.append(finding)
    port = typed.get("port", "").strip()
    policy = options.address_policy
    port_broken = any(f.field == "port" and f.is_error for f in checked)
    if policy is not None and port.isascii() and port.isdigit() and not port_broken and 0 < int(port) < 65536:
        if provider == LOCAL_KEY and options.local_mailbox:
            policy = policy.with_allowed(*options.local_mailbox)
        refusal = policy.port_refusal(int(port))
        if refusal:
            checked.append(_finding(catalogue, provider, "port", "port_not_allowed", {"policy": refusal}))
    return checked
