"""Connection tests as stored runs: started, filled in stage by stage, finished.

A run is a ``ConnectionTest`` row. The wizard starts one, the probe runs in
a background thread with its own database session and appends each stage as
it finishes, and the page polls the row — so the merchant sees the timeline
fill in instead of a spinner. Without JavaScript the same run happens inside
the request. No Flask here.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from wizard.models import ConnectionTest, SmtpDraft, Store, utcnow
from wizard.secrets import SecretBox, SecretError
from wizard.setup.drafts import draft_fingerprint
from wizard.setup.targets import token_was_refused
from wizard.smtp.probe import probe_smtp
from wizard.smtp.types import ProbeResult, SmtpTarget, StageRecord

RUNNING, FINISHED = "running", "finished"
# How long past its own timeout a run may stay "running" before it counts as
# interrupted (a process that died mid-test leaves such a row behind).
GRACE_SECONDS = 10


def start_test(session: Session, store: Store, draft: SmtpDraft, box: SecretBox) -> ConnectionTest:
    """A new run for the draft's current values (the password is not stored)."""
    test = ConnectionTest(
        store_id=store.id,
        provider=draft.provider,
        host=draft.host.strip(),
        port=int(draft.port.strip()),
        security=draft.security.strip(),
        username=draft.username.strip(),
        sender_email=draft.sender_email.strip(),
        fingerprint=draft_fingerprint(draft, box),
        auth_method=draft.auth_method,
        status=RUNNING,
    )
    session.add(test)
    session.commit()
    return test


def add_stage(session: Session, test_id: int, stage: StageRecord) -> None:
    test = session.get(ConnectionTest, test_id)
    if test is None:
        return
    # Reassign: the JSON column only notices a new list, not an appended one.
    test.stages = [*test.stages, asdict(stage)]
    session.add(test)
    session.commit()


def finish_test(session: Session, test_id: int, result: ProbeResult) -> ConnectionTest:
    test = session.get(ConnectionTest, test_id)
    reply = result.reply
    test.status = FINISHED
    test.ok = result.ok
    test.stage = result.stage
    test.category = result.category
    test.reply_code = reply.code if reply else None
    test.reply_enhanced = reply.enhanced if reply else None
    test.reply_text = reply.text if reply else None
    test.elapsed_ms = result.elapsed_ms
    test.stages = result.stages_as_dicts()
    test.transcript = result.transcript
    test.suggestion = result.suggestion
    test.refusal = result.refusal
    session.add(test)
    session.commit()
    return test


# Builds the target again with a new access token (``token_refused=True``).
Retarget = Callable[[Session], SmtpTarget]


def probe_signed_in(session: Session, target: SmtpTarget, retarget: Retarget | None, **probe_options) -> ProbeResult:
    """The probe; when the server refuses a sign-in's access token, once more
    with a new one (a token can die before its announced expiry). Nothing was
    sent by the refused attempt: it stopped at AUTH."""
    result = probe_smtp(target, **probe_options)
    if result.ok or retarget is None or not token_was_refused(target, result.category):
        return result
    try:
        fresh = retarget(session)
    except SecretError:
        return result  # the sign-in needs renewing: the first answer says so
    return probe_smtp(fresh, **probe_options)


def run_test(session: Session, test: ConnectionTest, target: SmtpTarget,
             retarget: Retarget | None = None) -> ConnectionTest:
    """Run the probe inside the caller (no JavaScript: the request waits)."""
    return finish_test(session, test.id, probe_signed_in(session, target, retarget))


def run_test_in_background(engine: Engine, test_id: int, target: SmtpTarget,
                           retarget: Retarget | None = None) -> threading.Thread:
    """Run the probe in a thread that records each stage as it finishes."""

    def work() -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                result = probe_signed_in(session, target, retarget,
                                         on_stage=lambda stage: add_stage(session, test_id, stage))
            except Exception as exc:  # a bug must not leave the run spinning forever
                result = ProbeResult(ok=False, stage="connect", category="unexpected", detail=type(exc).__name__,
                                     reply=None, stages=[], transcript=[], elapsed_ms=0)
            finish_test(session, test_id, result)

    thread = threading.Thread(target=work, name=f"connection-test-{test_id}", daemon=True)
    thread.start()
    return thread


def expire_if_stuck(session: Session, test: ConnectionTest, timeout: float) -> ConnectionTest:
    """Mark a run that outlived its timeout as interrupted."""
    started = test.created_at if test.created_at.tzinfo else test.created_at.replace(tzinfo=utcnow().tzinfo)
    if test.status == RUNNING and utcnow() - started > timedelta(seconds=timeout + GRACE_SECONDS):
        test.status = FINISHED
        test.ok = False
        test.stage = test.stages[-1]["name"] if test.stages else "connect"
        test.category = "unexpected"
        test.reply_text = "The test was interrupted before it finished (the server restarted). Run it again."
        session.add(test)
        session.commit()
    return test
