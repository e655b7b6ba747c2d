"""Signed-in mailboxes: storing OAuth grants, keeping their access token fresh, and "reconnect needed".

A grant (``OAuthGrant``) holds the tokens of one "Sign in with Google /
Microsoft". Its tokens are encrypted with the passwords' keys and *bound*,
like a password, to the SMTP host and account they were issued for
(``wizard.setup.drafts.token_identity``): a draft whose host or username
changes drops its grant (``keep_credentials_bound``).

``access_token`` is what anything about to connect calls (Test Connection,
the test email, the outbox worker before a batch): it refreshes the token
shortly before it expires and stores a rotated refresh token. When the
provider refuses the refresh token (``invalid_grant``) the grant needs
signing in again: ``SignInNeeded`` is raised, the outbox holds the store's
mail, the pages show one banner, and signing in again with the same account
revives the same grant, so held mail goes out. No Flask.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, select

from wizard import audit
from wizard.catalogue import ProviderPreset
from wizard.models import Member, OAuthGrant, SmtpDraft, SmtpSettings, Store, utcnow
from wizard.models.inbound import ImapFetching
from wizard.models.outbox import OutboxEmail
from wizard.oauth.flow import GrantRevoked, SignInClient, TokenEndpointUnavailable, TokenSet
from wizard.oauth.providers import load_sign_in_catalogue
from wizard.secrets import SecretBox, SecretError, ServerIdentity
from wizard.setup.drafts import token_identity

__all__ = ["CONNECTED", "RECONNECT_NEEDED", "XOAUTH2", "PASSWORD", "SignInNeeded", "TokenUnavailable",
           "get_grant", "connect", "access_token", "disconnect", "reconnect_notice",
           "use_password_instead", "ReconnectNotice", "REFRESH_MARGIN"]

PASSWORD, XOAUTH2 = "password", "xoauth2"
CONNECTED, RECONNECT_NEEDED = "connected", "reconnect_needed"
# Refreshed this long before it expires, so a token never dies mid-batch.
REFRESH_MARGIN = timedelta(minutes=5)
# What the outbox writes on each email it holds (a hint code: outbox_<reason>).
HELD_FOR_SIGN_IN = "reconnect_needed"
HELD_FOR_TOKEN = "token_unavailable"


class SignInNeeded(SecretError):
    """No usable sign-in: none, disconnected, or refused by the provider."""

    reason = RECONNECT_NEEDED

    def __init__(self, detail: str = ""):
        super().__init__("the mailbox must be signed in again")
        self.detail = detail


class TokenUnavailable(SecretError):
    """The token could not be refreshed just now (the provider is unreachable)."""

    reason = "token_unavailable"

    def __init__(self, detail: str = ""):
        super().__init__("the sign-in token could not be refreshed right now")
        self.detail = detail


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def get_grant(session: Session, store_id: int, grant_id: int | None) -> OAuthGrant | None:
    if grant_id is None:
        return None
    grant = session.get(OAuthGrant, grant_id)
    return grant if grant is not None and grant.store_id == store_id else None


# -- signing in ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Connected:
    grant: OAuthGrant
    released_emails: int  # held mail made due again
    reconnected: bool  # an existing sign-in renewed


def connect(session: Session, store: Store, draft: SmtpDraft, preset: ProviderPreset, provider_key: str,
            tokens: TokenSet, box: SecretBox, actor: Member | None) -> Connected:
    """Attach the tokens of a completed sign-in to the store's draft.

    The account becomes the username and, unless another sender was chosen,
    the sender. Signing in again with the account of an existing grant
    renews that grant in place (so saved settings using it work again and
    held mail is released)."""
    email = tokens.account_email.strip()
    host = preset.host_for_signed_in(draft.host, email)
    grant = _matching_grant(session, store.id, provider_key, tokens, box, token_identity(host, email))
    reconnected = grant is not None
    if grant is None:
        grant = OAuthGrant(store_id=store.id, provider=provider_key, account_email=email, subject=tokens.subject,
                           access_token_encrypted="", token_binding="", expires_at=tokens.expires_at)
    old_username = draft.username.strip()
    draft.host = host
    draft.username = email
    if not draft.sender_email.strip() or draft.sender_email.strip().lower() == old_username.lower():
        draft.sender_email = email
    draft.auth_method = XOAUTH2
    draft.password_encrypted = draft.password_binding = None  # not used with a sign-in
    draft.password_notice = None
    _store_tokens(grant, tokens, box, token_identity(draft.host, email))
    grant.account_email = email
    grant.status, grant.problem = CONNECTED, None
    session.add(grant)
    session.flush()
    draft.oauth_grant_id = grant.id
    draft.updated_at = utcnow()
    session.add(draft)
    session.commit()
    released = release_held_mail(session, store.id)
    audit.record(session, store_id=store.id, actor=actor,
                 action="oauth.reconnected" if reconnected else "oauth.connected",
                 detail={"provider": provider_key, "account": email, "held_emails_released": released})
    prune_unused_grants(session, store.id)
    return Connected(grant, released, reconnected)


def _matching_grant(session: Session, store_id: int, provider_key: str, tokens: TokenSet, box: SecretBox,
                    identity: ServerIdentity) -> OAuthGrant | None:
    """The store's grant this sign-in renews: same provider and account, and
    bound to the same host. A grant bound to another host stays as it is (the
    saved settings may still send with it while the draft moves elsewhere)."""
    grants = session.exec(select(OAuthGrant).where(OAuthGrant.store_id == store_id,
                                                   OAuthGrant.provider == provider_key)).all()
    for grant in grants:
        if not box.is_bound(grant.token_binding, identity):
            continue
        same_subject = tokens.subject and grant.subject == tokens.subject
        if same_subject or grant.account_email.lower() == tokens.account_email.strip().lower():
            return grant
    return None


def _store_tokens(grant: OAuthGrant, tokens: TokenSet, box: SecretBox, identity: ServerIdentity) -> None:
    grant.access_token_encrypted, grant.token_binding = box.seal(tokens.access_token, identity)
    if tokens.refresh_token:
        grant.refresh_token_encrypted = box.encrypt(tokens.refresh_token)
    grant.expires_at = tokens.expires_at
    # A renewal that does not restate its scope keeps what the grant had.
    grant.scope = (tokens.scope or grant.scope or "")[:2000]
    grant.refreshed_at = utcnow()


def use_password_instead(draft: SmtpDraft) -> None:
    """The merchant prefers a password (app password) after all."""
    draft.auth_method = PASSWORD
    draft.oauth_grant_id = None
    draft.password_notice = None
    draft.updated_at = utcnow()


# -- using a grant -------------------------------------------------------------------------------

def access_token(session: Session, grant: OAuthGrant | None, host: str, username: str, box: SecretBox,
                 clients: Mapping[str, SignInClient], *, now: datetime | None = None,
                 refused: bool = False) -> str:
    """A live access token for sending to ``host`` as ``username``.

    ``refused``: the SMTP server just refused the current token although it
    had not expired (revoked early, or expired sooner than announced) — get
    a new one whatever its expiry says.

    Raises ``SignInNeeded`` (no grant, or the provider refused it),
    ``SecretNotBound`` (issued for another host or account) or
    ``TokenUnavailable`` (expired and the provider unreachable)."""
    if grant is None:
        raise SignInNeeded("not signed in")
    if grant.status == RECONNECT_NEEDED:
        raise SignInNeeded(grant.problem or "")
    identity = token_identity(host, username)
    token = box.unseal(grant.access_token_encrypted, grant.token_binding, identity)
    now = now or utcnow()
    if refused:
        return _refresh(session, grant, box, clients, identity)
    if _as_utc(grant.expires_at) - now > REFRESH_MARGIN:
        return token
    try:
        return _refresh(session, grant, box, clients, identity)
    except TokenUnavailable:
        if _as_utc(grant.expires_at) > now:
            return token  # still valid for a few minutes: use it, refresh next time
        raise


def _refresh(session: Session, grant: OAuthGrant, box: SecretBox, clients: Mapping[str, SignInClient],
             identity: ServerIdentity) -> str:
    client = clients.get(grant.provider)
    if client is None or not grant.refresh_token_encrypted:
        raise TokenUnavailable("sign-in provider not configured")
    refreshed_before = _as_utc(grant.refreshed_at)
    try:
        tokens = client.refresh(box.decrypt(grant.refresh_token_encrypted), grant.scope)
    except TokenEndpointUnavailable as exc:
        raise TokenUnavailable(str(exc)) from None
    except GrantRevoked as revoked:
        # Another process may have refreshed (and rotated) it a moment ago.
        session.refresh(grant)
        if _as_utc(grant.refreshed_at) > refreshed_before and grant.status == CONNECTED:
            return box.unseal(grant.access_token_encrypted, grant.token_binding, identity)
        mark_reconnect_needed(session, grant, revoked.detail or "invalid_grant")
        raise SignInNeeded(grant.problem or "") from None
    _store_tokens(grant, tokens, box, identity)
    session.add(grant)
    session.commit()
    return tokens.access_token


def mark_reconnect_needed(session: Session, grant: OAuthGrant, problem: str) -> None:
    grant.status, grant.problem = RECONNECT_NEEDED, problem[:80]
    session.add(grant)
    session.commit()
    audit.record(session, store_id=grant.store_id, actor=None, action="oauth.refresh_failed",
                 detail={"provider": grant.provider, "account": grant.account_email, "problem": grant.problem})


# -- disconnecting ---------------------------------------------------------------------------------

def disconnect(session: Session, store: Store, grant: OAuthGrant, box: SecretBox,
               clients: Mapping[str, SignInClient], actor: Member | None) -> bool:
    """Revoke the grant at the provider (where it offers revocation) and delete
    it; the draft and saved settings using it are left signed out. True when
    the provider confirmed the revocation."""
    revoked = False
    client = clients.get(grant.provider)
    if client is not None and grant.refresh_token_encrypted:
        try:
            revoked = client.revoke(box.decrypt(grant.refresh_token_encrypted))
        except SecretError:
            revoked = False
    saved_used_it = session.exec(select(SmtpSettings.id).where(SmtpSettings.oauth_grant_id == grant.id)).first()
    for model in (SmtpDraft, SmtpSettings):
        for row in session.exec(select(model).where(model.oauth_grant_id == grant.id)).all():
            row.oauth_grant_id = None
            session.add(row)
    _stop_reading_with(session, grant, saved_used_it is not None)
    session.flush()
    session.delete(grant)
    session.commit()
    audit.record(session, store_id=store.id, actor=actor, action="oauth.disconnected",
                 detail={"provider": grant.provider, "account": grant.account_email, "revoked_at_provider": revoked})
    return revoked


def _stop_reading_with(session: Session, grant: OAuthGrant, saved_used_it: bool) -> None:
    """Turn off "Bring replies into HeiChat" where it reads with ``grant`` (about to go), saying why:
    a reading row that names it, and a signed-in one of the store when the saved settings (whose
    grant reading borrows) used it."""
    now = utcnow()
    rows = session.exec(select(ImapFetching).where(ImapFetching.store_id == grant.store_id)).all()
    for row in rows:
        if row.oauth_grant_id != grant.id and not (saved_used_it and row.auth_method == XOAUTH2 and row.enabled):
            continue
        row.enabled, row.oauth_grant_id = False, None
        row.last_category, row.last_checked_at, row.updated_at = "login_unavailable", now, now
        row.last_error = ("Reading stopped: the sign-in it used was disconnected. Sign in again in the set-up, "
                          "then turn reading on.")
        session.add(row)


def prune_unused_grants(session: Session, store_id: int) -> int:
    """Delete the store's grants that nothing uses any more (the draft, the saved
    settings and reading moved to another sign-in or to a password): their tokens
    should not sit in the database. Not revoked at the provider: Google revokes
    every grant of the account on one revocation, the one in use included.
    Best effort (called after the work that made them unused is committed):
    a concurrent request that starts using one keeps them all. Commits;
    returns how many went."""
    used = set()
    for model in (SmtpDraft, SmtpSettings, ImapFetching):
        used |= set(session.exec(select(model.oauth_grant_id).where(model.store_id == store_id,
                                                                     model.oauth_grant_id.is_not(None))).all())
    unused = session.exec(select(OAuthGrant).where(OAuthGrant.store_id == store_id,
                                                   OAuthGrant.id.not_in(used))).all()
    if not unused:
        return 0
    for grant in unused:
        session.delete(grant)
    try:
        session.commit()
    except (IntegrityError, StaleDataError):
        # Another request began using one of them meanwhile: nothing is lost by keeping them all.
        session.rollback()
        return 0
    return len(unused)


def asks_for_reading(session: Session, store_id: int) -> bool:
    """Whether a new sign-in for the store should ask for reading mail too: only
    while reading with the sign-in is on — signing in again ("Sign in again", a
    new account) must not take it away, and a store that stopped reading is not
    asked to let HeiChat read its mailbox."""
    row = session.exec(select(ImapFetching).where(ImapFetching.store_id == store_id)).first()
    return row is not None and row.enabled and row.auth_method == XOAUTH2


class ReadingNotAllowed(ValueError):
    """"Allow reading" came back without what reading needs; the message says what to do."""


def allow_reading(session: Session, store: Store, saved: SmtpSettings, provider_key: str, tokens: TokenSet,
                  box: SecretBox, actor: Member | None) -> OAuthGrant:
    """Renew the saved settings' own grant with a sign-in that allows reading.

    Only the saved settings' grant changes — the draft (which may hold other
    changes, or a password) is left as it is — and only for the same account:
    another account would read a mailbox HeiChat does not send from. Raises
    ``ReadingNotAllowed`` (nothing changed)."""
    grant = get_grant(session, store.id, saved.oauth_grant_id)
    entry = load_sign_in_catalogue().providers.get(provider_key, {})
    name = entry.get("name", provider_key)
    if grant is None or grant.provider != provider_key:
        raise ReadingNotAllowed(f"Your saved settings do not sign in with {name} any more: nothing changed.")
    if tokens.account_email.strip().lower() != saved.username.strip().lower():
        raise ReadingNotAllowed(f"You signed in as {tokens.account_email}, but HeiChat sends as {saved.username}: "
                                f"click \"Allow reading with {name}\" again and choose {saved.username}.")
    needed = entry.get("reading_scope", "")
    if needed and tokens.scope and needed not in tokens.scope.split():
        raise ReadingNotAllowed(f"{name} did not grant reading your mailbox: nothing changed. Click \"Allow "
                                f"reading with {name}\" again and accept every permission asked for.")
    _store_tokens(grant, tokens, box, token_identity(saved.host, saved.username))
    if not tokens.scope and needed:
        grant.scope = " ".join(filter(None, (grant.scope, needed)))  # no scope in the answer: what was asked
    grant.status, grant.problem = CONNECTED, None
    session.add(grant)
    session.commit()
    release_held_mail(session, store.id)
    audit.record(session, store_id=store.id, actor=actor, action="oauth.reading_allowed",
                 detail={"provider": provider_key, "account": grant.account_email})
    return grant


# -- what the pages and the outbox show ----------------------------------------------------------

@dataclass(frozen=True)
class ReconnectNotice:
    """The one banner: the saved settings' sign-in needs renewing."""

    provider: str
    account_email: str
    problem: str
    held_emails: int


def reconnect_notice(session: Session, store: Store) -> ReconnectNotice | None:
    """Whether the store's saved settings need "Sign in again" (None: fine)."""
    saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store.id)).first()
    if saved is None or saved.auth_method != XOAUTH2:
        return None
    grant = get_grant(session, store.id, saved.oauth_grant_id)
    if grant is not None and grant.status == CONNECTED:
        return None
    held = session.exec(select(OutboxEmail).where(OutboxEmail.store_id == store.id, OutboxEmail.status == "queued",
                                                  OutboxEmail.last_category == HELD_FOR_SIGN_IN)).all()
    return ReconnectNotice(provider=grant.provider if grant else saved.provider,
                           account_email=grant.account_email if grant else saved.username,
                           problem=grant.problem if grant else "disconnected", held_emails=len(held))


def release_held_mail(session: Session, store_id: int) -> int:
    """Make the store's mail held for a sign-in due now (after signing in again)."""
    held = session.exec(select(OutboxEmail).where(
        OutboxEmail.store_id == store_id, OutboxEmail.status == "queued",
        OutboxEmail.last_category.in_((HELD_FOR_SIGN_IN, HELD_FOR_TOKEN)))).all()
    now = utcnow()
    for email in held:
        email.next_attempt_at = now
        session.add(email)
    session.commit()
    return len(held)
