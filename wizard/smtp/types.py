"""The data of an SMTP conversation: where to connect, what the server said, how each stage went.

Plain dataclasses with no behaviour beyond formatting, imported by the
session, the probe, the diagnosis and the outbox alike (so none of them has
to import another for its types).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from wizard.smtp.address_policy import AddressPolicy
from wizard.smtp.transcript import split_enhanced

__all__ = ["AUTH_METHODS", "SmtpTarget", "Reply", "StageRecord", "ProbeResult", "reply_from"]

# The ways a target can log in (``SmtpTarget.auth``); the session, the
# diagnosis texts and the CLI all key on these names.
AUTH_METHODS = ("password", "xoauth2")


@dataclass
class SmtpTarget:
    """Where and how to connect. ``password`` and ``access_token`` are used, never recorded."""

    host: str
    port: int
    security: str  # starttls | ssl
    username: str
    password: str = field(repr=False)
    sender_email: str = ""
    timeout: float = 15.0
    greeting_timeout: float = 5.0
    ca_file: str | None = None
    local_hostname: str = "heichat-wizard.localdomain"
    # "HOST:PORT" of a DNS server to ask instead of the system resolver.
    nameserver: str | None = None
    # Which addresses and ports may be connected to; None: anything (the CLI).
    address_policy: AddressPolicy | None = None
    # How to log in: "password" (PLAIN / LOGIN / CRAM-MD5 with ``password``) or
    # "xoauth2" (SASL XOAUTH2 with ``access_token``, an OAuth 2.0 bearer token).
    auth: str = "password"
    access_token: str = field(default="", repr=False)


@dataclass
class Reply:
    code: int
    enhanced: str | None
    text: str


def reply_from(code: int, message: bytes | str) -> Reply:
    """A server reply as smtplib hands it over (code, bytes), on one line."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    enhanced, text = split_enhanced(text.replace("\n", " "))
    return Reply(code, enhanced, text)


@dataclass
class StageRecord:
    name: str
    ok: bool
    elapsed_ms: int
    reply: Reply | None = None
    detail: str = ""


@dataclass
class ProbeResult:
    ok: bool
    stage: str  # the stage that failed, or "done"
    category: str
    detail: str
    reply: Reply | None
    stages: list[StageRecord]
    transcript: list[str]
    elapsed_ms: int
    queue_id: str | None = None
    server_banner: str = ""
    # Settings to try next when the failure is a transport mismatch.
    suggestion: dict | None = None
    # Why the address policy refused the target (nothing was sent to it).
    refusal: str | None = None

    def stages_as_dicts(self) -> list[dict]:
        return [asdict(stage) for stage in self.stages]
