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


class SecretBox:
    """Encrypts and decrypts short secrets with the configured keys."""

    def __init__(self, keys: str):
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise ValueError("no encryption key configured")
        self._fernet = MultiFernet([Fernet(part.encode()) for part in parts])
        # A separate, derived key for fingerprints: never the encryption key itself.
        self._mac_key = hashlib.sha256(b"heichat-fingerprint:" + parts[0].encode()).digest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

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
