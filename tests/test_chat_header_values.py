"""Unicode line and paragraph separators never reach a header (issue 9, item 8):
every form whose value can become part of a header refuses U+2028, U+2029 and
U+0085 beside the field; values stored before that are put on one line by the
message builders instead of breaking every email; and the support view's
``?created=`` takes ASCII digits only."""
from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select
from test_bad_input import wtf_errors
from test_inbox import (
    compose_post,
    configure_email,
    deliver,
    emails,
    field_value,
    open_compose,
)

from wizard.models import Contact, Conversation, Member, Store
from wizard.models.outbox import EmailTemplate

from conftest import CSRF_IN_PAGE
from helpers import CHAT, Visitor, enable_prechat, start_chat, support_agent

SEPARATORS = {"line_separator": "\u2028", "paragraph_separator": "\u2029", "next_line": "\u0085"}


def set_store_name(app, name: str) -> None:
    """What sign-up used to accept, written as it was stored."""
    with Session(app.extensions["db_engine"]) as session:
        store = session.exec(select(Store)).one()
        store.name = name
        session.add(store)
        session.commit()


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_sign_up_refuses_a_store_name_with_a_line_separator(app, separator):
    client = app.test_client()
    token = CSRF_IN_PAGE.search(client.get("/signup").get_data(as_text=True)).group(1)
    name = f"Blue Fern{separator}Shop"
    response = client.post("/signup", data={"store_name": name, "email": "owner@bluefern.example.com",
                                            "password": "merchant-pass-1", "csrf_token": token})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    errors = wtf_errors(body, "store_name") or ""
    assert "msg-error" in errors and "line and paragraph separators" in errors
    assert name in body  # the form comes back with what was typed
    with Session(app.extensions["db_engine"]) as session:
        assert session.exec(select(Member)).all() == []


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_the_pre_chat_form_refuses_a_visitor_name_with_a_line_separator(app, merchant, separator):
    enable_prechat(merchant)
    response = Visitor(app).post(CHAT, {"name": f"Ada{separator}Lovelace", "email": "ada@example.com",
                                        "message": "Hello"})
    assert response.status_code == 200
    assert "line and paragraph separators" in (wtf_errors(response.get_data(as_text=True), "name") or "")
    with Session(app.extensions["db_engine"]) as session:
        assert session.exec(select(Conversation)).all() == []


def test_templates_and_compose_refuse_a_subject_with_a_line_separator(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    saved = merchant.post("/inbox/templates", {"kind": "reminder", "action": "save",
                                               "reminder-subject": "We miss you\u2029at {store_name}",
                                               "reminder-body": "Come back"})
    assert saved.status_code == 200 and 'data-code="subject_control"' in saved.get_data(as_text=True)
    with Session(app.extensions["db_engine"]) as session:
        assert session.exec(select(EmailTemplate)).all() == []
    _page, key = open_compose(merchant, conversation_id)
    page = compose_post(merchant, conversation_id, key, "send", subject="Hello\u0085Bcc: x@example.com",
                        body="Hi").get_data(as_text=True)
    errors = re.search(r'<div id="subject-errors".*?</div>', page, re.S).group(0)
    assert 'data-code="subject_control"' in errors
    assert field_value(page, "body") == "Hi"
    assert emails(app) == []


def test_a_store_name_stored_with_a_line_separator_does_not_break_the_test_email(app, merchant, starttls_server):
    """The red team's case: the name was accepted at sign-up, then every test email answered 500."""
    configure_email(merchant, starttls_server)
    set_store_name(app, "Blue Fern\u2028Shop")
    response = merchant.post("/wizard/send", {"recipient": "customer@example.com"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    page = merchant.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-category="ok"' in page
    [received] = starttls_server.messages
    assert received.message["Subject"] == "Test email from Blue Fern Shop (HeiChat email set-up)"


def test_names_stored_with_a_line_separator_are_folded_into_a_follow_up_subject(app, merchant, chatting,
                                                                                starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    set_store_name(app, "Blue Fern\u2028Shop")
    with Session(app.extensions["db_engine"]) as session:
        conversation = session.get(Conversation, conversation_id)
        conversation.visitor_name = "Ada\u2029Lovelace"
        session.add(conversation)
        session.commit()
    _page, key = open_compose(merchant, conversation_id)
    sent = compose_post(merchant, conversation_id, key, "send", subject="{visitor_name}, your chat with {store_name}",
                        body="Hi {visitor_name}")
    assert sent.status_code == 302, sent.get_data(as_text=True)[:1000]
    deliver(app)
    [received] = starttls_server.messages
    assert received.message["Subject"] == "Ada Lovelace, your chat with Blue Fern Shop"


@pytest.mark.parametrize("created", ["²", "٣", "３", "1²", "99999999999999999999", "-1", "abc", ""])
def test_the_support_view_ignores_a_created_value_that_is_not_ascii_digits(app, merchant, created):
    agent = support_agent(app)
    with Session(app.extensions["db_engine"]) as session:
        store_id = session.exec(select(Store)).one().id
    response = agent.get(f"/support/stores/{store_id}?created={created}")
    assert response.status_code == 200 and "Blue Fern Shop" in response.get_data(as_text=True)


def test_contacts_are_never_renamed_by_a_separator_either(app, merchant):
    # The refused name leaves nothing behind: the contact keeps the name it was created with.
    enable_prechat(merchant)
    start_chat(app, name="Ada", email="ada@example.com")
    Visitor(app).post(CHAT, {"name": "Mal\u2028lory", "email": "ada@example.com", "message": "x"})
    with Session(app.extensions["db_engine"]) as session:
        assert [c.name for c in session.exec(select(Contact))] == ["Ada"]
