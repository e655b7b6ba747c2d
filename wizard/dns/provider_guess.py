"""Guess the email provider of an address or domain.

Consumer mailbox domains (gmail.com, outlook.com …) are known by name; any
other domain is matched through its MX records against each provider's
``mx_patterns`` in the catalogue (e.g. ``aspmx.l.google.com`` → gmail). A
guess only: None when nothing matches or DNS cannot tell.
"""
from __future__ import annotations

from wizard.catalogue import LOCAL_KEY, Catalogue
from wizard.dns.deliverability import normalise_domain
from wizard.dns.resolver import DnsLookupError

# Their MX hosts (gmail-smtp-in.l.google.com, *.olc.protection.outlook.com)
# are not the business ones in mx_patterns, so these are known by name.
MAILBOX_DOMAINS = {
    "gmail.com": "gmail",
    "googlemail.com": "gmail",
    "outlook.com": "microsoft365",
    "hotmail.com": "microsoft365",
    "live.com": "microsoft365",
    "msn.com": "microsoft365",
    "zoho.com": "zoho",
    "zohomail.com": "zoho",
    "zohomail.eu": "zoho",
}


def guess_provider(email_or_domain: str, resolver, catalogue: Catalogue) -> str | None:
    """The catalogue key of the provider behind ``email_or_domain``, or None.

    Raises ValueError when the domain part is malformed. A DNS failure gives
    None: a guess that cannot be made is no guess.
    """
    text = (email_or_domain or "").strip(" ")
    domain = normalise_domain(text.rpartition("@")[2])
    known = MAILBOX_DOMAINS.get(domain)
    if known and catalogue.get(known):
        return known
    try:
        hosts = resolver.mx_hosts(domain)
    except DnsLookupError:
        return None
    if not hosts:
        return None
    # Only the most preferred MX decides: a backup MX elsewhere does not say
    # where the mailboxes live (and a filtering service in front hides them).
    host = hosts[0]
    for preset in catalogue.providers.values():
        if preset.key == LOCAL_KEY:
            continue
        if any(host == suffix or host.endswith("." + suffix) for suffix in preset.mx_patterns):
            return preset.key
    return None
