"""DMARC for the deliverability check: the sender's own record, or the policy
inherited from its organisational domain (RFC 7489 6.6.3, with the public
suffix list), and plain advice naming whatever is wrong with it."""
from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from wizard.dns.resolver import DnsLookupError

DMARC_POLICIES = ("none", "quarantine", "reject")


class TxtLookups(Protocol):
    """The check's cached TXT look-ups (``deliverability``)."""

    def txt(self, name: str) -> list[str]: ...


def dmarc_tags(text: str) -> dict[str, str]:
    """Tag=value pairs of a DMARC or DKIM record; the first of a repeated tag wins."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


def _is_dmarc(text: str) -> bool:
    """A DMARC record starts with v=DMARC1 (RFC 7489 6.4), however broken the rest is."""
    return text.strip().lower().replace(" ", "").startswith("v=dmarc1")


@lru_cache(maxsize=1)
def _public_suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organisational_domain(domain: str) -> str | None:
    """The organisational domain of ``domain`` (RFC 7489 3.2, public suffix list + one label)."""
    return _public_suffixes().privatesuffix(domain)


def _read_dmarc(name: str, lookups: TxtLookups) -> tuple[list[str] | None, DnsLookupError | None]:
    try:
        return [t for t in lookups.txt(name) if _is_dmarc(t)], None
    except DnsLookupError as error:
        return None, error


def _dmarc_problem(name: str, records: list[str], example: str) -> str | None:
    """Why the DMARC record set at ``name`` does not count, or None when it does."""
    if len(records) > 1:
        return (f"{name} has {len(records)} DMARC records, so receivers ignore them all. "
                f"Keep a single one, e.g. {example}")
    tags = dmarc_tags(records[0])
    if tags.get("v", "").upper() != "DMARC1":
        return (f"The DMARC record at {name} does not start with a clean \"v=DMARC1;\" (it reads "
                f"\"{records[0][:80]}\"): separate the tags with semicolons, e.g. {example}")
    if "p" not in tags:
        return (f"The DMARC record at {name} has no p= policy tag, so receivers ignore it. Add p=none "
                f"(watch only), p=quarantine or p=reject — edit this record rather than adding a second "
                f"one, e.g. {example}")
    if tags["p"].lower() not in DMARC_POLICIES:
        return (f"The DMARC record at {name} has p={tags['p']}, which is not a policy, so receivers ignore "
                f"the record. Change it to p=none (watch only), p=quarantine or p=reject — edit this record "
                f"rather than adding a second one.")
    return None


def check_dmarc(domain: str, lookups: TxtLookups):
    name = f"_dmarc.{domain}"
    example = f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"
    records, error = _read_dmarc(name, lookups)
    if error is not None:
        return {"status": "invalid", "policy": None}, [], error
    if records:
        problem = _dmarc_problem(name, records, example)
        if problem:
            return {"status": "invalid", "policy": None}, [problem], None
        return {"status": "present", "policy": dmarc_tags(records[0])["p"].lower()}, [], None
    # No record of its own: receivers use the organisational domain's
    # (RFC 7489 6.6.3), with its sp= policy for subdomains when it has one.
    organisation = organisational_domain(domain)
    if organisation and organisation != domain:
        parent = f"_dmarc.{organisation}"
        inherited, error = _read_dmarc(parent, lookups)
        if error is not None:
            return {"status": "invalid", "policy": None}, [], error
        if inherited and _dmarc_problem(parent, inherited, example) is None:
            tags = dmarc_tags(inherited[0])
            policy = tags.get("sp", "").lower()
            tag = "sp"
            if policy not in DMARC_POLICIES:
                policy, tag = tags["p"].lower(), "p"
            return {"status": "present", "policy": policy}, [
                f"{domain} has no DMARC record of its own, so receivers apply the one of its organisational "
                f"domain {organisation} ({parent}: {tag}={policy}). Nothing to add; a record at {name} would "
                f"replace that policy for {domain}."
            ], None
    return {"status": "missing", "policy": None}, [
        f"Publish a DMARC record at {name}: a TXT record with the value {example} "
        "(p=none only watches; reports go to that address, so make sure it exists)."
    ], None
