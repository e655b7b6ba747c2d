"""Unsubscribing from conversion reminders: the stored-token link in the footer, the
confirmation page (POST with CSRF), RFC 8058 one-click (POST without CSRF),
tampered links, and reminders refused afterwards."""
from __future__ import annotations

import re

from itsdangerous import URLSafeSerializer
from sqlmodel import Session, select
from test_inbox import compose_post, configure_email, deliver, emails, open_compose  # noqa: F401

from wizard.models import Store
from wizard.models.outbox import FAILED, Suppression
from wizard.web.unsubscribe import unsubscribe_token

from conftest import CSRF_IN_PAGE, SMTP_PASSWORD, SMTP_USERNAME
from helpers import conversation_row
from smtp_servers import start_test_server

ADDRESS = "ada@example.com"


def store_id(app) -> int:
    with Session(app.extensions["db_engine"]) as session:
        return session.exec(select(Store)).first().id


def token_for(app, store: int, email: str = ADDRESS) -> str:
    with app.test_request_context():
        return unsubscribe_token(store, email)


def suppressions(app) -> list[tuple[str, str]]:
    with Session(app.extensions["db_engine"]) as session:
        return [(s.email, s.reason) for s in session.exec(select(Suppression)).all()]


def test_reminders_carry_the_footer_link_and_one_click_headers(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    page, key = open_compose(merchant, conversation_id, "reminder")
    subject = re.search(r'name="subject" type="text" value="([^"]*)"', page).group(1)
    preview = compose_post(merchant, conversation_id, key, "preview", kind="reminder", subject=subject,
                           body="Hi {visitor_name}, still deciding?").get_data(as_text=True)
    token = re.search(r"To stop these reminders, open http://localhost/u/([A-Za-z0-9_-]+)", preview).group(1)
    compose_post(merchant, conversation_id, key, "send", kind="reminder", subject=subject,
                 body="Hi {visitor_name}, still deciding?")
    _page, other_key = open_compose(merchant, conversation_id, "support_reply")
    compose_post(merchant, conversation_id, other_key, "send", kind="support_reply", subject="Re", body="Answer")
    deliver(app)
    reminder, support = (received.message for received in starttls_server.messages)
    # The header may be folded before the URL (a reader unfolds it): compare the value without that space.
    assert reminder["List-Unsubscribe"].strip() == f"<http://localhost/u/{token}/one-click>"
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = reminder.get_body(("plain",)).get_content()
    assert text.rstrip().endswith(f"http://localhost/u/{token}")
    footer = f'<a href="http://localhost/u/{token}">Stop these reminders</a>'
    assert footer in reminder.get_body(("html",)).get_content()
    # Only reminders get them.
    assert support["List-Unsubscribe"] is None and "/u/" not in support.get_body(("plain",)).get_content()


def test_confirmation_page_unsubscribes_with_a_csrf_protected_post(app, merchant):
    visitor = app.test_client()
    url = f"/u/{token_for(app, store_id(app))}"
    page = visitor.get(url).get_data(as_text=True)
    assert "Stop reminders from Blue Fern Shop?" in page and ADDRESS in page
    assert f'action="{url}"' in page and ">Unsubscribe</button>" in page
    assert visitor.post(url).status_code == 400  # no CSRF token: refused, nothing recorded
    assert suppressions(app) == []
    token = CSRF_IN_PAGE.search(page).group(1)
    done = visitor.post(url, data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"] == url
    page = visitor.get(url).get_data(as_text=True)
    assert "You are unsubscribed" in page and "will get no more reminder emails from Blue Fern Shop" in page
    assert suppressions(app) == [(ADDRESS, "unsubscribed")]


def test_one_click_post_needs_no_csrf_token_and_answers_200(app, merchant):
    mail_client = app.test_client()
    url = f"/u/{token_for(app, store_id(app))}/one-click"
    for _ in range(2):  # a repeated POST is fine too
        response = mail_client.post(url, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        assert "You are unsubscribed" in response.get_data(as_text=True)
    assert suppressions(app) == [(ADDRESS, "unsubscribed")]
    # Opened in a browser instead: the page with its button.
    assert mail_client.get(url).headers["Location"] == url.removesuffix("/one-click")


def test_unsubscribed_visitor_gets_no_more_reminders(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    app.test_client().post(f"/u/{token_for(app, store_id(app))}/one-click", data={"List-Unsubscribe": "One-Click"})
    page = merchant.get(f"/inbox/{conversation_id}/compose?kind=reminder").get_data(as_text=True)
    assert 'id="compose-blocked"' in page and "unsubscribed from reminders" in page
    assert emails(app) == []


def test_tampered_or_foreign_tokens_are_404(app, merchant):
    store = store_id(app)
    token = token_for(app, store)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    other_salt = URLSafeSerializer(app.config["SECRET_KEY"], salt="something-else").dumps(
        {"store": store, "email": ADDRESS})
    other_key = URLSafeSerializer("another-secret", salt="heichat.unsubscribe.reminders").dumps(
        {"store": store, "email": ADDRESS})
    client = app.test_client()
    for bad in (tampered, other_salt, other_key, "nonsense"):
        assert client.get(f"/u/{bad}").status_code == 404
        response = client.post(f"/u/{bad}/one-click")
        assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)
    assert suppressions(app) == []


def test_a_token_unsubscribes_the_address_whatever_its_case(app, merchant):
    # Tokens are random now (one per reminder draft), so two are never equal; the address they
    # stand for is stored in lower case, and unsubscribing with either suppresses the one address.
    store = store_id(app)
    first, second = token_for(app, store, "Ada@Example.com "), token_for(app, store)
    assert first != second
    for token in (first, second):
        app.test_client().post(f"/u/{token}/one-click")
    assert suppressions(app) == [(ADDRESS, "unsubscribed")]
    assert conversation_row(app) is None


def test_a_failed_reminder_is_not_retried_after_unsubscribing(app, merchant, chatting, certs):
    _visitor, conversation_id = chatting
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           data_reply="554 5.7.1 Message rejected as spam") as server:
        configure_email(merchant, server)
        _page, key = open_compose(merchant, conversation_id, "reminder")
        compose_post(merchant, conversation_id, key, "send", kind="reminder", subject="Hi", body="Come back")
        deliver(app)
    [email] = emails(app)
    assert email.status == FAILED
    app.test_client().post(f"/u/{token_for(app, store_id(app))}/one-click")
    retry_url = f"/inbox/{conversation_id}/emails/{email.id}/retry"
    fragment = merchant.post(retry_url, htmx=True).get_data(as_text=True)
    assert "Not retried:" in fragment and "unsubscribed" in fragment and 'data-status="failed"' in fragment
    plain = merchant.post(retry_url)
    assert "Not retried:" in merchant.get(plain.headers["Location"]).get_data(as_text=True)
    assert emails(app)[0].status == FAILED
