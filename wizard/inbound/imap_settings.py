"""A store's "Bring replies into HeiChat" settings: the IMAP server, the login it borrows, the last result.

The login is the sending one. With a password, turning reading on
unseals the saved SMTP password (for exactly the SMTP server it was typed
for) and seals it again for the IMAP server identity (host, port,
security, username): the fetcher can only ever send it there. It may only
be re-sealed for a server of the same provider — one of the provider's own
read hosts, or a host in the SMTP host's own domain (``smtp.shop.com`` →
``imap.shop.com``) — so a changed field never steers the password elsewhere.
With a sign-in the access token is used, only for the provider's own read
hosts (``ProviderPreset.read_hosts``), after the grant is checked through
the saved SMTP identity (``wizard.setup.sign_in.access_token``).

Results of "Test IMAP" and of each fetch land on the row
(``last_category``, ``last_error``, ``last_checked_at``). No Flask.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, select

from wizard.catalogue import Catalogue, ProviderPreset
from wizard.dns.dmarc import organisational_domain
from wizard.inbound.imap_options import ImapOptions
from wizard.inbound.imap_types import ImapTarget
from wizard.models import SmtpSettings, utcnow
from wizard.models.inbound import ImapFetching
from wizard.oauth.flow import SignInClient
from wizard.oauth.providers import grant_holds_reading, load_sign_in_catalogue
from wizard.secrets import SecretBox, SecretNotBound, ServerIdentity
from wizard.setup.sign_in import XOAUTH2, access_token, get_grant
from wizard.smtp.hosts import bare_host, ip_literal, is_hostname
from wizard.smtp.target_options import saved_identity, server_identity

__all__ = ["DEFAULT_PORT", "SECURITIES", "ImapSettingsRefused", "ServerChoice", "get_fetching", "suggested_server",
           "read_identity", "turn_on", "turn_off", "imap_target", "record_result", "login_changed",
           "reading_sign_in_needed"]

DEFAULT_PORT = {"ssl": 993, "starttls": 143}
SECURITIES = tuple(DEFAULT_PORT)
MAX_ERROR_CHARS = 2000


class ImapSettingsRefused(ValueError):
    """The settings cannot be saved; ``field`` names the form field, the message says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ServerChoice:
    host: str
    port: int
    security: str
    folder: str = "INBOX"


def get_fetching(session: Session, store_id: int) -> ImapFetching | None:
    return session.exec(select(ImapFetching).where(ImapFetching.store_id == store_id)).first()


def _preset(catalogue: Catalogue, saved: SmtpSettings | None) -> ProviderPreset | None:
    return catalogue.get(saved.provider) if saved is not None else None


def suggested_server(saved: SmtpSettings | None, catalogue: Catalogue) -> ServerChoice:
    """The provider's IMAP server for the saved SMTP host (``smtppro.zoho.eu`` → ``imappro.zoho.eu``), 993 SSL/TLS."""
    preset = _preset(catalogue, saved)
    smtp_host = (saved.host if saved is not None else "").strip().lower()
    readers = [h for h in (preset.read_hosts if preset else ()) if not h.startswith("pop")]
    first, dot, rest = smtp_host.partition(".")
    twin = first.replace("smtp", "imap", 1) + dot + rest if first.startswith("smtp") else ""
    if twin in readers:
        host = twin
    elif readers:
        host = readers[0]
    else:
        host = twin or smtp_host
    return ServerChoice(host, DEFAULT_PORT["ssl"], "ssl")


def read_identity(row: ImapFetching) -> ServerIdentity:
    """The identity the borrowed password is sealed for: the IMAP server and the account."""
    return server_identity(row.host, row.port, row.security, row.username)


def _same_domain(a: str, b: str) -> bool:
    if a == b:
        return True  # the same server reads and sends (common for a shop's own mail server)
    if ip_literal(a) or ip_literal(b):
        return (ip_literal(a) or a) == (ip_literal(b) or b)
    left, right = organisational_domain(a), organisational_domain(b)
    return bool(left) and left == right


def password_may_go_to(saved: SmtpSettings, preset: ProviderPreset | None, host: str) -> bool:
    """Whether the sending password may be sealed for the IMAP ``host``."""
    if preset is not None and host in preset.read_hosts:
        return True
    return _same_domain(host, saved.host.strip().lower().rstrip("."))


def _checked_choice(choice: ServerChoice) -> ServerChoice:
    host = ip_literal(choice.host) or bare_host(choice.host).lower().rstrip(".")
    if not host or not (ip_literal(host) or is_hostname(host)):
        raise ImapSettingsRefused("host", "Enter the IMAP server's host name, such as imap.example.com.")
    if choice.security not in SECURITIES:
        raise ImapSettingsRefused("security", "Choose SSL/TLS or STARTTLS.")
    if not 0 < int(choice.port) < 65536:
        raise ImapSettingsRefused("port", "Enter a port between 1 and 65535 (993 for SSL/TLS, 143 for STARTTLS).")
    folder = " ".join((choice.folder or "INBOX").split())
    if not folder or len(folder) > 200 or not folder.isprintable():
        raise ImapSettingsRefused("folder", "Enter the folder's name (INBOX unless replies are filed elsewhere).")
    return ServerChoice(host, int(choice.port), choice.security, folder)


def turn_on(session: Session, store_id: int, saved: SmtpSettings | None, choice: ServerChoice, box: SecretBox,
            catalogue: Catalogue) -> ImapFetching:
    """Save ``choice`` and switch fetching on with the sending login (committed).

    Raises ``ImapSettingsRefused`` (nothing saved) or ``SecretError`` (the
    sending password cannot be read: it must be typed again in the set-up)."""
    if saved is None:
        raise ImapSettingsRefused("enabled", "Save your sending settings in the set-up first: reading uses the same login.")
    choice = _checked_choice(choice)
    preset = _preset(catalogue, saved)
    password = ""
    # Everything is checked (and the password unsealed) before the row changes.
    if saved.auth_method == XOAUTH2:
        if preset is None or choice.host not in preset.read_hosts:
            names = ", ".join(h for h in (preset.read_hosts if preset else ()) if not h.startswith("pop"))
            raise ImapSettingsRefused("host", "With a sign-in, HeiChat reads only from your provider's own IMAP server"
                                      + (f" ({names})." if names else "; this provider has none it knows of."))
        _check_reading_allowed(session, store_id, saved)
    else:
        if not password_may_go_to(saved, preset, choice.host):
            raise ImapSettingsRefused("host", f"HeiChat uses your sending password only for a server of the same "
                                      f"provider or domain as {saved.host}; {choice.host} is neither.")
        password = box.unseal(saved.password_encrypted, saved.password_binding, saved_identity(saved))
    row = get_fetching(session, store_id) or ImapFetching(store_id=store_id)
    moved = (row.host, row.username, row.folder) != (choice.host, saved.username, choice.folder)
    row.host, row.port, row.security, row.folder = choice.host, choice.port, choice.security, choice.folder
    row.username = saved.username
    if saved.auth_method == XOAUTH2:
        row.auth_method, row.oauth_grant_id = XOAUTH2, saved.oauth_grant_id
        row.password_encrypted = row.password_binding = None
    else:
        row.auth_method, row.oauth_grant_id = "password", None
        row.password_encrypted, row.password_binding = box.seal(password, read_identity(row))
    if moved:
        # Another mailbox or folder: what was read there says nothing here.
        row.uidvalidity, row.last_uid = None, 0
    row.enabled = True
    row.updated_at = utcnow()
    session.add(row)
    session.commit()
    return row


def reading_sign_in_needed(session: Session, store_id: int, saved: SmtpSettings | None) -> str | None:
    """The provider whose sign-in must be renewed before the saved login may read
    (its grant allows sending only), or None."""
    if saved is None or saved.auth_method != XOAUTH2:
        return None
    grant = get_grant(session, store_id, saved.oauth_grant_id)
    if grant is None or grant_holds_reading(grant.provider, grant.scope):
        return None
    return grant.provider


def _check_reading_allowed(session: Session, store_id: int, saved: SmtpSettings) -> None:
    if get_grant(session, store_id, saved.oauth_grant_id) is None:
        raise ImapSettingsRefused("enabled", "Sign in with your provider again in the set-up first: "
                                  "HeiChat has no sign-in to read with.")
    provider = reading_sign_in_needed(session, store_id, saved)
    if provider is not None:
        name = load_sign_in_catalogue().providers[provider]["name"]
        raise ImapSettingsRefused("enabled", f"Your {name} sign-in allows sending only. Click \"Allow reading with "
                                  f"{name}\" and accept, then turn this on.")


def turn_off(session: Session, row: ImapFetching) -> None:
    """Stop fetching and forget the borrowed password (turning on again re-seals it)."""
    row.enabled = False
    row.password_encrypted = row.password_binding = None
    row.oauth_grant_id = None  # no longer holds the sign-in it borrowed
    row.updated_at = utcnow()
    session.add(row)
    session.commit()


def login_changed(row: ImapFetching | None, saved: SmtpSettings | None) -> bool:
    """Whether the sending login was saved again after reading was turned on (turn it on again to follow)."""
    if row is None or saved is None or not row.enabled:
        return False
    saved_at, updated = saved.saved_at, row.updated_at
    if saved_at.tzinfo is None and updated.tzinfo is not None:
        saved_at = saved_at.replace(tzinfo=updated.tzinfo)
    elif updated.tzinfo is None and saved_at.tzinfo is not None:
        updated = updated.replace(tzinfo=saved_at.tzinfo)
    return row.username != saved.username or saved_at > updated


def imap_target(session: Session, row: ImapFetching, saved: SmtpSettings | None, box: SecretBox,
                options: ImapOptions, catalogue: Catalogue, clients: Mapping[str, SignInClient]) -> ImapTarget:
    """Where and how to read for ``row``. Raises ``SecretError`` unless the login may be used there."""
    if row.auth_method == XOAUTH2:
        preset = _preset(catalogue, saved)
        if saved is None or saved.auth_method != XOAUTH2 or preset is None or row.host not in preset.read_hosts:
            raise SecretNotBound()
        grant = get_grant(session, row.store_id, saved.oauth_grant_id)
        token = access_token(session, grant, saved.host, saved.username, box, clients)
        password = ""
    else:
        password, token = box.unseal(row.password_encrypted, row.password_binding, read_identity(row)), ""
    return ImapTarget(host=row.host, port=row.port, security=row.security, username=row.username, password=password,
                      auth=row.auth_method, access_token=token, folder=row.folder or "INBOX",
                      timeout=options.timeout, greeting_timeout=options.greeting_timeout, ca_file=options.ca_file,
                      nameserver=options.nameserver, address_policy=options.address_policy)


def record_result(session: Session, row: ImapFetching, category: str, error: str = "") -> None:
    """The last test's or fetch's outcome on the row (committed); ``error`` never holds a secret."""
    row.last_category = category
    row.last_error = (error or None) and error[:MAX_ERROR_CHARS]
    row.last_checked_at = utcnow()
    session.add(row)
    session.commit()
