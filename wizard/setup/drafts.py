"""The merchant's SMTP draft: values as typed, the stored password bound to its server, field checks and fingerprints.

Plain functions over a database session (no Flask), shared by the web views,
the CLI, the outbox worker and the tests."""
from __future__ import annotations

from sqlmodel import Session, select

from wizard.catalogue import LOCAL_KEY, Catalogue, ProviderPreset
from wizard.catalogue.hints import render_hint
from wizard.models import (
    OAuthGrant,
    SmtpDraft,
    SmtpSettings,
    Store,
    utcnow,
)
from wizard.secrets import (
    SERVER_CHANGED,
    UNREADABLE,
    SecretBox,
    SecretError,
    ServerIdentity,
)
from wizard.smtp.target_options import server_identity
from wizard.smtp.validation import (
    FIELDS,
    Finding,
    SmtpValues,
    check_smtp_settings,
)

STEPS = (
    ("pre-chat-form", "Pre-chat form"),
    ("provider", "Provider"),
    ("smtp", "SMTP settings"),
    ("test", "Test & save"),
    ("send", "Send a test email"),
)
TEXT_FIELDS = ("host", "port", "security", "sender_name", "sender_email", "username")
# Longest value kept in a draft; anything longer is already an error.
DRAFT_LIMIT = 2000


def clean_for_storage(value: str) -> str:
    """Cap the length and drop NUL (PostgreSQL text cannot hold it)."""
    return value[:DRAFT_LIMIT].replace("\x00", "\ufffd")


# -- drafts --------------------------------------------------------------------

def get_draft(session: Session, store: Store) -> SmtpDraft | None:
    return session.exec(select(SmtpDraft).where(SmtpDraft.store_id == store.id)).first()


def get_saved(session: Session, store: Store) -> SmtpSettings | None:
    return session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store.id)).first()


def preset_values(preset: ProviderPreset, region: str | None, member_email: str) -> dict[str, str]:
    """What choosing ``preset`` pre-fills in the SMTP form."""
    host = preset.host
    if preset.host_template:
        host = preset.host_for_region(region or preset.default_region)
    username = {"apikey": "apikey", "email": member_email, "account_email": member_email}.get(preset.username_rule, "")
    if preset.key == LOCAL_KEY:
        username = member_email
    host = preset.host_for_account(host, preset.account_kind(member_email))  # Zoho: smtppro for own domains
    return {"host": host, "port": str(preset.port), "security": preset.security, "username": username}


# -- the stored password and the server it is bound to -------------------------------

# Another provider was chosen: its password is another one, even on the same server.
PROVIDER_CHANGED = "provider_changed"
# The hint code (hints.toml) the password field shows for each reason a stored
# password cannot be used.
PASSWORD_NOTICES = {SERVER_CHANGED: "password_server_changed", UNREADABLE: "password_unreadable",
                    PROVIDER_CHANGED: "password_provider_changed"}


def draft_identity(draft: SmtpDraft) -> ServerIdentity:
    return server_identity(draft.host, draft.port, draft.security, draft.username)


def store_password(draft: SmtpDraft, password: str, box: SecretBox) -> None:
    """Seal a typed password to the draft's current server identity."""
    draft.password_encrypted, draft.password_binding = box.seal(clean_for_storage(password), draft_identity(draft))
    draft.password_notice = None


def keep_password_bound(draft: SmtpDraft, box: SecretBox) -> bool:
    """Call after any change to the draft's server fields: a stored password
    typed for another server identity is dropped, and the draft remembers why
    (the password field says so). True when one was dropped."""
    if not draft.password_encrypted or box.is_bound(draft.password_binding, draft_identity(draft)):
        return False
    draft.password_encrypted = draft.password_binding = None
    draft.password_notice = SERVER_CHANGED
    return True


def password_problem(draft: SmtpDraft | None, box: SecretBox) -> str | None:
    """Why the draft has no usable stored password (``SERVER_CHANGED`` or
    ``UNREADABLE``), or None (usable, or simply none typed yet). For a
    signed-in draft: ``SERVER_CHANGED`` when its sign-in was dropped."""
    if draft is None:
        return None
    if signed_in(draft):
        return SERVER_CHANGED if draft.oauth_grant_id is None and draft.password_notice == SERVER_CHANGED else None
    if not draft.password_encrypted:
        return draft.password_notice if draft.password_notice in PASSWORD_NOTICES else None
    try:
        box.unseal(draft.password_encrypted, draft.password_binding, draft_identity(draft))
    except SecretError as exc:
        return exc.reason
    return None


def signed_in(draft: SmtpDraft | None) -> bool:
    """Whether the draft logs in with a sign-in (XOAUTH2) instead of a password."""
    return draft is not None and draft.auth_method == "xoauth2"


def keep_credentials_bound(session: Session, draft: SmtpDraft, box: SecretBox) -> bool:
    """After a change of server fields: drop a password or a sign-in that was
    made for another server or account. True when one was dropped."""
    if not signed_in(draft):
        return keep_password_bound(draft, box)
    grant = session.get(OAuthGrant, draft.oauth_grant_id) if draft.oauth_grant_id is not None else None
    if grant is not None and grant.store_id != draft.store_id:
        grant = None
    if draft.oauth_grant_id is None:
        return False
    if grant is not None and box.is_bound(grant.token_binding, token_identity(draft.host, draft.username)):
        return False
    draft.oauth_grant_id = None
    draft.password_notice = SERVER_CHANGED
    return True


def token_identity(host: str, username: str) -> ServerIdentity:
    """Where a sign-in's tokens may be sent: the SMTP host and the account.
    Port and security are not part of it: they do not change who receives the token."""
    return server_identity(host, "", "xoauth2", username)


def set_server(draft: SmtpDraft, box: SecretBox, **fields: str) -> bool:
    """Change host / port / security / username of ``draft`` (not committed);
    the one way code other than the SMTP form moves a draft to another server.
    True when that dropped the stored password."""
    for name, value in fields.items():
        if name not in ("host", "port", "security", "username"):
            raise ValueError(f"not a server field: {name}")
        setattr(draft, name, clean_for_storage(value))
    return keep_password_bound(draft, box)


def default_sender_name(store: Store) -> str:
    """What a new draft's Sender name starts as: a real value to keep or change, not a placeholder."""
    return f"{store.name} Support"[:70]


def apply_provider(session: Session, store: Store, preset: ProviderPreset, region: str | None, member_email: str,
                   box: SecretBox) -> None:
    """Record the chosen provider and pre-fill the draft's connection fields.

    The sender fields stay as they were: they belong to the merchant, not to
    the provider.
    A stored password belongs to its provider: another provider drops it, and
    the password field says why.
    """
    changed = store.provider != preset.key or store.ses_region != region
    store.provider = preset.key
    store.ses_region = region if preset.host_template else None
    draft = get_draft(session, store) or SmtpDraft(store_id=store.id, sender_email=member_email,
                                                   sender_name=default_sender_name(store))
    if changed and draft.password_encrypted and not signed_in(draft):
        draft.password_encrypted = draft.password_binding = None
        draft.password_notice = PROVIDER_CHANGED
    if changed and signed_in(draft):
        # A sign-in belongs to its provider: another provider starts from its own login.
        draft.auth_method, draft.oauth_grant_id, draft.password_notice = "password", None, None
    if changed or not draft.host:
        values = preset_values(preset, region, member_email)
        server = {"host": values["host"], "port": values["port"], "security": values["security"]}
        if values["username"] or draft.username == "apikey":
            server["username"] = values["username"] or ""
        set_server(draft, box, **server)
    draft.provider = preset.key
    draft.updated_at = utcnow()
    session.add(store)
    session.add(draft)
    session.commit()


def update_draft(session: Session, store: Store, form: dict[str, str], box: SecretBox,
                 draft: SmtpDraft | None = None) -> SmtpDraft:
    """Store what was typed (errors included). A typed password is bound to
    the typed server; a blank one keeps the stored password only while the
    server (host, port, security, username) is the one it was typed for.
    ``draft``: the store's draft when the caller has it already. Nothing is
    written when nothing changed (live validation calls this on every pause)."""
    draft = draft or get_draft(session, store) or SmtpDraft(store_id=store.id)
    before = (draft.id, draft.provider, *(getattr(draft, field) for field in TEXT_FIELDS))
    draft.provider = store.provider or ""
    for field in TEXT_FIELDS:
        setattr(draft, field, clean_for_storage(form.get(field, "")))
    password = form.get("password", "")
    if password and not signed_in(draft):
        store_password(draft, password, box)
        changed = True
    else:
        changed = keep_credentials_bound(session, draft, box)
    changed = changed or before != (draft.id, draft.provider, *(getattr(draft, field) for field in TEXT_FIELDS))
    if not changed:
        return draft
    draft.updated_at = utcnow()
    session.add(draft)
    session.commit()
    return draft


def stored_password(draft: SmtpDraft | None, box: SecretBox) -> str:
    """The draft's password for the draft's own server, or "" (none, unreadable,
    or typed for another server)."""
    if draft is None or not draft.password_encrypted:
        return ""
    try:
        return box.unseal(draft.password_encrypted, draft.password_binding, draft_identity(draft))
    except SecretError:
        return ""


def values_for_check(provider: str, form: dict[str, str], draft: SmtpDraft | None, box: SecretBox) -> SmtpValues:
    """The values to validate: the form's, with the stored password when left blank."""
    values = {field: form.get(field, "") for field in TEXT_FIELDS}
    if signed_in(draft):
        return SmtpValues(provider=provider, password="", auth="xoauth2", **values)
    password = form.get("password", "") or stored_password(draft, box)
    return SmtpValues(provider=provider, password=password, **values)


def draft_form(draft: SmtpDraft | None) -> dict[str, str]:
    """The draft as form values — never the password."""
    if draft is None:
        return {field: "" for field in TEXT_FIELDS}
    return {field: getattr(draft, field) for field in TEXT_FIELDS}


def check_values(provider: str, form: dict[str, str], draft: SmtpDraft | None, box: SecretBox,
                 catalogue: Catalogue) -> list[Finding]:
    """The field checks for ``form``; when the password is missing because the
    stored one cannot be used, the password field says why."""
    findings = check_smtp_settings(values_for_check(provider, form, draft, box), catalogue)
    if signed_in(draft) and draft.oauth_grant_id is None:
        code = "sign_in_dropped" if draft.password_notice == SERVER_CHANGED else "sign_in_required"
        level, text = render_hint(catalogue.hints, code, catalogue.get(provider), {})
        return [Finding("password", code, level, text), *findings]
    problem = None if form.get("password") else password_problem(draft, box)
    if problem is None:
        return findings
    code = PASSWORD_NOTICES[problem]
    level, text = render_hint(catalogue.hints, code, catalogue.get(provider), {})
    kept = [f for f in findings if not (f.field == "password" and f.code == "password_required")]
    return [Finding("password", code, level, text), *kept]


def check_draft(draft: SmtpDraft | None, catalogue: Catalogue, box: SecretBox) -> list[Finding]:
    if draft is None:
        return check_smtp_settings(SmtpValues(provider=""), catalogue)
    return check_values(draft.provider, draft_form(draft), draft, box, catalogue)


def fingerprint(values: SmtpValues, box: SecretBox, grant_id: int | None = None) -> str:
    """Identifies the exact settings (password, or the sign-in, included) without revealing them."""
    data = {field: getattr(values, field).strip() if field != "password" else values.password for field in FIELDS}
    data["provider"] = values.provider
    data["host"] = data["host"].lower()
    if values.signed_in:
        # The sign-in, not its access token: a refresh keeps a passed test valid.
        data["auth"], data["grant"] = values.auth, grant_id
    return box.fingerprint(data)


def draft_fingerprint(draft: SmtpDraft, box: SecretBox) -> str:
    return fingerprint(values_for_check(draft.provider, draft_form(draft), draft, box), box, draft.oauth_grant_id)


