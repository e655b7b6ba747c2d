"""Encryption of secrets at rest (SMTP passwords) with Fernet.

The key lives outside the database (environment or ``instance/``), so a copy
of the database alone reveals no password. Several comma-separated keys may
be configured: the first encrypts, all decrypt (room for key rotation).
"""
from __future__ import annotations

import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


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
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with the configured keys") from exc

    def fingerprint(self, values: dict) -> str:
        """A keyed hash of ``values`` (password included) that reveals none of them.

        Used to know whether the exact settings on screen are the ones that
        passed a connection test.
        """
        canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._mac_key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
