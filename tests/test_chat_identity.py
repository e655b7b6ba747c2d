"""A visitor's pre-chat submission never changes an existing contact (issue 9,
item 4): each conversation keeps the name and address it was started with,
follow-ups use that name and only that conversation's messages, and the
merchant sees when several conversations claim one (unverified) address."""
from __future__ import annotations

import re

from sqlmodel import Session, select
from test_inbox import compose_post, configure_email, deliver, open_compose

from wizard.models import Contact, Conversation

from helpers import enable_prechat, start_chat

ADA_TEXT = "Do you ship to Oslo?"
STRANGER_TEXT = "Please send my invoice to a new address"


def conversations(app) -> list[Conversation]:
    with Session(app.extensions["db_engine"]) as session:
        return list(session.exec(select(Conversation).order_by(Conversation.id)).all())


def contacts(app) -> list[tuple[str, str | None]]:
    with Session(app.extensions["db_engine"]) as session:
        return [(c.email, c.name) for c in session.exec(select(Contact).order_by(Contact.id))]


def test_a_stranger_giving_a_known_address_renames_nothing_and_borrows_nothing(app, merchant, starttls_server):
    enable_prechat(merchant)
    configure_email(merchant, starttls_server)
    start_chat(app, name="Ada", email="ada@example.com", message=ADA_TEXT)
    start_chat(app, name="Mallory", email="ada@example.com", message=STRANGER_TEXT)
    ada, stranger = conversations(app)
    # The contact keeps the first name; each conversation keeps its own name and address.
    assert contacts(app) == [("ada@example.com", "Ada")]
    assert (ada.visitor_name, ada.visitor_email) == ("Ada", "ada@example.com")
    assert (stranger.visitor_name, stranger.visitor_email) == ("Mallory", "ada@example.com")
    assert "<td>Ada</td>" in merchant.get("/contacts").get_data(as_text=True)

    # Each conversation shows its own name, and says another one claims the same address.
    ada_page = merchant.get(f"/inbox/{ada.id}").get_data(as_text=True)
    assert "<h1>Ada</h1>" in ada_page and 'id="shared-address"' in ada_page
    assert "2 conversations give ada@example.com" in ada_page and "not verified" in ada_page
    assert f'href="/inbox/{stranger.id}">Mallory</a>' in ada_page
    stranger_page = merchant.get(f"/inbox/{stranger.id}").get_data(as_text=True)
    assert "<h1>Mallory</h1>" in stranger_page and f'href="/inbox/{ada.id}">Ada</a>' in stranger_page
    listing = merchant.get("/inbox").get_data(as_text=True)
    assert listing.count("Address also given in 1 other conversation · not verified") == 2

    # A follow-up from Ada's conversation greets Ada and quotes only Ada's messages.
    for conversation in (ada, stranger):
        page, key = open_compose(merchant, conversation.id)
        subject = re.search(r'name="subject" type="text" value="([^"]*)"', page).group(1)
        body = re.search(r'<textarea[^>]*name="body"[^>]*>\s*(.*?)</textarea>', page, re.S).group(1)
        sent = compose_post(merchant, conversation.id, key, "send", subject=subject,
                            body=body.replace("&#39;", "'").replace("&amp;", "&"))
        assert sent.status_code == 302, sent.get_data(as_text=True)[:2000]
    deliver(app)
    to_ada, to_stranger = (received.message for received in starttls_server.messages)
    ada_text = to_ada.get_body(("plain",)).get_content()
    assert "Hi Ada," in ada_text and ADA_TEXT in ada_text
    assert "Mallory" not in ada_text and STRANGER_TEXT not in ada_text
    stranger_text = to_stranger.get_body(("plain",)).get_content()
    assert "Hi Mallory," in stranger_text and STRANGER_TEXT in stranger_text and ADA_TEXT not in stranger_text


def test_a_conversation_with_its_own_address_shows_no_notice(app, merchant):
    enable_prechat(merchant)
    start_chat(app, name="Ada", email="ada@example.com")
    start_chat(app, name="Bo", email="bo@example.com")
    ada, _bo = conversations(app)
    page = merchant.get(f"/inbox/{ada.id}").get_data(as_text=True)
    assert "<h1>Ada</h1>" in page and 'id="shared-address"' not in page
    assert "Address also given" not in merchant.get("/inbox").get_data(as_text=True)


def test_a_nameless_second_visitor_does_not_take_or_erase_the_name(app, merchant):
    enable_prechat(merchant)
    start_chat(app, name="", email="ada@example.com", message="first")
    start_chat(app, name="Ada", email="ada@example.com", message="second")
    first, second = conversations(app)
    assert contacts(app) == [("ada@example.com", None)]  # created nameless, and never renamed
    assert first.visitor_name is None and second.visitor_name == "Ada"
    page = merchant.get(f"/inbox/{first.id}").get_data(as_text=True)
    assert "<h1>ada@example.com</h1>" in page
