"""Issue 9, item 1: a stored password is bound to the server identity it was typed
for (host, port, security, username). A share-link suggestion, a one-click fix or
the merchant's own edit that changes the server drops it (the password field says
why), and Test Connection, the test email and the outbox only ever send it to the
server it is bound to — replayed through the app's HTTP routes against real
aiosmtpd servers, one of them the "agent's" server that must never see a login."""
from __future__ import annotations

import pytest
from sqlmodel import Session, select
from test_inbox import compose_post, configure_email, deliver, emails, open_compose
from test_share_links import make_link

from wizard.models import SmtpDraft, SmtpSettings
from wizard.models.outbox import QUEUED

from conftest import SMTP_PASSWORD, SMTP_USERNAME, run_connection_test, smtp_form
from helpers import all_bodies, conversation_row, enable_prechat, prepare, set_last_seen, start_chat, store_id_of, support_agent
from smtp_servers import start_test_server

OWNER = "owner@bluefern.example.com"
CHANGED = "You changed the server: type the password again"


@pytest.fixture
def agents_server(certs):
    """The server a hostile support agent suggests: it records every login attempt."""
    with start_test_server("starttls", username=SMTP_USERNAME, password="agent-does-not-know-it",
                           cert=certs[0], key=certs[1]) as server:
        yield server


def draft_row(app, store: int) -> SmtpDraft:
    with Session(app.extensions["db_engine"]) as db:
        return db.exec(select(SmtpDraft).where(SmtpDraft.store_id == store)).one()


def test_accepted_suggestion_never_sends_the_stored_password_to_the_suggested_server(
        app, merchant, starttls_server, agents_server):
    configure_email(merchant, starttls_server)
    store = store_id_of(app, OWNER)
    # The agent suggests the same host on their own port; the merchant accepts.
    path = make_link(support_agent(app), store, note="Use this port", port=str(agents_server.port))
    assert merchant.get(path).headers["Location"] == "/wizard/smtp"
    assert merchant.post("/share/suggestion/accept").headers["Location"] == "/wizard/smtp"
    assert draft_row(app, store).password_encrypted is None  # dropped, not kept for the new server

    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    password_field = page.split('id="password-field"', 1)[1].split("</fieldset>", 1)[0]
    assert CHANGED in password_field and "Password saved (encrypted)" not in password_field
    assert "saved — leave blank" not in password_field

    # Test Connection without retyping: nothing reaches the agent's server.
    tested = run_connection_test(merchant).get_data(as_text=True)
    assert "Fix first" in tested and CHANGED in tested
    run_connection_test(merchant, htmx=True)
    assert agents_server.auth_attempts == []
    assert SMTP_PASSWORD not in all_bodies(merchant)

    # Typing it again binds it to the new server (which refuses it: wrong account there).
    merchant.post("/wizard/smtp", smtp_form(starttls_server, port=str(agents_server.port)))
    assert 'data-category="auth_failed"' in run_connection_test(merchant).get_data(as_text=True)
    assert agents_server.auth_attempts == [("PLAIN", SMTP_USERNAME)]


@pytest.mark.parametrize("field, value", [("host", "127.0.0.1"), ("port", "2525"), ("security", "ssl"),
                                          ("username", "someone-else@bluefern.example.com")])
def test_the_merchants_own_edit_of_the_server_drops_the_password(app, merchant, starttls_server, field, value):
    prepare(merchant, starttls_server)
    store = store_id_of(app, OWNER)
    assert draft_row(app, store).password_encrypted
    # Live check while typing (htmx): the password field is redrawn and says why.
    form = smtp_form(starttls_server, password="", **{field: value})
    live = merchant.post("/wizard/smtp/check", form, htmx=True, trigger=field).get_data(as_text=True)
    assert 'id="password-field" hx-swap-oob="true"' in live and CHANGED in live
    assert "saved — leave blank" not in live
    assert draft_row(app, store).password_encrypted is None
    # Changing it back does not bring it back: it has to be typed again.
    merchant.post("/wizard/smtp", smtp_form(starttls_server, password=""))
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert CHANGED in page and "Password saved (encrypted)" not in page


def test_editing_other_fields_keeps_the_password(app, merchant, starttls_server):
    prepare(merchant, starttls_server)
    store = store_id_of(app, OWNER)
    merchant.post("/wizard/smtp/check", smtp_form(starttls_server, password="", sender_name="Blue Fern Team"),
                  htmx=True, trigger="sender_name")
    assert draft_row(app, store).password_encrypted
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert "Password saved (encrypted)" in page and CHANGED not in page
    # Host spelled differently (case, trailing dot) is the same server.
    merchant.post("/wizard/smtp", smtp_form(starttls_server, password="", host="LOCALHOST."))
    assert draft_row(app, store).password_encrypted
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)


def test_one_click_fix_changes_the_server_so_the_password_is_asked_again(app, merchant, starttls_server):
    prepare(merchant, starttls_server, security="ssl")
    failed = run_connection_test(merchant).get_data(as_text=True)
    assert 'data-category="tls_on_plain_port"' in failed and 'name="password"' in failed.split('id="apply-suggestion"')[0]
    before = len(starttls_server.auth_attempts)
    switched = run_connection_test(merchant, data={"apply_suggestion": "yes"})
    assert switched.request.path == "/wizard/smtp"
    assert CHANGED in switched.get_data(as_text=True)
    assert len(starttls_server.auth_attempts) == before  # nothing was sent anywhere
    assert draft_row(app, store_id_of(app, OWNER)).security == "starttls"


def test_a_password_moved_to_another_server_behind_the_apps_back_is_never_sent(
        app, merchant, starttls_server, agents_server):
    """The check at use: even a draft or saved settings changed directly in the
    database (no code path clearing the password) never send it elsewhere."""
    enable_prechat(merchant)
    configure_email(merchant, starttls_server)
    store = store_id_of(app, OWNER)
    with Session(app.extensions["db_engine"]) as db:
        for model in (SmtpDraft, SmtpSettings):
            row = db.exec(select(model).where(model.store_id == store)).one()
            row.port = str(agents_server.port) if model is SmtpDraft else agents_server.port
            db.add(row)
        db.commit()

    tested = run_connection_test(merchant)
    assert tested.status_code == 200 and CHANGED in tested.get_data(as_text=True)
    sent = merchant.post("/wizard/send", {"recipient": "me@bluefern.example.com"})
    assert sent.status_code == 200 and 'id="password-problem"' in sent.get_data(as_text=True)

    start_chat(app)
    conversation_id = conversation_row(app).id
    set_last_seen(app, conversation_id, 60)
    _page, key = open_compose(merchant, conversation_id)
    compose_post(merchant, conversation_id, key, "send", subject="Hi", body="Hello {visitor_name}")
    deliver(app)
    [held] = emails(app)
    assert held.status == QUEUED and held.last_category == "password_unreadable" and held.attempts == 0
    assert agents_server.auth_attempts == [] and agents_server.messages == []
