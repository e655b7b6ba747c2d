"""The SMTP target of a draft (Test Connection) or of saved settings (the test email, the outbox).

With a password the stored password is unsealed for exactly the server it
was typed for; with a sign-in (``xoauth2``) a live access token comes from
``wizard.setup.sign_in`` (refreshed first when it is about to expire).
Either way a ``SecretError`` means nothing may be sent. Plain functions (no
Flask); the configuration glue (``TargetOptions``) lives in
``wizard.smtp.target_options``."""
from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session

from wizard.models import SmtpDraft, SmtpSettings
from wizard.oauth.flow import SignInClient
from wizard.secrets import SecretBox, SecretError
from wizard.setup.drafts import draft_identity
from wizard.setup.sign_in import XOAUTH2, access_token, get_grant
from wizard.smtp.target_options import TargetOptions, saved_identity, target_from
from wizard.smtp.types import SmtpTarget


def draft_target(session: Session, draft: SmtpDraft, box: SecretBox, options: TargetOptions,
                 clients: Mapping[str, SignInClient], *, token_refused: bool = False) -> SmtpTarget:
    """Test Connection's target. Raises ``SecretError`` unless the stored
    password (or sign-in) was made for exactly this server and account.
    ``token_refused``: the server refused the last access token (get another)."""
    port, security = int(draft.port.strip()), draft.security.strip()
    if draft.auth_method == XOAUTH2:
        grant = get_grant(session, draft.store_id, draft.oauth_grant_id)
        token = access_token(session, grant, draft.host, draft.username, box, clients, refused=token_refused)
        return target_from(draft.provider, draft.host, port, security, draft.username, "", draft.sender_email,
                           options, auth=XOAUTH2, access_token=token)
    password = box.unseal(draft.password_encrypted, draft.password_binding, draft_identity(draft))
    return target_from(draft.provider, draft.host, port, security, draft.username, password, draft.sender_email,
                       options)


def saved_target(session: Session, saved: SmtpSettings, box: SecretBox, options: TargetOptions,
                 clients: Mapping[str, SignInClient], *, token_refused: bool = False) -> SmtpTarget:
    """The test email's and the outbox's target; raises ``SecretError`` like ``draft_target``."""
    if saved.auth_method == XOAUTH2:
        grant = get_grant(session, saved.store_id, saved.oauth_grant_id)
        token = access_token(session, grant, saved.host, saved.username, box, clients, refused=token_refused)
        return target_from(saved.provider, saved.host, saved.port, saved.security, saved.username, "",
                           saved.sender_email, options, auth=XOAUTH2, access_token=token)
    password = box.unseal(saved.password_encrypted, saved.password_binding, saved_identity(saved))
    return target_from(saved.provider, saved.host, saved.port, saved.security, saved.username, password,
                       saved.sender_email, options)


def saved_password_problem(saved: SmtpSettings | None, box: SecretBox) -> str | None:
    """Why the saved settings' password cannot be used, or None (a sign-in: see ``reconnect_notice``)."""
    if saved is None or saved.auth_method == XOAUTH2:
        return None
    try:
        box.unseal(saved.password_encrypted, saved.password_binding, saved_identity(saved))
    except SecretError as exc:
        return exc.reason
    return None


def token_was_refused(target: SmtpTarget, category: str) -> bool:
    """Whether a failed conversation says the access token itself was refused
    (worth one new token before telling the merchant)."""
    return target.auth == XOAUTH2 and category == "auth_failed"
