"""Configuration: embedded defaults, environment overrides, instance keys.

Secrets that must survive restarts (the Flask secret key and the key that
encrypts SMTP passwords) come from the environment or are generated once
into ``instance/`` with file mode 0600, so a first start needs no set-up.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import click
from cryptography.fernet import Fernet
from flask import Flask

DEFAULTS = {
    # SMTP conversation limits (seconds).
    "SMTP_TIMEOUT": 15.0,
    "SMTP_GREETING_TIMEOUT": 5.0,
    # Seconds for "Find my settings" (all candidates are tried at once).
    "DETECT_TIMEOUT": 5.0,
    "DETECT_PORTS": (587, 465, 2525, 25),
    # Extra CA bundle trusted in addition to the system CAs (PEM path), e.g. a
    # company relay with a private CA. Empty means the system CAs only.
    "SMTP_EXTRA_CA_FILE": "",
    # Outbound address policy of the web app (the operator CLI has none):
    # ports allowed ("" = any) and non-public networks allowed (CIDRs).
    "SMTP_ALLOWED_PORTS": "25,465,587,2525",
    "SMTP_ALLOWED_NETWORKS": "",
    # DNS server ("HOST:PORT") for SMTP host look-ups and DNS checks; empty
    # means the system resolver.
    "DNS_NAMESERVER": "",
    # Reading replies from the merchant's mailbox (wizard.inbound.imap_*): the
    # ports IMAP may use under the same address policy ("" = any), seconds per
    # conversation, the longest IDLE before it is renewed (RFC 2177: under 30
    # minutes) and the polling interval for servers without IDLE.
    "IMAP_ALLOWED_PORTS": "993,143",
    "IMAP_TIMEOUT": 15.0,
    "IMAP_IDLE_SECONDS": 29 * 60.0,
    "IMAP_POLL_SECONDS": 60.0,
    "DNS_TIMEOUT": 3.0,
    # Local test mailbox (aiosmtpd with STARTTLS + AUTH on loopback).
    "DEV_MAILBOX_HOST": "127.0.0.1",
    "DEV_MAILBOX_PORT": 8025,
    # None: follow app.debug. True/False force it (tests use True).
    "DEV_MAILBOX": None,
    # Abuse limits (flask-limiter syntax), per store and per client address.
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATE_LIMITS": {
        "sign_in": "10 per minute; 100 per hour",
        "sign_up": "10 per minute; 50 per hour",
        "connection_test": "10 per minute; 100 per hour",
        "test_email": "5 per minute; 50 per hour",
        "detect": "5 per minute; 50 per hour",
        # The public chat: per client address, and per store (``_store``) for
        # many addresses at once. Starting a conversation is rare for a real
        # visitor; writing is frequent, but nobody types 20 messages a minute.
        "chat_start": "5 per minute; 30 per hour",
        "chat_start_store": "60 per minute; 1000 per hour",
        "chat_message": "20 per minute; 300 per hour",
        "chat_message_store": "300 per minute; 5000 per hour",
    },
    # Scheme and host of the public site ("https://chat.example.com"): every
    # absolute URL in an email or a link is built from it (wizard.web.public_url).
    "PUBLIC_URL": "",
    # Reverse proxies in front of the app (Werkzeug's ProxyFix): 0 = none.
    "TRUSTED_PROXIES": 0,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Replies come back (wizard.inbound): the domain of reply+TOKEN@ addresses
    # ("" = off: follow-ups keep the store's own Reply-To), and the inbound SMTP server.
    "INBOUND_DOMAIN": "",
    "INBOUND_SMTP_HOST": "127.0.0.1",
    "INBOUND_SMTP_PORT": 2526,
    "INBOUND_MAX_BYTES": 10 * 1024 * 1024,
    "INBOUND_TLS_CERT": "",
    "INBOUND_TLS_KEY": "",
    # Seconds for each request to a sign-in provider (discovery, token, revocation).
    "OAUTH_HTTP_TIMEOUT": 10.0,
    # The local test sign-in server that `serve` runs in development mode (port 0: any free one).
    # Where the help texts send merchants with a question (WIZARD_SUPPORT_EMAIL); empty: no address shown.
    "SUPPORT_EMAIL": "",
    "DEV_SIGNIN_HOST": "127.0.0.1",
    "DEV_SIGNIN_PORT": 8026,
}

# Environment variable -> (config key, converter).
ENVIRONMENT = {
    "DATABASE_URL": ("DATABASE_URL", str),
    "SECRET_KEY": ("SECRET_KEY", str),
    "WIZARD_ENCRYPTION_KEY": ("ENCRYPTION_KEYS", str),
    "WIZARD_SMTP_TIMEOUT": ("SMTP_TIMEOUT", float),
    "WIZARD_SMTP_GREETING_TIMEOUT": ("SMTP_GREETING_TIMEOUT", float),
    "WIZARD_SMTP_CA_FILE": ("SMTP_EXTRA_CA_FILE", str),
    "WIZARD_DEV_MAILBOX_PORT": ("DEV_MAILBOX_PORT", int),
    "WIZARD_DEV_SIGNIN_PORT": ("DEV_SIGNIN_PORT", int),
    "WIZARD_DNS_NAMESERVER": ("DNS_NAMESERVER", str),
    "WIZARD_RATELIMIT_STORAGE_URI": ("RATELIMIT_STORAGE_URI", str),
    "WIZARD_SMTP_ALLOWED_PORTS": ("SMTP_ALLOWED_PORTS", str),
    "WIZARD_SMTP_ALLOWED_NETWORKS": ("SMTP_ALLOWED_NETWORKS", str),
    "WIZARD_IMAP_ALLOWED_PORTS": ("IMAP_ALLOWED_PORTS", str),
    "WIZARD_IMAP_TIMEOUT": ("IMAP_TIMEOUT", float),
    "WIZARD_IMAP_POLL_SECONDS": ("IMAP_POLL_SECONDS", float),
    "WIZARD_IMAP_IDLE_SECONDS": ("IMAP_IDLE_SECONDS", float),
    "WIZARD_PUBLIC_URL": ("PUBLIC_URL", str),
    "WIZARD_SUPPORT_EMAIL": ("SUPPORT_EMAIL", str),
    "WIZARD_TRUSTED_PROXIES": ("TRUSTED_PROXIES", str),
    "WIZARD_INBOUND_DOMAIN": ("INBOUND_DOMAIN", str),
    "WIZARD_INBOUND_SMTP_HOST": ("INBOUND_SMTP_HOST", str),
    "WIZARD_INBOUND_SMTP_PORT": ("INBOUND_SMTP_PORT", int),
    "WIZARD_INBOUND_MAX_BYTES": ("INBOUND_MAX_BYTES", int),
    "WIZARD_INBOUND_TLS_CERT": ("INBOUND_TLS_CERT", str),
    "WIZARD_INBOUND_TLS_KEY": ("INBOUND_TLS_KEY", str),
    # Sign in with Google / Microsoft (wizard.oauth): the operator's app registrations.
    "WIZARD_OAUTH_GOOGLE_CLIENT_ID": ("OAUTH_GOOGLE_CLIENT_ID", str),
    "WIZARD_OAUTH_GOOGLE_CLIENT_SECRET": ("OAUTH_GOOGLE_CLIENT_SECRET", str),
    "WIZARD_OAUTH_GOOGLE_METADATA_URL": ("OAUTH_GOOGLE_METADATA_URL", str),
    "WIZARD_OAUTH_MICROSOFT_CLIENT_ID": ("OAUTH_MICROSOFT_CLIENT_ID", str),
    "WIZARD_OAUTH_MICROSOFT_CLIENT_SECRET": ("OAUTH_MICROSOFT_CLIENT_SECRET", str),
    "WIZARD_OAUTH_MICROSOFT_TENANT": ("OAUTH_MICROSOFT_TENANT", str),
    "WIZARD_OAUTH_MICROSOFT_METADATA_URL": ("OAUTH_MICROSOFT_METADATA_URL", str),
}


EMPTY_ALLOWED = {"SMTP_ALLOWED_PORTS", "SMTP_ALLOWED_NETWORKS", "IMAP_ALLOWED_PORTS"}


def from_environment() -> dict:
    """The defaults with the environment's overrides (also used by commands
    that run without building the app)."""
    values = dict(DEFAULTS)
    for variable, (key, convert) in ENVIRONMENT.items():
        value = os.environ.get(variable)
        # Set but empty means "empty" only where that is meaningful (allowed ports: any).
        if value or (value == "" and key in EMPTY_ALLOWED):
            values[key] = convert(value)
    return values


def load(app: Flask, test_config: dict | None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``test_config``."""
    app.config.from_mapping(from_environment())
    if test_config:
        app.config.from_mapping(test_config)

    instance = Path(app.instance_path)
    # 0700: the database, keys and test mail in it are nobody else's business.
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    app.config.setdefault("DATABASE_URL", f"sqlite:///{instance / 'wizard.sqlite'}")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = read_or_create_key(
            instance / "secret_key", lambda: secrets.token_hex(32)
        )
    if not app.config.get("ENCRYPTION_KEYS"):
        # Read only: a missing key is created by ``ensure_encryption_key`` once
        # the database is open, and only if it holds no encrypted secrets.
        app.config["ENCRYPTION_KEYS"] = read_key(instance / "encryption.key")
    app.config.setdefault("DEV_MAILBOX_DIR", str(instance / "dev-mailbox"))
    # Flask's own default is False: decide here unless the caller chose.
    if "SESSION_COOKIE_SECURE" not in (test_config or {}):
        app.config["SESSION_COOKIE_SECURE"] = not app.debug and not app.testing
    # flask-login's remember cookie (never set: there is no "remember me") gets the same flags.
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")


class MissingEncryptionKey(click.ClickException):
    """Start-up refuses to replace a lost encryption key (shown as ``Error: …`` by the CLI)."""


def read_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def ensure_encryption_key(app: Flask, stored_secrets: int) -> None:
    """Create ``instance/encryption.key`` when no key is configured — but only
    if the database holds no encrypted secrets (``stored_secrets``): a new key
    would make every one of them unreadable, so start-up stops instead."""
    if app.config.get("ENCRYPTION_KEYS"):
        return
    path = Path(app.instance_path) / "encryption.key"
    if stored_secrets:
        raise MissingEncryptionKey(
            f"The encryption key {path} is missing (and WIZARD_ENCRYPTION_KEY is not set), but the database holds "
            f"{stored_secrets} encrypted secret(s) (stored SMTP passwords and sign-in tokens). "
            "Put the key file back (mode 0600) or set "
            "WIZARD_ENCRYPTION_KEY to that key, then start again. No new key was generated: it could not read "
            "them, and every merchant would have to type their password again."
        )
    app.config["ENCRYPTION_KEYS"] = read_or_create_key(path, lambda: Fernet.generate_key().decode())


def read_or_create_key(path: Path, make) -> str:
    """Return the key stored at ``path``, creating it (mode 0600) if missing."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = make()
    # O_EXCL: two processes starting at once must not both write a key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
