"""Guessable passwords are refused, saying why (issue 9, item 6): at sign-up,
on the account page and by ``create-support-agent``."""
from __future__ import annotations

import html
import re

import pytest
from sqlmodel import Session, select

from wizard.commands.support_agent import PASSWORD_VARIABLE, register
from wizard.models import Member

from conftest import CSRF_IN_PAGE

EMAIL = "owner@bluefern.example.com"
STORE = "Blue Fern Shop"

WEAK = {
    "digits": ("12345678", "strength 0 of 4"),
    "repeats": ("aaaaaaaa", 'Repeats like "aaa" are easy to guess'),
    "common": ("password1", "very common password"),
    "the_email": (EMAIL, "made from your email address"),
    "email_name_and_year": ("Owner2024", "made from your email address"),
    "store_name": ("BlueFernShop!", "made from your store's name"),
    "store_name_decorated": ("BlueFern2024!", "contains your email address or your store's name"),
}


def field_errors(body: str, field: str) -> str:
    found = re.search(rf'id="{field}-errors"[^>]*>(.*?)</div>', body, re.DOTALL)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()) if found else ""


@pytest.mark.parametrize("case", sorted(WEAK))
def test_sign_up_refuses_a_guessable_password_and_says_why(app, client, case):
    password, reason = WEAK[case]
    token = CSRF_IN_PAGE.search(client.get("/signup").get_data(as_text=True)).group(1)
    response = client.post("/signup", data={"store_name": STORE, "email": EMAIL, "password": password, "csrf_token": token})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    errors = field_errors(body, "password")
    assert reason in errors, errors
    if password != EMAIL:
        assert password not in html.unescape(body)  # the reason is shown, never the password
    with Session(app.extensions["db_engine"]) as db:
        assert db.exec(select(Member)).all() == []


def test_a_strong_password_is_accepted(client):
    token = CSRF_IN_PAGE.search(client.get("/signup").get_data(as_text=True)).group(1)
    response = client.post("/signup", data={"store_name": STORE, "email": EMAIL, "password": "lantern-quarry-mosaic",
                                            "csrf_token": token})
    assert response.status_code == 302


def test_password_change_refuses_a_guessable_one(app, merchant):
    response = merchant.post("/account/password", {"current_password": "merchant-pass-1", "new_password": "BlueFernShop",
                                                    "repeat_password": "BlueFernShop"})
    assert response.status_code == 200
    assert "made from your store's name" in field_errors(response.get_data(as_text=True), "new_password")
    weak = merchant.post("/account/password", {"current_password": "merchant-pass-1", "new_password": "12345678",
                                                "repeat_password": "12345678"})
    assert "too easy to guess" in field_errors(weak.get_data(as_text=True), "new_password")
    # Still the old password.
    client = app.test_client()
    token = CSRF_IN_PAGE.search(client.get("/signin").get_data(as_text=True)).group(1)
    assert client.post("/signin", data={"email": merchant.email, "password": "merchant-pass-1",
                                        "csrf_token": token}).status_code == 302


@pytest.mark.parametrize("password,reason", [("12345678", "too easy to guess"),
                                             ("agent@heichat.example.com", "made from your email address")])
def test_create_support_agent_refuses_a_guessable_password(app, password, reason):
    register(app)
    result = app.test_cli_runner().invoke(args=["create-support-agent", "agent@heichat.example.com"],
                                          env={PASSWORD_VARIABLE: password})
    assert result.exit_code == 2 and reason in result.output
    if "@" not in password:
        assert password not in result.output  # the reason, never the password itself
    with Session(app.extensions["db_engine"]) as db:
        assert db.exec(select(Member)).all() == []
