"""A killed IMAP fetcher loses nothing and doubles nothing.

``flask --app wizard inbox-fetcher`` runs as an operator runs it, in its own
process on the test's database, against a real Dovecot. It is SIGKILLed in
the middle of a mailbox full of replies (no chance to finish the message in
hand), then run again: every reply is in its conversation exactly once. A
message is committed before ``last_uid`` moves past it, and one committed but
not yet counted is recognised again by its Message-ID.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, func, select
from test_imap_fetcher import append, inbound, replying, wait_until  # noqa: F401  (replying: the fixture)

from wizard.models.inbound import InboundEmail

from dovecot_server import dovecot  # noqa: F401  (the fixture)
from imap_helpers import fetching_row, gmail_reply

ROOT = Path(__file__).resolve().parent.parent
REPLIES = 150


def fetcher_process(app, log, *arguments: str) -> subprocess.Popen:
    """The command in its own process; its stderr goes to ``log`` (a file: a pipe nobody reads could fill)."""
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], SECRET_KEY=app.config["SECRET_KEY"],
               WIZARD_ENCRYPTION_KEY=app.config["ENCRYPTION_KEYS"], WIZARD_INSTANCE_PATH=app.config["INSTANCE_PATH"],
               WIZARD_SMTP_CA_FILE=app.config["SMTP_EXTRA_CA_FILE"], WIZARD_IMAP_ALLOWED_PORTS="",
               WIZARD_SMTP_ALLOWED_NETWORKS=app.config["SMTP_ALLOWED_NETWORKS"])
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wizard", "inbox-fetcher", *arguments],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)


def stored(app) -> int:
    with Session(app.extensions["db_engine"]) as session:
        return session.exec(select(func.count()).select_from(InboundEmail)).one()


def test_a_fetcher_killed_mid_mailbox_loses_nothing_and_doubles_nothing(app, replying, dovecot, tmp_path):  # noqa: F811
    our_id = replying["our_id"]
    expected = [f"CAF-kill-{n}@mail.gmail.com" for n in range(1, REPLIES + 1)]
    uids = [append(dovecot, gmail_reply(our_id, f"Answer number {n}.", f"<{message_id}>"))
            for n, message_id in enumerate(expected, start=1)]

    log = (tmp_path / "fetcher.log").open("w+b")
    running = fetcher_process(app, log, "--poll-seconds", "0.2")
    try:
        wait_until(lambda: stored(app) >= 5 or running.poll() is not None, seconds=60, what="the first replies")
        assert running.poll() is None, (tmp_path / "fetcher.log").read_text()
        running.send_signal(signal.SIGKILL)
        running.wait(timeout=10)
    finally:
        if running.poll() is None:
            running.kill()
            running.wait(timeout=10)
    at_kill = stored(app)
    assert 5 <= at_kill < REPLIES  # killed in the middle, not after the last one

    again = fetcher_process(app, log, "--once")
    assert again.wait(timeout=120) == 0, (tmp_path / "fetcher.log").read_text()
    log.close()

    assert [row.message_id.strip("<>") for row in inbound(app)] == expected  # each once, in order
    row = fetching_row(app, replying["store_id"])
    assert row.last_uid == uids[-1] and row.last_category == "ok"
