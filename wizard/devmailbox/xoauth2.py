"""The server side of SASL XOAUTH2, as Google's submission servers speak it.

Used by the local test mailbox (``server.DevMailbox``) and by the tests'
SMTP peers, inside an aiosmtpd ``auth_XOAUTH2`` handler method. The client
sends ``base64("user=" U "\\x01auth=Bearer " T "\\x01\\x01")``, with the AUTH
command or after an empty ``334``. A refused token gets Google's exchange:
a ``334`` carrying a base64 JSON error report, which the client answers
with an empty line, then the final ``535 5.7.8``.
"""
from __future__ import annotations

import binascii
from base64 import b64decode

from aiosmtpd.smtp import MISSING, SMTP

__all__ = ["GOOGLE_ERROR_REPORT", "GOOGLE_REJECTION", "google_error_report", "parse_xoauth2",
           "read_xoauth2_credentials"]

GOOGLE_ERROR_REPORT = '{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}'
GOOGLE_REJECTION = ("535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
                    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials")


def parse_xoauth2(raw: bytes) -> tuple[str, str] | None:
    """``(username, token)`` from a decoded XOAUTH2 client response; None if malformed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = text.split("\x01")
    # Key=value fields, each ended by \x01, and one more \x01 to close.
    if len(fields) < 3 or fields[-2:] != ["", ""]:
        return None
    values = dict(field.split("=", 1) for field in fields[:-2] if "=" in field)
    scheme, _, token = values.get("auth", "").partition(" ")
    username = values.get("user", "")
    if not username or scheme.lower() != "bearer" or not token:
        return None
    return username, token


async def read_xoauth2_credentials(server: SMTP, args: list[str]) -> tuple[str, str] | None:
    """The client's ``(username, token)``; None once the server has answered a bad response itself."""
    if len(args) > 1:
        try:
            raw = b64decode(args[1], validate=True)
        except binascii.Error:
            await server.push("501 5.5.2 Cannot decode the XOAUTH2 response")
            return None
    else:
        # No initial response: ask for it with an empty challenge.
        raw = await server.challenge_auth("", encode_to_b64=False)
        if raw is MISSING:
            return None
    credentials = parse_xoauth2(raw)
    if credentials is None:
        await server.push("501 5.5.2 Malformed XOAUTH2 response")
    return credentials


async def google_error_report(server: SMTP) -> bytes | None:
    """Send Google's ``334`` error report; the client's answer (decoded; ``b""`` for
    the expected empty line), or None when it aborted or sent bad base64 (already answered)."""
    answer = await server.challenge_auth(GOOGLE_ERROR_REPORT)
    return None if answer is MISSING else answer
