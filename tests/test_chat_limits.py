"""Abuse limits on the public chat (issue 9, item 4): starting conversations and
writing are limited per client address and per store, and over a limit the chat
itself says "slow down, try again in N seconds" and keeps what was typed."""
from __future__ import annotations

import re
import time

from markupsafe import escape
from sqlmodel import Session, func, select

from wizard.models import ChatMessage, Conversation

from conftest import sign_up
from helpers import CHAT, MESSAGES, Visitor, enable_prechat, start_chat

WAIT = re.compile(r"Try again in (\d+) seconds")


def count(app, model) -> int:
    with Session(app.extensions["db_engine"]) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def visitor_from(app, address: str) -> Visitor:
    """A visitor's browser on its own client address."""
    visitor = Visitor(app)
    visitor.client.environ_base["REMOTE_ADDR"] = address
    return visitor


def limits(app, **changed) -> None:
    app.config["RATE_LIMITS"] = dict(app.config["RATE_LIMITS"], **changed)


def test_one_address_cannot_open_thirty_conversations(app, merchant):
    """The red team's replay: 30 conversations from one address in a couple of seconds."""
    enable_prechat(merchant)
    statuses = []
    for n in range(30):
        response = Visitor(app).post(CHAT, {"name": f"Bot {n}", "email": f"bot{n}@example.com", "message": "hi"})
        statuses.append(response.status_code)
    assert statuses[:5] == [302] * 5  # the default: 5 per minute per address
    assert set(statuses[5:]) == {429}
    assert count(app, Conversation) == 5


def test_starting_too_often_says_slow_down_and_keeps_the_form(app, merchant):
    enable_prechat(merchant)
    limits(app, chat_start="2 per minute")
    start_chat(app, name="Ada", email="ada@example.com")
    start_chat(app, name="Bo", email="bo@example.com")
    visitor = Visitor(app)
    response = visitor.post(CHAT, {"name": "Cleo <3", "email": "cleo@example.com", "message": "Do you ship to Oslo?"})
    page = response.get_data(as_text=True)
    assert response.status_code == 429 and 0 < int(response.headers["Retry-After"]) <= 60
    # Not the bare error page: the chat page, with the notice and everything typed still in the form.
    assert "Chat with Blue Fern Shop" in page and 'id="chat-slow-down"' in page
    wait = int(WAIT.search(page).group(1))
    assert 0 < wait <= 60 and wait == int(response.headers["Retry-After"])
    assert f'value="{escape("Cleo <3")}"' in page and 'value="cleo@example.com"' in page
    assert "Do you ship to Oslo?</textarea>" in page and ">Start chat</button>" in page
    assert count(app, Conversation) == 2
    # Reading the chat is not limited.
    assert visitor.get(CHAT).status_code == 200


def test_the_store_limit_holds_across_many_addresses_and_only_for_that_store(app, merchant, client):
    enable_prechat(merchant)
    limits(app, chat_start="100 per minute", chat_start_store="3 per minute")
    statuses = [visitor_from(app, f"198.51.100.{n}").post(CHAT, {"email": f"v{n}@example.com"}).status_code
                for n in range(1, 5)]
    assert statuses == [302, 302, 302, 429]
    # Another store's visitors are not slowed down by this store's crowd.
    other = sign_up(app.test_client(), email="owner@greenleaf.example.com", store="Green Leaf")
    enable_prechat(other)
    response = visitor_from(app, "198.51.100.9").post("/s/green-leaf/chat", {"email": "v9@example.com"})
    assert response.status_code == 302
    assert count(app, Conversation) == 4


def test_writing_too_fast_keeps_the_text_with_htmx_and_without(app, merchant):
    enable_prechat(merchant)
    limits(app, chat_message="3 per minute")
    visitor = start_chat(app)
    for n in range(3):
        assert visitor.post(MESSAGES, {"body": f"message {n}"}, htmx=True).status_code == 200
    fragment = visitor.post(MESSAGES, {"body": "Are you there?"}, htmx=True)
    body = fragment.get_data(as_text=True)
    # htmx swaps 200 responses: the conversation fragment with the notice, the text still in the box.
    assert fragment.status_code == 200 and "<html" not in body and body.lstrip().startswith('<div id="chat-area"')
    assert 'id="chat-slow-down"' in body and WAIT.search(body)
    assert "Are you there?</textarea>" in body and int(fragment.headers["Retry-After"]) > 0
    plain = visitor.post(MESSAGES, {"body": "Hello??"})
    page = plain.get_data(as_text=True)
    assert plain.status_code == 429 and "Chat with Blue Fern Shop" in page and "Hello??</textarea>" in page
    assert WAIT.search(page)
    with Session(app.extensions["db_engine"]) as session:
        bodies = [m.body for m in session.exec(select(ChatMessage).order_by(ChatMessage.id))]
    assert bodies == ["Do you ship to Oslo?", "message 0", "message 1", "message 2"]


def test_messages_are_limited_per_store_across_addresses(app, merchant):
    enable_prechat(merchant)
    limits(app, chat_start="100 per minute", chat_message="100 per minute", chat_message_store="2 per minute")
    first, second = visitor_from(app, "203.0.113.1"), visitor_from(app, "203.0.113.2")
    for visitor, email in ((first, "a@example.com"), (second, "b@example.com")):
        assert visitor.post(CHAT, {"email": email}).status_code == 302
    assert first.post(MESSAGES, {"body": "one"}).status_code == 302
    assert second.post(MESSAGES, {"body": "two"}).status_code == 302
    assert first.post(MESSAGES, {"body": "three"}).status_code == 429
    assert count(app, ChatMessage) == 2


def test_a_refused_attempt_is_not_counted_so_waiting_is_enough(app, merchant):
    enable_prechat(merchant)
    limits(app, chat_message="1 per 1 second")
    visitor = start_chat(app)
    assert visitor.post(MESSAGES, {"body": "first"}).status_code == 302
    deadline = time.monotonic() + 5
    statuses = []
    while time.monotonic() < deadline:
        status = visitor.post(MESSAGES, {"body": "second"}).status_code
        statuses.append(status)
        if status == 302:
            break
    assert statuses[-1] == 302 and 429 in statuses
    assert count(app, ChatMessage) == 3
