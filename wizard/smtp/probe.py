"""The staged SMTP conversation behind Test Connection and the test email.

``probe_smtp`` opens an ``SmtpSession`` (``wizard.smtp.session``: dns,
connect, tls (implicit), greeting, ehlo, starttls, auth) and then goes on
stage by stage — sender, and for a real send recipient and data —
recording for each its duration, outcome and the server's reply, and the
redacted transcript of the whole dialogue. The whole run is bounded by one
deadline. Credentials only ever travel over TLS.
"""
from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

from wizard.smtp.diagnosis import non_ascii_address_message
from wizard.smtp.session import Refused, SmtpSession, StageFailed, extract_queue_id
from wizard.smtp.transcript import Transcript
from wizard.smtp.types import ProbeResult, Reply, SmtpTarget, StageRecord

__all__ = ["probe_smtp", "planned_stages"]


def planned_stages(security: str, sending: bool = False) -> list[str]:
    """The stages a run goes through, in order (for showing what is still to come)."""
    stages = ["dns", "connect"]
    stages += ["tls", "greeting", "ehlo"] if security == "ssl" else ["greeting", "ehlo", "starttls"]
    stages += ["auth", "sender"]
    return stages + (["recipient", "data"] if sending else [])


# -- the stages after the session is open ---------------------------------------------------

def _sender(session: SmtpSession) -> Reply:
    target = session.target
    refusal = non_ascii_address_message(target.sender_email)
    if refusal:
        raise session.fail("sender", None, category="sender_rejected", detail=refusal)
    code, message = session.client.mail(target.sender_email)
    return session.expect("sender", code, message, (250,))


def _recipient(session: SmtpSession, recipients: list[str]) -> Reply:
    reply = None
    for address in recipients:
        code, message = session.client.rcpt(address)
        reply = session.expect("recipient", code, message, (250, 251))
    return reply


def _data(session: SmtpSession, message: EmailMessage) -> Reply:
    payload = message.as_bytes(policy=SMTP_POLICY)
    code, text = session.client.docmd("DATA")
    session.expect("data", code, text, (354,))
    session.transcript.sending_data = True
    try:
        session.client.send(_dot_stuffed(payload))
    finally:
        session.transcript.sending_data = False
    code, text = session.client.getreply()
    return session.expect("data", code, text, (250,))


def _reset(session: SmtpSession) -> None:
    """RSET after the sender check, so the server forgets the transaction."""
    try:
        session.client.rset()
    except (OSError, smtplib.SMTPException):
        pass


def _quit(session: SmtpSession) -> None:
    session.quit(min(2.0, max(session.remaining(), 0.5)))


def _dot_stuffed(payload: bytes) -> bytes:
    """The DATA body (already CRLF): leading dots doubled, final '.' line (RFC 5321 4.5.2)."""
    data = re.sub(rb"(?m)^\.", b"..", payload)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def probe_smtp(
    target: SmtpTarget,
    *,
    message: EmailMessage | None = None,
    recipients: list[str] | None = None,
    on_stage: Callable[[StageRecord], None] | None = None,
    authenticate: bool = True,
) -> ProbeResult:
    """Run the SMTP conversation for ``target``.

    ``authenticate=False`` stops once the connection is encrypted and has
    said EHLO — no credentials are sent (auto-detection uses this).

    Without ``message`` it stops after MAIL FROM (then RSET): a connection
    test that sends nothing. With ``message`` and ``recipients`` it delivers
    the message and reports the server's final answer and queue id.
    """
    session = SmtpSession(target, transcript=Transcript(), on_stage=on_stage,
                          deadline=time.monotonic() + target.timeout)
    queue_id = None
    try:
        session.open(authenticate=authenticate)
        if authenticate:
            session.stage("sender", lambda: _sender(session))
            if message is None:
                _reset(session)
            else:
                session.stage("recipient", lambda: _recipient(session, recipients or []))
                final = session.stage("data", lambda: _data(session, message))
                queue_id = extract_queue_id(final.text)
    except Refused as refused:
        session.record("connect", time.monotonic(), False, None, str(refused))
        _quit(session)
        return ProbeResult(
            ok=False, stage="connect", category="port_not_allowed" if refused.kind == "port" else "connection_refused",
            detail=str(refused), reply=None,
            stages=session.stages, transcript=session.transcript.lines, elapsed_ms=session.elapsed_ms(),
            refusal=str(refused),
        )
    except StageFailed as failed:
        _quit(session)
        failure = failed.failure
        return ProbeResult(
            ok=False,
            stage=session.stages[-1].name,
            category=failure.category,
            detail=failure.detail,
            reply=failure.reply,
            stages=session.stages,
            transcript=session.transcript.lines,
            elapsed_ms=session.elapsed_ms(),
            server_banner=session.banner,
            suggestion=failure.suggestion,
        )
    _quit(session)
    return ProbeResult(
        ok=True,
        stage="done",
        category="ok",
        detail="",
        reply=session.last_reply,
        stages=session.stages,
        transcript=session.transcript.lines,
        elapsed_ms=session.elapsed_ms(),
        queue_id=queue_id,
        server_banner=session.banner,
    )

