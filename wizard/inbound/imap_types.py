"""The data of an IMAP conversation: where to connect, what the server answered, how each stage went.

Plain dataclasses shared by the session, the diagnosis, the connection test
and the fetcher (so none of them imports another for its types). The stage
records are ``wizard.smtp.types.StageRecord``: the pages show both alike.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from wizard.smtp.address_policy import AddressPolicy
from wizard.smtp.types import StageRecord

__all__ = ["ImapTarget", "ImapAnswer", "ImapFailure", "ImapCheck", "StageRecord"]


@dataclass
class ImapTarget:
    """Where and how to read. ``password`` and ``access_token`` are used, never recorded."""

    host: str
    port: int
    security: str  # ssl | starttls
    username: str
    password: str = field(default="", repr=False)
    auth: str = "password"  # password | xoauth2
    access_token: str = field(default="", repr=False)
    folder: str = "INBOX"
    timeout: float = 15.0
    greeting_timeout: float = 5.0
    ca_file: str | None = None
    nameserver: str | None = None
    # Which addresses and ports may be connected to; None: anything.
    address_policy: AddressPolicy | None = None


@dataclass
class ImapAnswer:
    """A server's tagged (or BYE) answer: ``NO [AUTHENTICATIONFAILED] Authentication failed.``"""

    status: str  # NO | BAD | BYE | OK
    code: str | None  # the bracketed response code, upper-case, without arguments
    text: str  # the whole answer after the status, response code included

    def __str__(self) -> str:
        return f"{self.status} {self.text}".strip()


@dataclass
class ImapFailure:
    category: str
    answer: ImapAnswer | None
    detail: str


@dataclass
class ImapCheck:
    """The outcome of "Test IMAP" (or of a fetcher's connection)."""

    ok: bool
    stage: str  # the stage that failed, or "done"
    category: str
    detail: str
    answer: ImapAnswer | None
    stages: list[StageRecord]
    transcript: list[str]
    elapsed_ms: int
    capabilities: tuple[str, ...] = ()
    # UIDVALIDITY, EXISTS and UIDNEXT of the folder, once it was opened.
    folder_state: dict = field(default_factory=dict)

    def stages_as_dicts(self) -> list[dict]:
        return [asdict(stage) for stage in self.stages]
