"""Field checks for the SMTP settings form.

``check_smtp_settings`` returns a list of :class:`Finding` — an *error*
blocks saving, a *hint* advises. The wording lives in
``catalogue/hints.toml`` keyed by the finding's code; this module only
decides which codes apply. Used by the form (full submit) and by the live
validation endpoint alike, so both show the same messages.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from wizard.catalogue import (
    LOCAL_KEY,
    REGION_SHAPE,
    SECURITY_LABELS,
    Catalogue,
    ProviderPreset,
)
from wizard.catalogue.hints import render_fix, render_hint
from wizard.smtp.header_text import HEADER_BREAKING_CLASS
from wizard.smtp.hosts import SCHEME, bare_host, ip_literal, is_hostname, nearest_known_host

FIELDS = ("host", "port", "security", "sender_name", "sender_email", "username", "password")
LABELS = {
    "host": "SMTP host",
    "port": "Port",
    "security": "Security protocol",
    "sender_name": "Sender name",
    "sender_email": "Sender email",
    "username": "Username",
    "password": "Password",
}
MAX_LENGTH = {
    "host": 253,
    "port": 5,
    "security": 10,
    "sender_name": 70,
    "sender_email": 254,
    "username": 254,
    "password": 500,
}
# Standard ports whose security mode is fixed by RFC 8314 / RFC 6409.
STANDARD_PORT_SECURITY = {465: "ssl", 587: "starttls"}
COMMON_PORTS = {25, 465, 587, 2525}
# What no header may contain (``header_text``), and U+FFFD, which stands for a
# byte that was not text (or a NUL the draft could not keep).
CONTROL_CHARACTERS = re.compile(f"[{HEADER_BREAKING_CLASS}\\ufffd]")
APP_PASSWORD = re.compile(r"^[a-z]{16}$", re.IGNORECASE)
SENDGRID_KEY = re.compile(r"^SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Finding:
    """One message for one field."""

    field: str
    code: str
    level: str  # error | hint
    text: str
    # The one-click fix, when the finding knows the right value: set ``fix_field`` to ``fix_value``.
    fix_field: str = ""
    fix_value: str = ""
    fix_label: str = ""

    @property
    def is_error(self) -> bool:
        return self.level == "error"


@dataclass
class SmtpValues:
    """What the merchant typed. ``password`` is the effective password (typed,
    or the stored one when the field was left blank); it is only inspected,
    never echoed."""

    provider: str
    host: str = ""
    port: str = ""
    security: str = ""
    sender_name: str = ""
    sender_email: str = ""
    username: str = ""
    password: str = ""
    # "password", or "xoauth2" when the mailbox is signed in (no password to check).
    auth: str = "password"

    @property
    def signed_in(self) -> bool:
        return self.auth == "xoauth2"


class _Checker:
    def __init__(self, values: SmtpValues, catalogue: Catalogue):
        self.values = values
        self.catalogue = catalogue
        self.preset: ProviderPreset | None = catalogue.get(values.provider)
        self.findings: list[Finding] = []
        self.broken: set[str] = set()  # fields whose basic shape is wrong

    def add(self, field: str, code: str, **params) -> None:
        merged = self._params(field, params)
        level, text = render_hint(self.catalogue.hints, code, self.preset, merged)
        fix = render_fix(self.catalogue.hints, code, merged) or ("", "", "")
        self.findings.append(Finding(field, code, level, text, *fix))
        if level == "error":
            self.broken.add(field)

    def _params(self, field: str, params: dict) -> dict:
        merged = {
            "label": LABELS[field],
            "provider": self.preset.name if self.preset else "your provider",
            "host": self.values.host.strip(),
            "port": self.values.port.strip(),
            "username": self.values.username.strip(),
            "sender": self.values.sender_email.strip(),
        }
        merged.update(params)
        return merged

    # -- shared shape checks --------------------------------------------------
    def basic(self) -> None:
        for field in FIELDS:
            if field == "password" and self.values.signed_in:
                continue  # a sign-in replaces the password
            raw = getattr(self.values, field)
            if CONTROL_CHARACTERS.search(raw):
                self.add(field, "control_characters")
            elif len(raw) > MAX_LENGTH[field]:
                if field == "sender_name":
                    self.add(field, "sender_name_too_long", limit=MAX_LENGTH[field])
                else:
                    self.add(field, "too_long", limit=MAX_LENGTH[field])
            elif not raw.strip():
                if field == "password":
                    self.add(field, "password_required")
                else:
                    self.add(field, "required")

    def ok(self, field: str) -> bool:
        return field not in self.broken

    # -- per field -------------------------------------------------------------
    def port(self) -> int | None:
        raw = self.values.port.strip()
        if not self.ok("port"):
            return None
        if not raw.isascii() or not raw.isdigit():
            self.add("port", "port_not_number")
            return None
        port = int(raw)
        if not 1 <= port <= 65535:
            self.add("port", "port_out_of_range")
            return None
        return port

    def security(self) -> str | None:
        security = self.values.security.strip()
        if not self.ok("security"):
            return None
        if security not in SECURITY_LABELS:
            self.add("security", "security_invalid")
            return None
        return security

    def port_and_security(self, port: int | None, security: str | None) -> None:
        if port is None:
            return
        preset = self.preset
        expected = STANDARD_PORT_SECURITY.get(port)
        if security and expected and expected != security:
            other_port = 465 if security == "ssl" else 587
            self.add(
                "port",
                "port_security_mismatch",
                expected=expected,
                expected_security=SECURITY_LABELS[expected],
                security_label=SECURITY_LABELS[security],
                other_port=other_port,
            )
            return
        if preset is None or preset.key == LOCAL_KEY:
            return
        offers_2525 = preset.offers(2525)
        if port == 25:
            alternative = f", or 2525, which {preset.name} also accepts" if offers_2525 else ""
            self.add("port", "port_25_blocked", alternative=alternative)
        elif preset.kind == "custom":
            if port not in COMMON_PORTS:
                self.add("port", "port_unusual")
        elif not preset.offers(port):
            self.add("port", "port_not_offered", ports=preset.port_list)
        elif port == 2525:
            self.add("port", "port_2525_alternative")

    def host(self) -> str | None:
        if not self.ok("host"):
            return None
        raw = self.values.host.strip()
        scheme = SCHEME.match(raw)
        if scheme:
            self.add("host", "host_has_scheme", scheme=scheme.group(1), suggestion=bare_host(raw))
            return None
        if " " in raw or "\t" in raw:
            self.add("host", "host_has_spaces")
            return None
        if "@" in raw:
            self.add("host", "host_is_email")
            return None
        if "/" in raw:
            self.add("host", "host_has_path", suggestion=bare_host(raw))
            return None
        literal = ip_literal(raw)
        if literal is not None:
            # The local test mailbox is an address by design (its certificate says so).
            if self.preset is None or self.preset.key != LOCAL_KEY:
                self.add("host", "host_is_ip")
            return None
        if re.fullmatch(r"[^:]+:\d+", raw):
            self.add("host", "host_has_port", suggestion=raw.split(":")[0])
            return None
        host = raw.lower().rstrip(".")
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            self.add("host", "host_invalid")
            return None
        if not is_hostname(ascii_host):
            self.add("host", "host_invalid")
            return None
        return host

    def host_against_catalogue(self, host: str) -> None:
        preset, catalogue = self.preset, self.catalogue
        read_owner = catalogue.provider_for_read_host(host)
        if read_owner is not None:
            self.add("host", "host_read_only", provider=read_owner.name, suggestion=read_owner.host or "its smtp. server")
            return
        if preset is not None and preset.key == LOCAL_KEY:
            return
        owner = catalogue.provider_for_host(host)
        ses = catalogue.get("ses")
        shape = ses.region_of(host) if ses else None
        region = shape[0] if shape else None
        if region is not None:
            if not REGION_SHAPE.match(region):
                self.add("host", "ses_host_malformed", region=region)
                return
            if shape[1] and region not in ses.fips_regions:
                self.add("host", "ses_fips_region_unknown", region=region, regions=", ".join(ses.fips_regions))
            elif region not in ses.regions:
                self.add("host", "ses_region_unknown", region=region)
        if owner is not None:
            if preset is not None and preset.kind != "custom" and owner.key != preset.key:
                self.add("host", "host_other_provider", other_provider=owner.name)
            return
        prefix = host.split(".", 1)[0]
        if prefix in {"imap", "pop", "pop3", "imap4", "mx"}:
            self.add("host", "host_looks_read_only", prefix=prefix)
            return
        near = nearest_known_host(host, catalogue)
        if near is not None:
            self.add("host", "host_near_miss", suggestion=near)
            return
        if preset is not None and preset.kind in {"mailbox", "service"} and region is None:
            expected = preset.host or (preset.host_for_region(preset.default_region) if preset.host_template else "")
            if expected:
                self.add("host", "host_not_provider", suggestion=expected)

    def sender_email(self) -> str | None:
        if not self.ok("sender_email"):
            return None
        address = self.values.sender_email.strip()
        if not address.isascii():
            # SMTP without SMTPUTF8 (what we speak) cannot carry it; the probe
            # and the outbox refuse it with the same words.
            self.add("sender_email", "sender_email_non_ascii", address=address)
            return None
        try:
            result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            self.add("sender_email", "sender_email_invalid", reason=str(exc))
            return None
        return result.normalized

    def username(self) -> None:
        if not self.ok("username") or self.preset is None:
            return
        username = self.values.username.strip()
        rule = self.preset.username_rule
        if " " in username:
            self.add("username", "username_has_spaces")
        if rule == "apikey":
            if username != "apikey":
                self.add("username", "sendgrid_username_apikey")
        elif rule in {"email", "account_email"}:
            if "@" not in username:
                example = self.values.sender_email.strip() if "@" in self.values.sender_email else "you@yourstore.com"
                self.add("username", "username_full_address", example=example)
        elif rule == "generated":
            if self.preset.key == "ses":
                if "@" in username:
                    self.add("username", "ses_username_generated")
            elif "@" not in username:
                self.add("username", "mailgun_username_domain")
            else:
                domain = username.rsplit("@", 1)[1].lower()
                if domain in self.catalogue.free_mail_domains:
                    self.add("username", "mailgun_username_login")

    def oauth_only(self, sender: str) -> None:
        """Outlook.com personal accounts: password sign-in cannot work (OAuth only)."""
        preset = self.preset
        if preset is None or not (preset.oauth_only_domains or preset.oauth_only_hosts) or self.values.signed_in:
            return
        username = self.values.username.strip().lower()
        for address in (username, sender.lower()):
            domain = address.rpartition("@")[2]
            if "@" in address and domain in preset.oauth_only_domains:
                self.add("password", "outlook_personal_oauth_only", domain=domain)
                return
        if self.values.host.strip().lower().rstrip(".") in preset.oauth_only_hosts:
            self.add("password", "outlook_personal_oauth_only", domain=self.values.host.strip().lower())

    def zoho_account_host(self, sender: str) -> None:
        """Zoho: smtppro.* for organisation accounts, smtp.* for personal ones."""
        preset = self.preset
        kind = preset.account_kind(sender) if preset is not None else None
        host = self.values.host.strip().lower().rstrip(".")
        if kind is None or not preset.matches_host(host):
            return
        expected = preset.host_for_account(host, kind)
        words = ("an organisation account on your own domain" if kind == "organisation"
                 else "a personal account on a Zoho address")
        code = "zoho_account_host" if expected != host else "zoho_account_host_chosen"
        self.add("host", code, sender=sender, kind_words=words, suggestion=expected)

    def sender_against_username(self, sender: str) -> None:
        if self.preset is None or self.preset.key == LOCAL_KEY:
            return
        self.oauth_only(sender)
        self.zoho_account_host(sender)
        domain = sender.rsplit("@", 1)[1].lower()
        username = self.values.username.strip()
        if self.preset.sender_rule == "mailbox":
            if self.ok("username") and "@" in username and username.lower() != sender.lower():
                self.add("sender_email", "sender_alias_send_as")
        free_mailbox = domain in self.catalogue.free_mail_domains
        if free_mailbox and self.preset.kind == "service":
            # Verifying the address cannot help: the service can never send as that domain.
            self.add("sender_email", "sender_free_mailbox_service", domain=domain)
            return
        if self.preset.sender_rule == "verified":
            self.add("sender_email", "sender_verified_required", domain=domain)
        if free_mailbox:
            self.add("sender_email", "sender_free_mailbox", domain=domain)

    def password(self) -> None:
        if not self.ok("password") or self.preset is None or self.values.signed_in:
            return
        password = self.values.password
        if self.preset.password_rule == "app_password":
            if not APP_PASSWORD.match(password.replace(" ", "")):
                self.add("password", "gmail_app_password")
        elif self.preset.password_rule == "api_key":
            if not SENDGRID_KEY.match(password.strip()):
                self.add("password", "sendgrid_api_key")

    def sender_name(self) -> None:
        if not self.ok("sender_name"):
            return
        name = self.values.sender_name.strip()
        if "@" in name or re.fullmatch(r"[\w-]+(\.[\w-]+)+", name):
            self.add("sender_name", "sender_name_is_address")

    def run(self) -> list[Finding]:
        if self.preset is None:
            self.findings.append(
                Finding("host", "provider_unknown", "error", render_hint(self.catalogue.hints, "provider_unknown", None, {})[1])
            )
        self.basic()
        port = self.port()
        security = self.security()
        self.port_and_security(port, security)
        host = self.host()
        if host is not None:
            self.host_against_catalogue(host)
        self.username()
        sender = self.sender_email()
        if sender is not None:
            self.sender_against_username(sender)
        self.password()
        self.sender_name()
        return self.findings


def check_smtp_settings(values: SmtpValues, catalogue: Catalogue) -> list[Finding]:
    """Every error and hint for ``values``, in field order."""
    findings = _Checker(values, catalogue).run()
    order = {field: index for index, field in enumerate(FIELDS)}
    return sorted(findings, key=lambda f: (order[f.field], f.level != "error"))


def by_field(findings: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {field: [] for field in FIELDS}
    for finding in findings:
        grouped[finding.field].append(finding)
    return grouped


def has_errors(findings: list[Finding]) -> bool:
    return any(f.is_error for f in findings)
