"""The sign-in server's ID-token signing key: RSA, made at start-up, never written to disk.

Clients verify ID tokens against the public half published at each flavour's
``jwks_uri``; a restart makes a new key (and a new ``kid``), as a provider's key
rotation would.
"""
from __future__ import annotations

import secrets

from joserfc.jwk import RSAKey

__all__ = ["SigningKey"]

ALGORITHM = "RS256"
KEY_SIZE = 2048


class SigningKey:
    """One RS256 key pair with a random ``kid``."""

    def __init__(self) -> None:
        self.kid = secrets.token_hex(8)
        self.private_key = RSAKey.generate_key(KEY_SIZE, parameters={"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        self.algorithm = ALGORITHM

    def jwks(self) -> dict:
        """The public JSON Web Key Set served at ``jwks_uri``."""
        return {"keys": [self.private_key.as_dict(private=False)]}
