"""From settings to a connection target: the address policy and TLS options taken from configuration, and the SMTP target of a draft or of saved settings.

Plain functions over a database session (no Flask), shared by the web views,
the CLI, the outbox worker and the tests."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from wizard.catalogue import LOCAL_KEY
from wizard.models import (
    SmtpDraft,
    SmtpSettings,
)
from wizard.secrets import (
    SecretBox,
    SecretError,
)
from wizard.setup.drafts import draft_identity, saved_identity
from wizard.smtp.address_policy import AddressPolicy
from wizard.smtp.probe import SmtpTarget
from wizard.smtp.hosts import ip_literal


@dataclass
class TargetOptions:
    timeout: float
    greeting_timeout: float
    extra_ca_file: str | None
    local_ca_file: str | None  # the local test mailbox's certificate, debug only
    nameserver: str | None = None
    address_policy: AddressPolicy | None = None
    # The local test mailbox (host, port), allowed through the policy in debug only.
    local_mailbox: tuple[str, int] | None = None


def dev_mailbox_enabled(config: Mapping, debug: bool) -> bool:
    """Whether the local test mailbox is offered (``DEV_MAILBOX``; None: follow debug)."""
    setting = config.get("DEV_MAILBOX")
    return debug if setting is None else bool(setting)


def target_options_from_config(config: Mapping, dev_mailbox_enabled: bool, *,
                               instance_path: str | None = None) -> TargetOptions:
    """``TargetOptions`` from app configuration, without a request (mirrors
    ``wizard.web.context.target_options``). ``instance_path`` locates the local
    test mailbox's certificate, trusted only when the mailbox is enabled."""
    local_ca = None
    if dev_mailbox_enabled and instance_path:
        local_ca = str(Path(instance_path) / "dev-mailbox-cert.pem")
    return TargetOptions(
        timeout=float(config["SMTP_TIMEOUT"]),
        greeting_timeout=float(config["SMTP_GREETING_TIMEOUT"]),
        extra_ca_file=config.get("SMTP_EXTRA_CA_FILE") or None,
        local_ca_file=local_ca,
        nameserver=config.get("DNS_NAMESERVER") or None,
        address_policy=AddressPolicy.from_config(config["SMTP_ALLOWED_PORTS"], config["SMTP_ALLOWED_NETWORKS"]),
        local_mailbox=(config["DEV_MAILBOX_HOST"], int(config["DEV_MAILBOX_PORT"])) if dev_mailbox_enabled else None,
    )


def target_from(provider: str, host: str, port: int, security: str, username: str, password: str,
                sender_email: str, options: TargetOptions) -> SmtpTarget:
    ca_file = options.local_ca_file if provider == LOCAL_KEY and options.local_ca_file else options.extra_ca_file
    policy = options.address_policy
    if policy is not None and provider == LOCAL_KEY and options.local_mailbox:
        policy = policy.with_allowed(*options.local_mailbox)
    return SmtpTarget(
        host=ip_literal(host) or host.strip().lower().rstrip("."),
        port=port,
        security=security,
        username=username.strip(),
        password=password,
        sender_email=sender_email.strip(),
        timeout=options.timeout,
        greeting_timeout=options.greeting_timeout,
        ca_file=ca_file or None,
        nameserver=options.nameserver,
        address_policy=policy,
    )


def draft_target(draft: SmtpDraft, box: SecretBox, options: TargetOptions) -> SmtpTarget:
    """Test Connection's target. Raises ``SecretError`` unless the stored
    password was typed for exactly this server."""
    password = box.unseal(draft.password_encrypted, draft.password_binding, draft_identity(draft))
    return target_from(draft.provider, draft.host, int(draft.port.strip()), draft.security.strip(),
                       draft.username, password, draft.sender_email, options)


def saved_target(saved: SmtpSettings, box: SecretBox, options: TargetOptions) -> SmtpTarget:
    """The test email's and the outbox's target. Raises ``SecretError`` when
    the password cannot be read or is not bound to exactly this server."""
    password = box.unseal(saved.password_encrypted, saved.password_binding, saved_identity(saved))
    return target_from(saved.provider, saved.host, saved.port, saved.security, saved.username,
                       password, saved.sender_email, options)


def saved_password_problem(saved: SmtpSettings | None, box: SecretBox) -> str | None:
    """Why the saved settings' password cannot be used, or None."""
    if saved is None:
        return None
    try:
        box.unseal(saved.password_encrypted, saved.password_binding, saved_identity(saved))
    except SecretError as exc:
        return exc.reason
    return None
