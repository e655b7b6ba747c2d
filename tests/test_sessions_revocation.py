"""Sessions end on the server (issue 9, item 3): a session cookie or a remember
cookie captured before sign-out, a password change or "sign out everywhere"
reads and changes nothing afterwards; every sign-in gets a new session key."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask_login.utils import encode_cookie
from sqlmodel import Session, select

from wizard.models import SignInSession, Store, utcnow

from conftest import CSRF_IN_PAGE, Merchant, sign_up
from helpers import conversation_row, enable_prechat, start_chat

VISITOR_TEXT = "Do you ship to Oslo?"
NEW_PASSWORD = "velvet-harbour-quince-42"


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def replay(app, cookie: str, name: str = "session"):
    """Another browser (the attacker's) that holds a captured cookie."""
    thief = app.test_client()
    thief.set_cookie(name, cookie)
    return thief


def session_key(app, cookie: str) -> str:
    """What the session cookie names as the signed-in identity (Flask-Login's ``_user_id``)."""
    return app.session_interface.get_signing_serializer(app).loads(cookie).get("_user_id")


def reads_conversation(client, conversation_id: int) -> bool:
    response = client.get(f"/inbox/{conversation_id}")
    return response.status_code == 200 and VISITOR_TEXT in response.get_data(as_text=True)


def second_browser(app, email: str, password: str = "merchant-pass-1") -> Merchant:
    client = app.test_client()
    token = CSRF_IN_PAGE.search(client.get("/signin").get_data(as_text=True)).group(1)
    assert client.post("/signin", data={"email": email, "password": password, "csrf_token": token}).status_code == 302
    return Merchant(client, email)


def reply_to(app) -> str | None:
    with Session(app.extensions["db_engine"]) as db:
        return db.exec(select(Store)).one().reply_to


@pytest.fixture
def conversation(app, merchant) -> int:
    enable_prechat(merchant)
    start_chat(app, message=VISITOR_TEXT)
    return conversation_row(app).id


def test_a_cookie_captured_before_sign_out_reads_and_changes_nothing(app, merchant, conversation):
    merchant.get("/inbox/settings")
    captured, token = session_cookie(merchant.client), merchant.token
    assert reads_conversation(replay(app, captured), conversation)  # the capture works while signed in

    assert merchant.post("/signout").status_code == 302
    thief = replay(app, captured)
    response = thief.get(f"/inbox/{conversation}")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]
    assert VISITOR_TEXT not in response.get_data(as_text=True)
    changed = thief.post("/inbox/settings", data={"reply_to": "thief@evil.example", "per_minute": "30", "per_day": ""},
                         headers={"X-CSRFToken": token})
    assert changed.status_code == 302 and "/signin" in changed.headers["Location"]
    assert reply_to(app) is None


def test_a_remember_cookie_dies_with_its_session(app, merchant, conversation):
    key = session_key(app, session_cookie(merchant.client))
    with app.test_request_context():
        remember = encode_cookie(key)
    assert reads_conversation(replay(app, remember, "remember_token"), conversation)
    merchant.post("/signout")
    assert not reads_conversation(replay(app, remember, "remember_token"), conversation)


def test_every_sign_in_gets_a_new_session_key(app, client, merchant):
    first = session_key(app, session_cookie(client))
    merchant.post("/signout")
    before_sign_in = session_cookie(client)  # an anonymous cookie a fixation attack would plant
    again = second_browser(app, merchant.email)
    second = session_key(app, session_cookie(again.client))
    assert first and second and first != second
    with Session(app.extensions["db_engine"]) as db:
        member_ids = {str(row.member_id) for row in db.exec(select(SignInSession)).all()}
    assert first not in member_ids and second not in member_ids  # not the member's id
    assert replay(app, before_sign_in).get("/inbox").status_code == 302


def test_password_change_signs_out_every_other_browser(app, merchant, conversation):
    other = second_browser(app, merchant.email)
    before_change = session_cookie(merchant.client)
    assert reads_conversation(other.client, conversation)

    page = merchant.get("/account").get_data(as_text=True)
    assert "Signed in on 2 browsers" in page
    response = merchant.post("/account/password", {"current_password": "merchant-pass-1", "new_password": NEW_PASSWORD,
                                                    "repeat_password": NEW_PASSWORD})
    assert response.status_code == 302
    assert "Your password is changed" in merchant.get("/account").get_data(as_text=True)
    # This browser stays signed in on a new session; the other one and the old cookie are out.
    assert reads_conversation(merchant.client, conversation)
    assert session_key(app, session_cookie(merchant.client)) != session_key(app, before_change)
    assert not reads_conversation(other.client, conversation)
    assert not reads_conversation(replay(app, before_change), conversation)
    # The old password no longer signs in, the new one does.
    assert second_browser(app, merchant.email, NEW_PASSWORD).client.get("/inbox").status_code == 200
    client = app.test_client()
    token = CSRF_IN_PAGE.search(client.get("/signin").get_data(as_text=True)).group(1)
    old = client.post("/signin", data={"email": merchant.email, "password": "merchant-pass-1", "csrf_token": token})
    assert old.status_code == 200 and "do not match" in old.get_data(as_text=True)


def test_password_change_needs_the_current_password_and_says_what_is_wrong(app, merchant):
    wrong = merchant.post("/account/password", {"current_password": "not-my-password", "new_password": NEW_PASSWORD,
                                                 "repeat_password": NEW_PASSWORD})
    assert wrong.status_code == 200 and "That is not your current password." in wrong.get_data(as_text=True)
    mismatch = merchant.post("/account/password", {"current_password": "merchant-pass-1", "new_password": NEW_PASSWORD,
                                                    "repeat_password": NEW_PASSWORD + "x"})
    assert "The two new passwords are not the same." in mismatch.get_data(as_text=True)
    body = "\n".join(merchant.bodies)
    assert NEW_PASSWORD not in body and "merchant-pass-1" not in body and "not-my-password" not in body
    # Without the CSRF token nothing changes.
    refused = merchant.client.post("/account/password", data={"current_password": "merchant-pass-1",
                                                               "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD})
    assert refused.status_code == 400
    assert second_browser(app, merchant.email, "merchant-pass-1")


def test_sign_out_everywhere_ends_every_session(app, merchant, conversation):
    other = second_browser(app, merchant.email)
    captured = session_cookie(merchant.client)
    response = merchant.post("/account/signout-everywhere")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]
    for browser in (merchant.client, other.client, replay(app, captured)):
        assert not reads_conversation(browser, conversation)
    with Session(app.extensions["db_engine"]) as db:
        assert db.exec(select(SignInSession)).all() == []


def test_an_unused_session_expires(app, merchant, conversation):
    assert reads_conversation(merchant.client, conversation)
    with Session(app.extensions["db_engine"]) as db:
        row = db.exec(select(SignInSession)).one()
        row.last_seen_at = utcnow() - timedelta(days=4)
        db.add(row)
        db.commit()
    assert not reads_conversation(merchant.client, conversation)


def test_sign_up_starts_a_server_side_session(app, client):
    sign_up(client, email="second@bluefern.example.com")
    with Session(app.extensions["db_engine"]) as db:
        assert len(db.exec(select(SignInSession)).all()) == 1
    assert client.get("/inbox").status_code == 200
