"""Host names as merchants type them: IP literals, URLs pasted instead of a
host, the shape of a DNS name, and the known provider host a typo was meant to
be. No Flask; used by the field checks and by the connection targets."""
from __future__ import annotations

import ipaddress
import re

from wizard.catalogue import Catalogue

HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


def ip_literal(raw: str) -> str | None:
    """``raw`` as a bare IP address (``[::1]`` -> ``::1``), or None if it is a name."""
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def bare_host(raw: str) -> str:
    """``smtp://smtp.gmail.com:587/x`` -> ``smtp.gmail.com``."""
    without_scheme = SCHEME.sub("", raw)
    host = re.split(r"[/?#]", without_scheme, maxsplit=1)[0]
    host = host.rsplit("@", 1)[-1]
    return host.split(":")[0] or "smtp.example.com"


def is_hostname(host: str) -> bool:
    if len(host) > 253 or "." not in host and host != "localhost":
        return False
    if re.fullmatch(r"[\d.]+", host):
        parts = host.split(".")
        return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)
    return all(HOST_LABEL.match(label) for label in host.split("."))


def nearest_known_host(host: str, catalogue: Catalogue) -> str | None:
    """A known SMTP host one or two edits away from ``host`` (a typo), if any."""
    best, best_distance = None, 3
    for known in catalogue.known_hosts():
        if abs(len(known) - len(host)) >= best_distance:
            continue
        distance = edit_distance(host, known, best_distance)
        if 0 < distance < best_distance:
            best, best_distance = known, distance
    return best


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count once), capped at ``limit``."""
    previous2: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            cost = char_a != char_b
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if previous2 is not None and i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) >= limit:
            return limit
        previous2, previous = previous, current
    return previous[-1]
