"""The SMTP target of a draft (Test Connection) and whether saved settings' password can be used.

Plain functions (no Flask). The configuration glue (``TargetOptions``, the
target of saved settings) lives in ``wizard.smtp.target_options``."""
from __future__ import annotations

from wizard.models import SmtpDraft, SmtpSettings
from wizard.secrets import SecretBox, SecretError
from wizard.setup.drafts import draft_identity
from wizard.smtp.target_options import TargetOptions, saved_identity, target_from
from wizard.smtp.types import SmtpTarget


def draft_target(draft: SmtpDraft, box: SecretBox, options: TargetOptions) -> SmtpTarget:
    """Test Connection's target. Raises ``SecretError`` unless the stored
    password was typed for exactly this server."""
    password = box.unseal(draft.password_encrypted, draft.password_binding, draft_identity(draft))
    return target_from(draft.provider, draft.host, int(draft.port.strip()), draft.security.strip(),
                       draft.username, password, draft.sender_email, options)


def saved_password_problem(saved: SmtpSettings | None, box: SecretBox) -> str | None:
    """Why the saved settings' password cannot be used, or None."""
    if saved is None:
        return None
    try:
        box.unseal(saved.password_encrypted, saved.password_binding, saved_identity(saved))
    except SecretError as exc:
        return exc.reason
    return None
