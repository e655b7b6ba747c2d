"""A killed inbound SMTP server loses nothing and doubles nothing.

``flask --app wizard inbound-smtp`` runs as an operator runs it, in its own
process on the test's database. A message is acknowledged (250) only once it
is committed; a server SIGKILLed in the middle of a message has acknowledged
nothing, so the sender's retry (to the restarted server) is stored exactly once.
"""
from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from inbound_helpers import INBOUND_DOMAIN, gmail_style_reply, inbound_rows, reply_to_of, sent_follow_up, store_with_conversation

from wizard.devmailbox.server import find_free_port

ROOT = Path(__file__).resolve().parent.parent


def start_inbound(app, port: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], SECRET_KEY=app.config["SECRET_KEY"],
               WIZARD_ENCRYPTION_KEY=app.config["ENCRYPTION_KEYS"], WIZARD_INBOUND_DOMAIN=INBOUND_DOMAIN,
               WIZARD_INSTANCE_PATH=app.config["INSTANCE_PATH"])
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wizard", "inbound-smtp", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until it answers (or died)
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("inbound-smtp did not start")


def test_a_server_killed_mid_message_loses_nothing_and_the_retry_is_stored_once(app):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    email = sent_follow_up(app, store_id, conversation_id, "k1")
    address = reply_to_of(app, conversation_id)
    reply = gmail_style_reply(address, email, "Killed or not, this arrives once.")
    port = find_free_port()
    server = start_inbound(app, port)
    try:
        # The sender has handed over half the message when the server is killed: no 250 was given.
        client = smtplib.SMTP("127.0.0.1", port, timeout=10)
        client.ehlo()
        assert client.mail("ada@example.com")[0] == 250
        assert client.rcpt(address)[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(reply.as_bytes()[:200])
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        client.close()
        assert inbound_rows(app) == []
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # The sender tries again later (as every MTA does): stored once, even when it sends twice.
    server = start_inbound(app, port)
    try:
        for _ in range(2):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                assert client.send_message(reply) == {}
        server.send_signal(signal.SIGKILL)  # right after the 250: it was committed before
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    (row,) = inbound_rows(app)
    assert row.conversation_id == conversation_id and "arrives once" in row.text
