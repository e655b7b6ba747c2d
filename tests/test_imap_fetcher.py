"""The IMAP fetcher against a real Dovecot: replies come in once, nothing else is touched, nothing is lost.

Messages are put into the mailbox with IMAP APPEND (the tests' own client),
shaped like a real client's; HeiChat's fetcher then reads them.
"""
from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import Session, select

from wizard.inbound.imap_fetcher import run_fetcher
from wizard.inbound.imap_options import imap_options_from_config
from wizard.models.inbound import InboundEmail
from wizard.secrets import SecretBox

from conftest import sign_up
from dovecot_server import (
    OTHER_PASSWORD,
    OTHER_USERNAME,
    dovecot,  # noqa: F401  (the fixture)
    empty_mailbox,
)
from failure_peers import SMTP_USERNAME
from helpers import Visitor, chat_bodies, conversation_row, enable_prechat, start_chat, store_id_of
from imap_helpers import (
    allow_test_imap,
    fetching_row,
    gmail_reply,
    newsletter,
    result_category,
    save_sending,
    send_follow_up,
    turn_on_reading,
)
from smtp_servers import start_test_server


@pytest.fixture
def replying(app, merchant, starttls_server, dovecot):  # noqa: F811
    """Blue Fern: sending saved, a chat with Ada, one follow-up delivered to her, reading switched on."""
    allow_test_imap(app)
    empty_mailbox(dovecot, SMTP_USERNAME)
    save_sending(merchant, starttls_server)
    enable_prechat(merchant)
    start_chat(app)
    conversation_id = conversation_row(app).id
    our_id = send_follow_up(app, merchant, conversation_id)
    assert result_category(turn_on_reading(merchant, dovecot)) == "ok"
    return {"conversation_id": conversation_id, "our_id": our_id, "store_id": store_id_of(app, merchant.email)}


def box_of(app) -> SecretBox:
    return SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])


def fetch_once(app, **options):
    return run_fetcher(app.extensions["db_engine"], box_of(app), lambda: imap_options_from_config(app.config),
                       once=True, **options)


def inbound(app, store_id: int | None = None) -> list[InboundEmail]:
    with Session(app.extensions["db_engine"]) as session:
        query = select(InboundEmail).order_by(InboundEmail.id)
        if store_id is not None:
            query = query.where(InboundEmail.store_id == store_id)
        return list(session.exec(query).all())


def append(dovecot, raw: bytes, flags=(), user: str = SMTP_USERNAME, folder: str = "INBOX") -> int:  # noqa: F811
    client = dovecot.mailbox(user)
    try:
        answer = client.append(folder, raw, flags=flags)
        return int(answer.split(b"APPENDUID ")[1].split(b" ")[1].rstrip(b"]"))
    finally:
        client.logout()


def flags_in(dovecot, user: str = SMTP_USERNAME, folder: str = "INBOX") -> dict[int, set]:  # noqa: F811
    client = dovecot.mailbox(user)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        return {uid: set(data[b"FLAGS"]) for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}
    finally:
        client.logout()


def wait_until(condition, seconds: float = 10.0, what: str = "the condition"):
    """Wait on ``condition`` (never a fixed sleep): checked every few milliseconds up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        threading.Event().wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_replies_come_in_once_and_nothing_else_is_touched(app, replying, dovecot):  # noqa: F811
    our_id = replying["our_id"]
    first = append(dovecot, gmail_reply(our_id, "Great, please send 3 boxes.", "<CAF-reply-1@mail.gmail.com>"))
    news = append(dovecot, newsletter("<offers-2026-12@shop-supplies.example.org>"), flags=[b"\\Seen"])
    second = append(dovecot, gmail_reply(our_id, "And one more question: gift wrap?", "<CAF-reply-2@mail.gmail.com>"),
                    flags=[b"\\Flagged"])
    before = flags_in(dovecot)

    fetch_once(app)
    fetch_once(app)  # a second run finds nothing new and doubles nothing

    stored = inbound(app)
    assert [row.message_id.strip("<>") for row in stored] == ["CAF-reply-1@mail.gmail.com", "CAF-reply-2@mail.gmail.com"]
    assert all(row.source == "imap" and row.conversation_id == replying["conversation_id"] for row in stored)
    bodies = " ".join(body for _author, body in chat_bodies(app, replying["conversation_id"]))
    assert "Great, please send 3 boxes." in bodies and "gift wrap?" in bodies
    assert "Yes, we ship to Oslo." not in bodies.split("Great, please send 3 boxes.")[1]  # the quote stays out
    # Read, never changed: \Seen is not set by reading, no flag moves, nothing is deleted.
    assert flags_in(dovecot) == before
    assert b"\\Seen" not in before[first] and b"\\Seen" in before[news] and b"\\Flagged" in before[second]
    row = fetching_row(app, replying["store_id"])
    assert row.last_uid == second and row.last_category == "ok"


def test_a_rebuilt_mailbox_is_read_again_without_duplicates(app, merchant, replying, dovecot):  # noqa: F811
    our_id = replying["our_id"]
    client = dovecot.mailbox(SMTP_USERNAME)
    if client.folder_exists("Replies"):
        client.delete_folder("Replies")
    client.create_folder("Replies")
    client.logout()
    assert result_category(turn_on_reading(merchant, dovecot, folder="Replies")) == "ok"
    old = gmail_reply(our_id, "First answer.", "<CAF-rebuilt-1@mail.gmail.com>")
    append(dovecot, old, folder="Replies")
    fetch_once(app)
    validity = fetching_row(app, replying["store_id"]).uidvalidity
    assert len(inbound(app)) == 1

    # The folder is deleted and made again (a restore, a migration): new UIDVALIDITY, UIDs from 1.
    client = dovecot.mailbox(SMTP_USERNAME)
    client.delete_folder("Replies")
    client.create_folder("Replies")
    client.logout()
    append(dovecot, old, folder="Replies")
    append(dovecot, gmail_reply(our_id, "Second answer.", "<CAF-rebuilt-2@mail.gmail.com>"), folder="Replies")
    fetch_once(app)

    row = fetching_row(app, replying["store_id"])
    assert row.uidvalidity != validity and row.last_uid == 2
    assert [r.message_id.strip("<>") for r in inbound(app)] == ["CAF-rebuilt-1@mail.gmail.com",
                                                                 "CAF-rebuilt-2@mail.gmail.com"]


def test_an_interrupted_fetch_loses_nothing_and_doubles_nothing(app, replying, dovecot):  # noqa: F811
    from wizard.inbound.ingest import ingest

    our_id = replying["our_id"]
    uids = [append(dovecot, gmail_reply(our_id, f"Answer number {n}.", f"<CAF-crash-{n}@mail.gmail.com>"))
            for n in range(1, 4)]
    calls = []

    def dies_at_the_second(session, raw, **kwargs):
        # The process dies while the second message is being stored: nothing of it is committed.
        calls.append(raw)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return ingest(session, raw, **kwargs)

    fetch_once(app, ingest_message=dies_at_the_second)
    row = fetching_row(app, replying["store_id"])
    assert row.last_uid == uids[0] and row.last_category == "unexpected"
    assert len(inbound(app)) == 1

    fetch_once(app)
    assert [r.message_id.strip("<>") for r in inbound(app)] == [f"CAF-crash-{n}@mail.gmail.com" for n in range(1, 4)]
    assert fetching_row(app, replying["store_id"]).last_uid == uids[-1]


def test_a_message_arriving_during_idle_comes_in_without_waiting_for_the_poll(app, replying, dovecot):  # noqa: F811
    app.config["IMAP_POLL_SECONDS"] = 600  # a poll would come far too late for this test
    idling, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=run_fetcher, args=(app.extensions["db_engine"], box_of(app),
                                                         lambda: imap_options_from_config(app.config)),
                              kwargs={"stop_event": stop, "on_idle": lambda _store: idling.set()}, daemon=True)
    thread.start()
    try:
        assert idling.wait(10), "the fetcher never went into IDLE"
        append(dovecot, gmail_reply(replying["our_id"], "Arrived while you were idling.", "<CAF-idle@mail.gmail.com>"))
        stored = wait_until(lambda: inbound(app), what="the reply to be imported")
        assert stored[0].message_id.strip("<>") == "CAF-idle@mail.gmail.com"
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()


def test_store_b_never_imports_a_reply_to_store_a(app, replying, dovecot, certs):  # noqa: F811
    empty_mailbox(dovecot, OTHER_USERNAME)
    other = sign_up(app.test_client(), email="owner@greenleaf.example.com", store="Green Leaf")
    with start_test_server("starttls", username=OTHER_USERNAME, password=OTHER_PASSWORD, cert=certs[0],
                           key=certs[1]) as server:
        _save_other(other, server)
        assert result_category(turn_on_reading(other, dovecot)) == "ok"
        # Green Leaf has sent email of its own, so its mailbox is really read (not passed over as too old).
        visitor = Visitor(app)
        assert visitor.post("/s/green-leaf/chat", {"name": "Bo", "email": "bo@example.com",
                                                   "message": "Hello?"}).status_code == 302
        send_follow_up(app, other, conversation_row(app).id)
    # Ada answered Blue Fern, but the copy sits in Green Leaf's mailbox (a forward, a shared alias).
    append(dovecot, gmail_reply(replying["our_id"], "Meant for Blue Fern.", "<CAF-crossed@mail.gmail.com>"),
           user=OTHER_USERNAME)
    fetch_once(app)
    assert inbound(app) == []
    assert "Meant for Blue Fern." not in " ".join(b for _a, b in chat_bodies(app, replying["conversation_id"]))
    assert fetching_row(app, store_id_of(app, "owner@greenleaf.example.com")).last_category == "ok"


def _save_other(merchant, server) -> None:
    from conftest import run_connection_test
    from helpers import choose_other

    enable_prechat(merchant)
    choose_other(merchant)
    response = merchant.post("/wizard/smtp", {"host": "localhost", "port": str(server.port), "security": "starttls",
                                              "sender_name": "Green Leaf", "sender_email": OTHER_USERNAME,
                                              "username": OTHER_USERNAME, "password": OTHER_PASSWORD})
    assert response.status_code == 302
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302


def test_bounces_and_out_of_office_replies_fetched_over_imap(app, merchant, replying, dovecot):  # noqa: F811
    """Gmail and Microsoft 365 accept at RCPT and bounce later by email, into the merchant's mailbox:
    the fetcher finds the report, marks the email bounced and suppresses the address; an
    out-of-office reply is a note that never makes the conversation await an answer."""
    from wizard.models.outbox import BOUNCED, OutboxEmail, Suppression

    our_id = replying["our_id"]
    away = gmail_reply(our_id, "I am away until Monday.", "<oof-1@mail.example.com>").replace(
        b"Subject: Re:", b"Auto-Submitted: auto-replied\r\nSubject: Automatic reply: Re:")
    append(dovecot, away)
    fetch_once(app)
    (note,) = inbound(app)
    assert note.kind == "auto_reply"
    authors = [author for author, _body in chat_bodies(app, replying["conversation_id"])]
    assert authors[-1] != "visitor" or "I am away" not in chat_bodies(app, replying["conversation_id"])[-1][1]
    page = merchant.get("/inbox?awaiting=1").get_data(as_text=True)
    assert "I am away until Monday." not in page

    report = (
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        f"To: {SMTP_USERNAME}\r\nSubject: Delivery Status Notification (Failure)\r\n"
        "Message-ID: <dsn-1@mx.google.com>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nAddress not found: ada@example.com\r\n\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; googlemail.com\r\n\r\n"
        "Final-Recipient: rfc822; ada@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist.\r\n\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {our_id}\r\nTo: ada@example.com\r\nSubject: Your chat with Blue Fern Shop\r\n\r\n--b1--\r\n"
    ).encode()
    append(dovecot, report)
    fetch_once(app)
    with Session(app.extensions["db_engine"]) as session:
        email = session.exec(select(OutboxEmail).where(OutboxEmail.message_id == our_id)).one()
        assert email.status == BOUNCED and email.last_category == "recipient_rejected"
        suppressed = session.exec(select(Suppression).where(Suppression.store_id == replying["store_id"])).one()
        assert (suppressed.email, suppressed.reason) == ("ada@example.com", "hard_bounce")
    assert [row.kind for row in inbound(app)] == ["auto_reply", "bounce"]
