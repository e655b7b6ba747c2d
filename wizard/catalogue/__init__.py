"""The provider catalogue and the hint texts, loaded from data files.

``providers.toml`` holds every provider preset (hosts, ports, security,
username and sender rules, notes, official links) and ``hints.toml`` every
message the wizard shows next to a field, keyed by a stable code. The
wizard, the validation, the diagnosis and the tests all read them here.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCAL_KEY = "local"
SECURITY_LABELS = {"starttls": "STARTTLS", "ssl": "SSL/TLS"}


@dataclass(frozen=True)
class PortOption:
    port: int
    security: str


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class ProviderPreset:
    """Everything the wizard knows about one provider."""

    key: str
    name: str
    kind: str  # mailbox | service | custom | local
    good_for: str
    prepare: tuple[str, ...]
    host: str
    hosts: tuple[str, ...]
    read_hosts: tuple[str, ...]
    port: int
    security: str
    ports: tuple[PortOption, ...]
    username_rule: str
    username_placeholder: str
    username_help: str
    sender_rule: str
    sender_help: str
    password_rule: str
    password_label: str
    password_help: str
    notes: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    host_template: str = ""
    regions: tuple[str, ...] = ()
    default_region: str = ""
    # Deliverability facts read by wizard.dns: the SPF include domains that
    # authorise this provider, its usual DKIM selectors (empty when they
    # cannot be guessed), MX host suffixes that identify it, and the
    # "turn on DKIM" advice ({domain} is filled in).
    spf_includes: tuple[str, ...] = ()
    dkim_selectors: tuple[str, ...] = ()
    mx_patterns: tuple[str, ...] = ()
    dkim_help: str = ""
    # The provider's usual sending cap per rolling 24 hours (0: none), and a
    # lower one for a sender on a free consumer domain (@gmail.com …; 0: same).
    daily_limit: int = 0
    free_mail_daily_limit: int = 0
    # Other names the diagnostic commands accept for this key (old keys).
    aliases: tuple[str, ...] = ()
    # Extra host shapes: a FIPS endpoint per region where the provider has one.
    fips_host_template: str = ""
    fips_regions: tuple[str, ...] = ()
    # Own-domain (organisation) accounts sign in at another host than
    # personal ones: the first label of the host changes (smtp → smtppro).
    personal_host_label: str = ""
    organisation_host_label: str = ""
    personal_domains: tuple[str, ...] = ()
    # Accounts that accept only OAuth sign-in (no password over SMTP at all).
    oauth_only_domains: tuple[str, ...] = ()
    oauth_only_hosts: tuple[str, ...] = ()
    # The sign-in provider (wizard.oauth key) offered instead of a password; "" for none.
    sign_in: str = ""
    # One to three letters standing for the provider on its card (its initial when unset).
    monogram: str = ""

    @property
    def mark(self) -> str:
        return self.monogram or self.name[:1].upper()

    def offers(self, port: int, security: str | None = None) -> bool:
        return any(o.port == port and (security is None or o.security == security) for o in self.ports)

    def host_for_region(self, region: str) -> str:
        return self.host_template.format(region=region)

    @property
    def port_list(self) -> str:
        """Human list of offered ports, e.g. '587 (STARTTLS), 465 (SSL/TLS)'."""
        return ", ".join(f"{o.port} ({SECURITY_LABELS[o.security]})" for o in self.ports)

    def matches_host(self, host: str) -> bool:
        if host in self.hosts:
            return True
        return self.region_of(host) is not None

    def region_of(self, host: str) -> tuple[str, bool] | None:
        """``(region, fips)`` when ``host`` has this provider's regional shape."""
        for template, fips in ((self.host_template, False), (self.fips_host_template, True)):
            region = template_region(template, host) if template else None
            if region is not None:
                return region, fips
        return None

    def account_kind(self, sender_email: str) -> str | None:
        """``personal`` or ``organisation`` for a provider with two kinds of host."""
        if not self.organisation_host_label or "@" not in (sender_email or ""):
            return None
        domain = sender_email.rsplit("@", 1)[1].strip().lower()
        return "personal" if domain in self.personal_domains else "organisation"

    def host_for_signed_in(self, host: str, account_email: str) -> str:
        """The SMTP host for an account that signed in: an OAuth-only consumer
        account (Outlook.com) has its own host; any host that is not one of
        this provider's (a relay, a test server) is kept as it is."""
        domain = account_email.rpartition("@")[2].strip().lower()
        known = host.strip().lower().rstrip(".") in self.hosts
        if not known:
            return host
        if domain in self.oauth_only_domains and self.oauth_only_hosts:
            return self.oauth_only_hosts[0]
        return self.host if host in self.oauth_only_hosts else host

    def host_for_account(self, host: str, kind: str | None) -> str:
        """``host`` with its first label switched to the one for ``kind`` accounts."""
        label = {"personal": self.personal_host_label, "organisation": self.organisation_host_label}.get(kind or "")
        first, dot, rest = host.partition(".")
        if not label or not dot or first not in {self.personal_host_label, self.organisation_host_label}:
            return host
        return f"{label}.{rest}"


@dataclass(frozen=True)
class ChoiceCase:
    situation: str
    advice: str
    providers: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    providers: dict[str, ProviderPreset]
    free_mail_domains: frozenset[str]
    choose: tuple[ChoiceCase, ...]
    hints: dict[str, dict] = field(default_factory=dict)

    def get(self, key: str | None) -> ProviderPreset | None:
        return self.providers.get(key or "")

    def resolve_key(self, name: str | None) -> str | None:
        """The catalogue key for ``name`` (a key or one of its aliases), else None."""
        name = (name or "").strip().lower()
        if name in self.providers:
            return name
        return next((p.key for p in self.providers.values() if name in p.aliases), None)

    def visible(self, include_local: bool) -> list[ProviderPreset]:
        return [p for p in self.providers.values() if include_local or p.key != LOCAL_KEY]

    def provider_for_host(self, host: str) -> ProviderPreset | None:
        """The provider whose SMTP servers include ``host`` (lower-case)."""
        for preset in self.providers.values():
            if preset.key != LOCAL_KEY and preset.matches_host(host):
                return preset
        return None

    def provider_for_read_host(self, host: str) -> ProviderPreset | None:
        for preset in self.providers.values():
            if host in preset.read_hosts:
                return preset
        return None

    def known_hosts(self) -> dict[str, ProviderPreset]:
        return {h: p for p in self.providers.values() if p.key != LOCAL_KEY for h in p.hosts}


def template_region(template: str, host: str) -> str | None:
    """The ``{region}`` part of ``host`` if it fits ``template``, else None."""
    prefix, _, suffix = template.partition("{region}")
    if host.startswith(prefix) and host.endswith(suffix) and len(host) > len(prefix) + len(suffix):
        region = host[len(prefix): len(host) - len(suffix)]
        if "." not in region:
            return region
    return None


REGION_SHAPE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")


def _preset(raw: dict) -> ProviderPreset:
    return ProviderPreset(
        key=raw["key"],
        name=raw["name"],
        kind=raw["kind"],
        good_for=raw.get("good_for", ""),
        prepare=tuple(raw.get("prepare", ())),
        host=raw.get("host", ""),
        hosts=tuple(h.lower() for h in raw.get("hosts", ())),
        read_hosts=tuple(h.lower() for h in raw.get("read_hosts", ())),
        port=int(raw["port"]),
        security=raw["security"],
        ports=tuple(PortOption(int(o["port"]), o["security"]) for o in raw.get("ports", ())),
        username_rule=raw.get("username_rule", "any"),
        username_placeholder=raw.get("username_placeholder", ""),
        username_help=raw.get("username_help", ""),
        sender_rule=raw.get("sender_rule", "any"),
        sender_help=raw.get("sender_help", ""),
        password_rule=raw.get("password_rule", "any"),
        password_label=raw.get("password_label", "Password"),
        password_help=raw.get("password_help", ""),
        notes=tuple(raw.get("notes", ())),
        links=tuple(Link(link["title"], link["url"]) for link in raw.get("links", ())),
        host_template=raw.get("host_template", ""),
        regions=tuple(raw.get("regions", ())),
        default_region=raw.get("default_region", ""),
        spf_includes=tuple(d.lower() for d in raw.get("spf_includes", ())),
        dkim_selectors=tuple(raw.get("dkim_selectors", ())),
        mx_patterns=tuple(d.lower() for d in raw.get("mx_patterns", ())),
        dkim_help=raw.get("dkim_help", ""),
        daily_limit=int(raw.get("daily_limit", 0)),
        free_mail_daily_limit=int(raw.get("free_mail_daily_limit", 0)),
        aliases=tuple(raw.get("aliases", ())),
        fips_host_template=raw.get("fips_host_template", ""),
        fips_regions=tuple(raw.get("fips_regions", ())),
        personal_host_label=raw.get("personal_host_label", ""),
        organisation_host_label=raw.get("organisation_host_label", ""),
        personal_domains=tuple(d.lower() for d in raw.get("personal_domains", ())),
        oauth_only_domains=tuple(d.lower() for d in raw.get("oauth_only_domains", ())),
        oauth_only_hosts=tuple(h.lower() for h in raw.get("oauth_only_hosts", ())),
        sign_in=raw.get("sign_in", ""),
        monogram=raw.get("monogram", ""),
    )


def local_preset(host: str, port: int) -> ProviderPreset:
    """The built-in local test mailbox, offered in debug mode only."""
    return ProviderPreset(
        key=LOCAL_KEY,
        name="Local test mailbox",
        kind="local",
        good_for="Trying the whole wizard on this computer, with no outside account.",
        prepare=(
            "Nothing: it runs alongside the app and keeps every message it receives.",
            "Any username and password are accepted, except the password wrong-password, "
            "which it refuses so you can see what a failed login looks like.",
            "Or sign in through the local test sign-in server, to try the \"Sign in with Google / Microsoft\" way.",
        ),
        host=host,
        hosts=(host,),
        read_hosts=(),
        port=port,
        security="starttls",
        ports=(PortOption(port, "starttls"),),
        username_rule="any",
        username_placeholder="you@yourstore.test",
        username_help="Any name works; using your sender address keeps it realistic.",
        sender_rule="any",
        sender_help="Any address; messages never leave this computer.",
        password_rule="any",
        password_label="Password",
        password_help="Any password except wrong-password.",
        sign_in="local",
        monogram="T",
    )


@cache
def _load_files() -> tuple[dict, dict]:
    with open(HERE / "providers.toml", "rb") as handle:
        providers = tomllib.load(handle)
    with open(HERE / "hints.toml", "rb") as handle:
        hints = tomllib.load(handle)
    return providers, hints


@lru_cache(maxsize=8)
def load_catalogue(local_host: str = "127.0.0.1", local_port: int = 8025) -> Catalogue:
    """The catalogue, with the local test mailbox at ``local_host:local_port``."""
    raw, hints = _load_files()
    presets = {p["key"]: _preset(p) for p in raw["provider"]}
    presets[LOCAL_KEY] = local_preset(local_host, local_port)
    cases = tuple(
        ChoiceCase(c["situation"], c["advice"], tuple(c.get("providers", ())))
        for c in raw.get("choose", {}).get("case", ())
    )
    return Catalogue(
        providers=presets,
        free_mail_domains=frozenset(d.lower() for d in raw.get("free_mail", {}).get("domains", ())),
        choose=cases,
        hints=hints,
    )
