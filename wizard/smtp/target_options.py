"""From configuration to an SMTP target: the timeouts, CA files, nameserver and address policy
(``TargetOptions``), and the target of a store's saved settings.

Plain functions (no Flask, no database session), shared by the wizard, the
commands, the outbox worker and the tests. ``server_identity`` is the
normalised server a stored password is bound to (``wizard.secrets``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wizard.catalogue import LOCAL_KEY
from wizard.models import SmtpSettings
from wizard.secrets import SecretBox, ServerIdentity
from wizard.smtp.address_policy import AddressPolicy
from wizard.smtp.types import SmtpTarget
from wizard.smtp.validation import ip_literal

__all__ = ["TargetOptions", "dev_mailbox_enabled", "target_options_from_config", "target_from", "saved_target",
           "server_identity", "saved_identity"]


def server_identity(host: str, port, security: str, username: str) -> ServerIdentity:
    """The identity a password is bound to, normalised like the probe's target."""
    return ServerIdentity.of(ip_literal(host) or host, port, security, username)


def saved_identity(saved: SmtpSettings) -> ServerIdentity:
    return server_identity(saved.host, saved.port, saved.security, saved.username)


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
                sender_email: str, options: TargetOptions, *, auth: str = "password",
                access_token: str = "") -> SmtpTarget:
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
        auth=auth,
        access_token=access_token,
    )


def saved_target(saved: SmtpSettings, box: SecretBox, options: TargetOptions) -> SmtpTarget:
    """The target of saved settings that log in with a password. Raises
    ``SecretError`` when the password cannot be read or is not bound to
    exactly this server. (``wizard.setup.targets`` also handles a sign-in.)"""
    password = box.unseal(saved.password_encrypted, saved.password_binding, saved_identity(saved))
    return target_from(saved.provider, saved.host, saved.port, saved.security, saved.username,
                       password, saved.sender_email, options)
