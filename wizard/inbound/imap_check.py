"""The staged IMAP conversation behind "Test IMAP".

``check_imap`` opens an ``ImapSession`` (dns, connect, tls or starttls,
greeting, login, folder — read-only) under one deadline, records each
stage's duration and outcome and the redacted transcript, and logs out.
Nothing is read and nothing changes in the mailbox.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from wizard.inbound.imap_session import ImapSession, Refused, StageFailed
from wizard.inbound.imap_transcript import ImapTranscript
from wizard.inbound.imap_types import ImapCheck, ImapTarget, StageRecord

__all__ = ["check_imap"]


def check_imap(target: ImapTarget, *, on_stage: Callable[[StageRecord], None] | None = None) -> ImapCheck:
    """Run the IMAP connection test for ``target``."""
    transcript = ImapTranscript()
    session = ImapSession(target, transcript=transcript, on_stage=on_stage, deadline=time.monotonic() + target.timeout)

    def result(ok: bool, stage: str, category: str, detail: str, answer=None) -> ImapCheck:
        return ImapCheck(ok=ok, stage=stage, category=category, detail=detail, answer=answer, stages=session.stages,
                         transcript=transcript.lines, elapsed_ms=session.elapsed_ms(),
                         capabilities=capabilities, folder_state=session.folder_state)

    capabilities: tuple[str, ...] = ()
    try:
        session.open()
        capabilities = session.capabilities()
    except Refused as refused:
        session.close()
        return result(False, "connect", "not_allowed", str(refused))
    except StageFailed as failed:
        session.close()
        return result(False, failed.stage, failed.failure.category, failed.failure.detail, failed.failure.answer)
    session.close(min(2.0, max(session.remaining(), 0.5)))
    return result(True, "done", "ok", "")
