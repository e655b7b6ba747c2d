"""The chat and the inbox at scale: a quiet poll costs one statement, presence is
written at most every 30 s (and "visitor gone" stays right within that), the
inbox and the timeline come a page at a time, and every query the chat and the
inbox run finds its rows through an index (both backends)."""
from __future__ import annotations

import contextlib
import re

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from wizard.chat import conversations
from wizard.models import ChatMessage, Contact, Conversation, Store, utcnow
from wizard.outbox.times import as_utc

from helpers import MESSAGES, conversation_row, set_last_seen

PRESENCE_SECONDS = 30


@contextlib.contextmanager
def statements(app):
    """Every SQL statement the app's engine runs inside the block, with its parameters."""
    seen: list[tuple[str, object]] = []
    engine = app.extensions["db_engine"]

    def record(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def set_seen_seconds_ago(app, conversation_id: int, seconds: float) -> None:
    set_last_seen(app, conversation_id, seconds / 60)


def seen_seconds_ago(app, conversation_id: int) -> float:
    with Session(app.extensions["db_engine"]) as db:
        return (utcnow() - as_utc(db.get(Conversation, conversation_id).last_seen_at)).total_seconds()


def poll_url(page_html: str) -> str:
    return re.search(r'hx-get="(/s/blue-fern-shop/chat/messages\?after=\d+)"', page_html).group(1)


# -- the poll and presence -----------------------------------------------------------

def test_a_quiet_poll_is_one_statement_and_writes_presence_at_most_every_30_s(app, chatting):
    visitor, conversation_id = chatting
    url = poll_url(visitor.get(MESSAGES.removesuffix("/messages")).get_data(as_text=True))
    set_seen_seconds_ago(app, conversation_id, PRESENCE_SECONDS - 10)
    with statements(app) as ran:
        quiet = visitor.get(url, htmx=True)
    assert quiet.status_code == 204 and quiet.get_data() == b""
    assert "Set-Cookie" not in quiet.headers  # the session is not rewritten
    assert len(ran) == 1 and ran[0][0].lstrip().upper().startswith("SELECT")
    assert seen_seconds_ago(app, conversation_id) >= PRESENCE_SECONDS - 10  # not written again

    # Older than the window: the same poll writes presence (the conversation, and the contact with it).
    set_seen_seconds_ago(app, conversation_id, PRESENCE_SECONDS + 1)
    with statements(app) as ran:
        assert visitor.get(url, htmx=True).status_code == 204
    updates = [sql for sql, _ in ran if sql.lstrip().upper().startswith("UPDATE")]
    assert [sql.split()[1].lower() for sql in updates] == ["conversation", "contact"]
    assert seen_seconds_ago(app, conversation_id) < 5
    with Session(app.extensions["db_engine"]) as db:
        contact = db.get(Contact, conversation_row(app).contact_id)
        assert (utcnow() - as_utc(contact.last_seen_at)).total_seconds() < 5


def test_visitor_gone_stays_right_within_30_s(app, merchant, chatting):
    visitor, conversation_id = chatting
    app.config["VISITOR_GONE_MINUTES"] = 5
    url = poll_url(visitor.get(MESSAGES.removesuffix("/messages")).get_data(as_text=True))

    def listed_as_gone() -> bool:
        page = merchant.get("/inbox?gone=1").get_data(as_text=True)
        return f'data-conversation-id="{conversation_id}"' in page

    # Polling every 30 s (the slowest back-off) never lets the stored moment fall 5 minutes behind.
    set_seen_seconds_ago(app, conversation_id, 5 * 60 - 1)
    visitor.get(url, htmx=True)
    assert not listed_as_gone() and seen_seconds_ago(app, conversation_id) < 5
    # A visitor who left: gone once the last poll is 5 minutes old, at most 30 s late.
    set_seen_seconds_ago(app, conversation_id, 5 * 60 + 1)
    assert listed_as_gone()
    set_seen_seconds_ago(app, conversation_id, 5 * 60 - PRESENCE_SECONDS)
    assert not listed_as_gone()


def test_the_merchants_reply_ends_the_204s_and_the_next_list_polls_from_it(app, merchant, chatting):
    visitor, conversation_id = chatting
    url = poll_url(visitor.get(MESSAGES.removesuffix("/messages")).get_data(as_text=True))
    assert visitor.get(url, htmx=True).status_code == 204
    merchant.post(f"/inbox/{conversation_id}/reply", {"body": "On its way tomorrow."})
    fresh = visitor.get(url, htmx=True)
    body = fresh.get_data(as_text=True)
    assert fresh.status_code == 200 and "On its way tomorrow." in body
    assert 'data-poll-idle="15"' in body and 'data-poll-hidden="30"' in body and 'data-poll-active="2"' in body
    assert visitor.get(poll_url(body), htmx=True).status_code == 204


def test_a_poll_with_another_stores_token_stops(app, merchant, chatting):
    visitor, _conversation_id = chatting
    from conftest import sign_up

    other = sign_up(app.test_client(), email="second@bluefern.example.com", store="Second Shop")
    other.post("/wizard/pre-chat-form", {"enabled": "y", "name_mode": "optional", "intro": "Hi"})
    response = visitor.get("/s/second-shop/chat/messages?after=0", htmx=True)
    assert response.status_code == 286  # htmx stops polling: no conversation of this visitor there


# -- pages of the inbox and the timeline --------------------------------------------

def make_conversations(app, count: int, store_id: int = 1) -> list[int]:
    """``count`` conversations through the chat module, each with one visitor message, oldest first."""
    ids = []
    with Session(app.extensions["db_engine"], expire_on_commit=False) as db:
        store = db.get(Store, store_id)
        for number in range(count):
            entry = conversations.PreChat(f"Visitor {number}", f"v{number}@example.com", f"Question {number}")
            ids.append(conversations.start_conversation(db, store, entry).id)
    return ids


def listed(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-conversation-id="(\d+)"', html)]


def test_the_inbox_comes_a_page_at_a_time_newest_activity_first(app, merchant):
    merchant.post("/wizard/pre-chat-form", {"enabled": "y", "name_mode": "optional", "intro": "Hi"})
    ids = make_conversations(app, 120)
    newest_first = list(reversed(ids))
    page = merchant.get("/inbox").get_data(as_text=True)
    assert listed(page) == newest_first[:50]
    assert "120 conversations" in page and "Has an email address: 120" in page and "Awaiting your reply: 120" in page
    older = re.search(r'<a href="(/inbox\?older=[0-9-]+)" hx-get="(/inbox/more\?[^"]+)"', page)
    second = merchant.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert listed(second) == newest_first[50:100]
    assert "Back to the newest conversations" in second and 'hx-trigger="every 5s"' not in second

    # htmx's "load more": the next rows alone, and the list's shown count out of band.
    more = merchant.get(older.group(2).replace("&amp;", "&"), htmx=True).get_data(as_text=True)
    assert "<table" not in more and listed(more) == newest_first[50:100]
    assert 'id="inbox-shown" name="shown" value="100" hx-swap-oob="true"' in more
    last = re.search(r'hx-get="(/inbox/more\?[^"]+)"', more).group(1).replace("&amp;", "&")
    third = merchant.get(last, htmx=True).get_data(as_text=True)
    assert listed(third) == newest_first[100:] and "Load older conversations" not in third

    # A reply moves its conversation to the top; filters page the same way.
    merchant.post(f"/inbox/{ids[0]}/reply", {"body": "Thanks for waiting."})
    top = listed(merchant.get("/inbox").get_data(as_text=True))
    assert top[0] == ids[0] and len(top) == 50
    awaiting = merchant.get("/inbox?awaiting=1").get_data(as_text=True)
    assert ids[0] not in listed(awaiting) and "119 conversations match these filters (of 120)" in awaiting


def test_the_open_list_gets_204_until_something_it_shows_changes(app, merchant):
    merchant.post("/wizard/pre-chat-form", {"enabled": "y", "name_mode": "optional", "intro": "Hi"})
    ids = make_conversations(app, 60)
    fragment = merchant.get("/inbox", htmx=True).get_data(as_text=True)
    stamp = re.search(r"hx-vals='\{\"since\": \"([0-9a-f]+)\"\}'", fragment).group(1)
    assert 'hx-include="#inbox-shown"' in fragment
    assert merchant.get(f"/inbox?since={stamp}&shown=50", htmx=True).status_code == 204
    # After "load more" the refresh keeps all the rows shown.
    assert merchant.get(f"/inbox?since={stamp}&shown=60", htmx=True).status_code == 200
    kept = merchant.get("/inbox?shown=60", htmx=True).get_data(as_text=True)
    assert len(listed(kept)) == 60
    # A new visitor message changes what the list shows.
    with Session(app.extensions["db_engine"]) as db:
        conversations.add_message(db, db.get(Conversation, ids[10]), "visitor", "Still there?")
    changed = merchant.get(f"/inbox?since={stamp}&shown=50", htmx=True)
    assert changed.status_code == 200 and listed(changed.get_data(as_text=True))[0] == ids[10]
    assert "Still there?" in changed.get_data(as_text=True)


def test_a_long_conversation_shows_its_newest_page_and_earlier_on_demand(app, merchant, chatting):
    visitor, conversation_id = chatting
    with Session(app.extensions["db_engine"]) as db:
        conversation = db.get(Conversation, conversation_id)
        for number in range(1, 120):
            conversations.add_message(db, conversation, "merchant" if number % 2 else "visitor", f"Line {number:03d}")
    page = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    bodies = re.findall(r'<p class="body">(Line \d+|Do you ship to Oslo\?)</p>', page)
    assert bodies == [f"Line {n:03d}" for n in range(70, 120)]
    earlier = re.search(r'<a href="(/inbox/\d+\?before=[0-9-]+)" hx-get="([^"]+)"', page)
    older_page = merchant.get(earlier.group(1)).get_data(as_text=True)
    assert re.findall(r'<p class="body">(Line \d+)</p>', older_page) == [f"Line {n:03d}" for n in range(20, 70)]
    assert "Back to the newest messages" in older_page and 'data-polling="off"' in older_page
    more = merchant.get(earlier.group(2).replace("&amp;", "&"), htmx=True).get_data(as_text=True)
    assert re.findall(r'<p class="body">(Line \d+)</p>', more) == [f"Line {n:03d}" for n in range(20, 70)]
    assert 'id="timeline-shown" name="shown" value="100" hx-swap-oob="true"' in more
    first = re.search(r'hx-get="([^"]+timeline/earlier[^"]+)"', more).group(1).replace("&amp;", "&")
    start = merchant.get(first, htmx=True).get_data(as_text=True)
    assert re.findall(r'<p class="body">([^<]+)</p>', start) == ["Do you ship to Oslo?"] + [
        f"Line {n:03d}" for n in range(1, 20)]
    assert "Show earlier messages" not in start
    # The polled timeline keeps what the merchant loaded.
    polled = merchant.get(f"/inbox/{conversation_id}/timeline?shown=100", htmx=True).get_data(as_text=True)
    assert len(re.findall(r'<p class="body">', polled)) == 100


# -- every chat and inbox query runs on an index -------------------------------------

FULL_SCAN = {"sqlite": re.compile(r"\bSCAN (conversation|chatmessage|outboxemail|inboundemail|contact|store)\b(?! USING)"),
             "postgresql": re.compile(r"Seq Scan on (conversation|chatmessage|outboxemail|inboundemail|contact|store)\b")}


def plans(app, ran) -> list[tuple[str, str]]:
    """Each SELECT or UPDATE that ran, with the database's plan for it."""
    engine = app.extensions["db_engine"]
    backend = engine.dialect.name
    found = []
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        cursor = raw.cursor()
        if backend == "postgresql":
            # Tiny test tables are cheapest to scan; ask whether an index path exists at all.
            cursor.execute("SET enable_seqscan = off")
        for statement, parameters in ran:
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
                continue
            if "alembic_version" in statement or "signinsession" in statement or "member" in statement.split("FROM")[-1][:20]:
                continue
            prefix = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
            cursor.execute(prefix + statement, parameters)
            rows = cursor.fetchall()
            plan = "\n".join(" ".join(str(part) for part in row) for row in rows)
            found.append((statement, plan))
        if backend == "postgresql":
            raw.rollback()
    return found


@pytest.mark.parametrize("path", ["poll", "poll_email", "inbox", "inbox_filtered", "inbox_older", "more", "timeline",
                                  "earlier"])
def test_each_chat_and_inbox_query_runs_on_an_index(app, merchant, chatting, path):
    visitor, conversation_id = chatting
    ids = make_conversations(app, 60)
    with Session(app.extensions["db_engine"]) as db:
        conversation = db.get(Conversation, conversation_id)
        for number in range(60):
            conversations.add_message(db, conversation, "merchant", f"Line {number}")
    if path == "poll_email":
        # An email newer than the page lists, not delivered yet: the poll looks at the conversation's emails.
        from inbound_helpers import saved_settings_for
        from test_outbox import queue_email

        with Session(app.extensions["db_engine"]) as db:
            store_id = db.get(Conversation, conversation_id).store_id
        saved_settings_for(app, store_id)
        queue_email(app, store_id, "scale", recipient="ada@example.com", conversation_id=conversation_id)
        with Session(app.extensions["db_engine"]) as db:
            newest = db.get(Conversation, conversation_id).last_message_id
    set_seen_seconds_ago(app, conversation_id, PRESENCE_SECONDS + 5)
    first = merchant.get("/inbox").get_data(as_text=True)
    cursor = re.search(r"older=([0-9-]+)", first).group(1)
    timeline = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    before = re.search(r"before=([0-9-]+)", timeline).group(1)
    requests = {
        "poll": lambda: visitor.get(f"{MESSAGES}?after=0", htmx=True),
        "poll_email": lambda: visitor.get(f"{MESSAGES}?after={newest}&emails=1-0", htmx=True),
        "inbox": lambda: merchant.get("/inbox"),
        "inbox_filtered": lambda: merchant.get("/inbox?email=1&gone=1&awaiting=1"),
        "inbox_older": lambda: merchant.get(f"/inbox?older={cursor}&awaiting=1"),
        "more": lambda: merchant.get(f"/inbox/more?older={cursor}&shown=50", htmx=True),
        "timeline": lambda: merchant.get(f"/inbox/{conversation_id}/timeline", htmx=True),
        "earlier": lambda: merchant.get(f"/inbox/{conversation_id}/timeline/earlier?before={before}", htmx=True),
    }
    with statements(app) as ran:
        assert requests[path]().status_code == (204 if path == "poll_email" else 200)
    checked = plans(app, ran)
    if path == "poll_email":
        assert any("outboxemail" in statement.lower() for statement, _plan in checked)
    assert checked, "no query ran"
    backend = app.extensions["db_engine"].dialect.name
    scans = [(statement, plan) for statement, plan in checked if FULL_SCAN[backend].search(plan)]
    assert scans == [], scans
    assert ids  # the store holds more than the page


def test_the_summary_row_follows_every_writer(app, merchant, chatting):
    """Messages from the chat, the merchant and emailed replies all move the conversation's summary."""
    _visitor, conversation_id = chatting
    merchant.post(f"/inbox/{conversation_id}/reply", {"body": "Yes."})
    with Session(app.extensions["db_engine"]) as db:
        row = db.get(Conversation, conversation_id)
        newest = db.exec(select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
                         .order_by(ChatMessage.id.desc())).first()
        assert row.last_message_id == newest.id and row.last_author == "merchant"
        assert abs((row.last_activity_at.replace(tzinfo=None) - newest.created_at.replace(tzinfo=None)).total_seconds()) < 1
