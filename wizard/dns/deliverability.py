"""Will mail from this domain land in spam? SPF, DMARC and DKIM, in plain words.

``check_domain(domain, provider, resolver)`` returns one JSON-ready dict::

    {"domain": "yourstore.com", "provider": "gmail" | None,
     "spf":   {"status": "pass" | "provider_missing" | "missing" | "invalid", "record": str | None},
     "dmarc": {"status": "present" | "missing" | "invalid", "policy": "none" | "quarantine" | "reject" | None},
     "dkim":  {"status": "found" | "not_found" | "unknown", "selector": str | None},
     "advice": [sentences for the merchant; empty when everything is fine]}

SPF follows ``include:`` and ``redirect=`` through nested records and counts
every DNS-querying term (include, redirect, a, mx, ptr, exists) against RFC
7208's limit of 10, over the whole tree, since without a sending IP we
cannot know which branch a receiver stops at. An include with no SPF record
behind it, a loop or more than 10 look-ups make the record ``invalid``, as
they make a receiver's evaluation fail (permerror).

When a look-up fails (timeout, SERVFAIL), the area it belongs to cannot be
judged: SPF and DMARC then report ``invalid`` with the record or policy left
null (receivers treat an SPF or DMARC look-up they cannot complete as an
error too), DKIM reports ``unknown``, and ``advice`` says which look-up
failed. After a timeout, names under the silent name are not asked again,
so a dead DNS server costs one timeout, not one per selector.

Which include authorises a provider, its DKIM selectors and its DKIM help
text are catalogue data (``providers.toml``), not code.
"""
from __future__ import annotations

import re
import unicodedata

from wizard.catalogue import Catalogue, ProviderPreset, load_catalogue
from wizard.dns.dmarc import check_dmarc, dmarc_tags
from wizard.dns.resolver import DnsLookupError

SPF_LOOKUP_LIMIT = 10
SPF_LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Control, invisible-format (bidi overrides, zero-width) and line separators.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def normalise_domain(value: str) -> str:
    """``value`` as a lower-case ASCII domain (IDN → punycode), or ValueError saying what is wrong."""
    text = value.strip(" ") if isinstance(value, str) else ""
    if not text:
        raise ValueError("Enter a domain, for example yourstore.com.")
    if any(unicodedata.category(ch) in FORBIDDEN_CATEGORIES for ch in text):
        raise ValueError("The domain contains control or invisible characters; type it again, e.g. yourstore.com.")
    if any(ch.isspace() for ch in text):
        raise ValueError("A domain cannot contain spaces; enter it like yourstore.com.")
    if "@" in text:
        raise ValueError("Enter only the domain after the @ (e.g. yourstore.com), not a whole email address.")
    if SCHEME.match(text) or "/" in text or "\\" in text:
        raise ValueError("Enter just the domain, e.g. yourstore.com, without http://, a path or a port.")
    text = text.lower()
    if text.endswith("."):
        text = text[:-1]
    try:
        # Python's idna codec: IDN → punycode, and it refuses empty or over-long labels.
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(
            f"{text} is not a valid domain: each part between dots must have 1 to 63 characters."
        ) from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValueError("Enter the full domain with its ending, e.g. yourstore.com.")
    if not all(LABEL.match(label) for label in labels):
        raise ValueError(f"{text} is not a valid domain: use letters, digits and hyphens between the dots.")
    if len(ascii_name) > 253:
        raise ValueError("That domain is longer than DNS allows (253 characters).")
    if labels[-1].isdigit():
        raise ValueError("Enter a domain name, not an IP address.")
    return ascii_name


def check_domain(domain: str, provider: str | None, resolver, catalogue: Catalogue | None = None) -> dict:
    """Check SPF, DMARC and DKIM of ``domain`` for sending through ``provider`` (a catalogue key or None).

    ``resolver`` needs ``txt_records(name)``; see :mod:`wizard.dns.resolver`.
    Raises ValueError for a malformed domain or an unknown provider key.
    """
    domain = normalise_domain(domain)
    catalogue = catalogue or load_catalogue()
    preset = None
    if provider:
        preset = catalogue.get(provider)
        if preset is None:
            raise ValueError(f"Unknown provider {provider!r}; choose one of: {', '.join(catalogue.providers)}.")
    lookups = _Lookups(resolver)
    failures: list[tuple[str, DnsLookupError]] = []
    advice: list[str] = []

    spf, spf_advice, spf_failure = _check_spf(domain, preset, lookups)
    dmarc, dmarc_advice, dmarc_failure = check_dmarc(domain, lookups)
    dkim, dkim_advice, dkim_failure = _check_dkim(domain, preset, lookups)
    for area, failure in (("SPF", spf_failure), ("DMARC", dmarc_failure), ("DKIM", dkim_failure)):
        if failure is not None:
            failures.append((area, failure))
    advice = spf_advice + dmarc_advice + dkim_advice + _failure_advice(failures)
    if domain in catalogue.free_mail_domains:
        # Nothing in the records is the merchant's to change; say the one thing that helps.
        advice = [
            f"{domain} is a free mailbox domain: its SPF, DKIM and DMARC records belong to the mail "
            "service and you cannot change them. For business sending, use an address on your own domain."
        ]
    return {
        "domain": domain,
        "provider": provider or None,
        "spf": spf,
        "dmarc": dmarc,
        "dkim": dkim,
        "advice": advice,
    }


class _Lookups:
    """TXT look-ups for one check: cached, and never repeated under a name that timed out."""

    def __init__(self, resolver):
        self.resolver = resolver
        self.cache: dict[str, list[str]] = {}
        self.timed_out: dict[str, DnsLookupError] = {}

    def txt(self, name: str) -> list[str]:
        if name in self.cache:
            return self.cache[name]
        for silent, error in self.timed_out.items():
            if name == silent or name.endswith("." + silent):
                raise error
        try:
            records = self.resolver.txt_records(name)
        except DnsLookupError as error:
            if error.reason == "timeout":
                self.timed_out[name] = error
            raise
        self.cache[name] = records
        return records


# --- SPF ------------------------------------------------------------------

class _SpfBroken(Exception):
    """The record cannot be evaluated; the message is the advice."""


def _spf_records(texts: list[str]) -> list[str]:
    # "v=spf1" must be the whole first word: "v=spf10" is not SPF (RFC 7208 4.5).
    return [t.strip() for t in texts if t.split() and t.split()[0].lower() == "v=spf1"]


def _term(term: str) -> tuple[str, str]:
    """(name, value) of an SPF term: mechanisms without their qualifier, modifiers as name=value."""
    body = term.lstrip("+-~?")
    match = re.match(r"^([a-z][a-z0-9_.-]*)([:=/]?)(.*)$", body, re.IGNORECASE)
    if not match:
        return body.lower(), ""
    name, sep, rest = match.groups()
    return name.lower(), rest if sep in (":", "=") else ""


def _authorises(target: str, includes: tuple[str, ...]) -> bool:
    return any(target == inc or target.endswith("." + inc) for inc in includes)


class _SpfWalk:
    """Expands one SPF record tree, counting DNS-querying terms."""

    def __init__(self, domain: str, lookups: _Lookups, includes: tuple[str, ...]):
        self.domain = domain
        self.lookups = lookups
        self.includes = includes
        self.count = 0
        self.authorised = False

    def walk(self, name: str, record: str, path: tuple[str, ...]) -> None:
        terms = [_term(t) for t in record.split()[1:]]
        # RFC 7208 6.1: redirect= is ignored when the record has an "all".
        has_all = any(kind == "all" for kind, _ in terms)
        redirect = None
        for kind, value in terms:
            if kind == "include":
                self.follow("include", value, name, path)
            elif kind == "redirect" and not has_all:
                redirect = value  # evaluated after all mechanisms
            elif kind in SPF_LOOKUP_MECHANISMS:
                self.count_lookup()
        if redirect is not None:
            self.follow("redirect", redirect, name, path)

    def count_lookup(self) -> None:
        self.count += 1
        if self.count > SPF_LOOKUP_LIMIT:
            raise _SpfBroken(
                f"The SPF record of {self.domain} needs more than {SPF_LOOKUP_LIMIT} DNS look-ups "
                "(include, redirect, a, mx, ptr and exists, counted through every nested record), so "
                "receivers treat it as broken. Remove includes of services you no longer use, or "
                "replace a and mx with ip4:/ip6: ranges."
            )

    def follow(self, kind: str, value: str, owner: str, path: tuple[str, ...]) -> None:
        self.count_lookup()
        sep = ":" if kind == "include" else "="
        target = value.strip().rstrip(".").lower()
        if not target:
            raise _SpfBroken(f"The SPF record of {owner} has {kind}{sep} with no domain after it; fix or remove it.")
        if "%" in target:
            return  # a macro depends on the message being checked; it cannot be followed here
        if _authorises(target, self.includes):
            self.authorised = True
        if target in path:
            chain = " → ".join(path + (target,))
            raise _SpfBroken(
                f"The SPF record of {self.domain} loops back on itself ({chain}), so receivers treat "
                f"it as broken. Remove the {kind}{sep}{target} that points back."
            )
        records = _spf_records(self.lookups.txt(target))
        if len(records) != 1:
            problem = "has no SPF record" if not records else f"has {len(records)} SPF records"
            raise _SpfBroken(
                f"{kind}{sep}{target} in the SPF record of {owner} points to a name that {problem}, so "
                "receivers treat the whole record as broken. Correct the spelling or remove it."
            )
        self.walk(target, records[0], path + (target,))


def _with_include(record: str, include: str) -> str:
    """``record`` with ``include:`` added before its final all (or redirect)."""
    terms = record.split()
    for index, term in enumerate(terms[1:], start=1):
        if _term(term)[0] in ("all", "redirect"):
            return " ".join(terms[:index] + [f"include:{include}"] + terms[index:])
    return " ".join(terms + [f"include:{include}"])


def _check_spf(domain: str, preset: ProviderPreset | None, lookups: _Lookups):
    includes = preset.spf_includes if preset else ()
    try:
        records = _spf_records(lookups.txt(domain))
    except DnsLookupError as error:
        return {"status": "invalid", "record": None}, [], error
    if not records:
        if includes:
            example = f"v=spf1 include:{includes[0]} ~all"
            text = f"so receivers know {preset.name} may send for you"
        else:
            example = "v=spf1 include:<your provider's SPF domain> ~all"
            text = "listing the services that send your mail"
        return {"status": "missing", "record": None}, [
            f"Publish an SPF record for {domain}: a TXT record at {domain} with the value {example}, {text}."
        ], None
    if len(records) > 1:
        listed = " and ".join(records)
        return {"status": "invalid", "record": None}, [
            f"{domain} has {len(records)} SPF records ({listed}); receivers then treat SPF as broken. "
            "Merge them into a single TXT record that starts with v=spf1."
        ], None
    record = records[0]
    walk = _SpfWalk(domain, lookups, includes)
    try:
        walk.walk(domain, record, (domain,))
    except _SpfBroken as broken:
        return {"status": "invalid", "record": record}, [str(broken)], None
    except DnsLookupError as error:
        return {"status": "invalid", "record": record}, [], error
    if not includes or walk.authorised:
        return {"status": "pass", "record": record}, [], None
    others = ""
    if len(includes) > 1:
        others = f" (or {' or '.join('include:' + i for i in includes[1:3])}, if that is what your account shows)"
    return {"status": "provider_missing", "record": record}, [
        f"Add include:{includes[0]} to the SPF record of {domain}{others}, so receivers know "
        f"{preset.name} may send for you. Keep a single record, for example: {_with_include(record, includes[0])}"
    ], None


# --- DKIM -----------------------------------------------------------------

def _has_key(text: str) -> bool:
    # An empty p= means the key was revoked (RFC 6376 3.6.1).
    return bool(dmarc_tags(text).get("p"))


def _check_dkim(domain: str, preset: ProviderPreset | None, lookups: _Lookups):
    selectors = preset.dkim_selectors if preset else ()
    if not selectors:
        return {"status": "unknown", "selector": None}, [], None
    failure = None
    for selector in selectors:
        try:
            texts = lookups.txt(f"{selector}._domainkey.{domain}")
        except DnsLookupError as error:
            failure = failure or error
            continue
        if any(_has_key(t) for t in texts):
            return {"status": "found", "selector": selector}, [], None
    if failure is not None:
        return {"status": "unknown", "selector": None}, [], failure
    help_text = preset.dkim_help or "Ask your email provider which DKIM record to publish for {domain}."
    return {"status": "not_found", "selector": None}, [help_text.format(domain=domain)], None


def _failure_advice(failures: list[tuple[str, DnsLookupError]]) -> list[str]:
    """One sentence per failed look-up, naming every check it left undecided."""
    grouped: dict[int, tuple[DnsLookupError, list[str]]] = {}
    for area, error in failures:
        grouped.setdefault(id(error), (error, []))[1].append(area)
    advice = []
    for error, areas in grouped.values():
        names = " and ".join([", ".join(areas[:-1]), areas[-1]] if len(areas) > 1 else areas)
        advice.append(
            f"{error} So {names} could not be checked; try again later, and if it keeps happening "
            "ask whoever runs that domain's DNS to check its name servers."
        )
    return advice
