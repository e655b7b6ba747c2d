"""Encryption of secrets at rest (SMTP passwords) with Fernet.

The key lives outside the database (environment or ``instance/``), so a copy
of the database alone reveals no password. Several comma-separated keys may
be configured: the first encrypts, all decrypt (room for key rotation).

A stored secret is *bound* to the server identity it was typed for (host,
port, security, username): ``seal`` returns the ciphertext together with a
keyed fingerprint of that identity, stored next to it, and ``unseal`` gives
the secret back only for the same identity. Anything that sends a secret to
a server (Test Connection, the test email, the outbox) opens it through
``unseal`` with the identity it is about to connect to, so a secret can never
be steered to another server by changing the fields around it. The same rule
serves any later kind of credential (OAuth tokens).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Why a stored secret cannot be used (the wizard words each for the merchant).
UNREADABLE = "unreadable"  # wrong or missing key, damaged ciphertext
SERVER_CHANGED = "server_changed"  # typed for another server identity


class SecretError(ValueError):
    """A stored secret cannot be used; ``reason`` is ``UNREADABLE`` or ``SERVER_CHANGED``."""

    reason = UNREADABLE

    def __init__(self, message: str = "stored secret cannot be decrypted with the configured keys"):
        super().__init__(message)


class SecretUnreadable(SecretError):
    reason = UNREADABLE


class SecretNotBound(SecretError):
    reason = SERVER_CHANGED

    def __init__(self):
        super().__init__("stored secret was typed for another server")


@dataclass(frozen=True)
class ServerIdentity:
    """Where a secret may be sent: the server and the account on it.

    Build it with ``ServerIdentity.of`` so equal servers compare equal
    (host case and trailing dot, port written as a number)."""

    host: str
    port: str
    security: str
    username: str

    @classmethod
    def of(cls, host: str, port, security: str, username: str) -> ServerIdentity:
        port_text = str(port).strip()
        if port_text.isascii() and port_text.isdigit() and len(port_text) <= 6:
            port_text = str(int(port_text))
        return cls(host=host.strip().lower().rstrip("."), port=port_text, security=security.strip(),
                   username=username.strip())


def split_keys(keys: str) -> list[str]:
    return [part.strip() for part in keys.split(",") if part.strip()]


class SecretBox:
    """Encrypts and decrypts short secrets with the configured keys."""

    def __init__(self, keys: str, fingerprint_secret: str):
        parts = split_keys(keys)
        if not parts:
            raise ValueError("no encryption key configured")
        self._fernet = MultiFernet([Fernet(part.encode()) for part in parts])
        # Fingerprints use a key derived from the app's secret, not from the
        # encryption keys, so rotating those does not void passed tests.
        self._mac_key = hashlib.sha256(b"heichat-fingerprint:" + fingerprint_secret.encode()).digest()
        # A separate key for bindings: a binding can never equal a fingerprint.
        self._binding_key = hashlib.sha256(b"heichat-secret-binding:" + fingerprint_secret.encode()).digest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the first key (readable by any configured key)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with the configured keys") from exc

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable() from exc

    # -- secrets bound to a server identity ------------------------------------------

    def binding(self, identity: ServerIdentity) -> str:
        """The keyed fingerprint of ``identity`` stored next to a sealed secret."""
        canonical = json.dumps(asdict(identity), sort_keys=True, separators=(",", ":"))
        return hmac.new(self._binding_key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()

    def seal(self, secret: str, identity: ServerIdentity) -> tuple[str, str]:
        """``(ciphertext, binding)`` for a secret typed for ``identity``."""
        return self.encrypt(secret), self.binding(identity)

    def is_bound(self, binding: str | None, identity: ServerIdentity) -> bool:
        return bool(binding) and hmac.compare_digest(binding, self.binding(identity))

    def unseal(self, token: str | None, binding: str | None, identity: ServerIdentity) -> str:
        """The secret, only for the identity it was sealed for.

        Raises ``SecretNotBound`` for any other identity (or a secret stored
        without a binding) and ``SecretUnreadable`` when it cannot be decrypted.
        """
        if not self.is_bound(binding, identity):
            raise SecretNotBound()
        return self.decrypt(token or "")

    def fingerprint(self, values: dict) -> str:
        """A keyed hash of ``values`` (password included) that reveals none of them.

        Used to know whether the exact settings on screen are the ones that
        passed a connection test.
        """
        canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._mac_key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
