"""The visitor's pre-chat form, the contacts page, accounts and first start."""
from __future__ import annotations

import os
import stat

from cryptography.fernet import Fernet

from wizard import create_app

from conftest import CSRF_IN_PAGE
from helpers import enable_prechat


def visitor_post(client, slug, data):
    page = client.get(f"/s/{slug}/chat").get_data(as_text=True)
    token = CSRF_IN_PAGE.search(page).group(1)
    return client.post(f"/s/{slug}/chat", data=dict(data, csrf_token=token))


def test_visitor_leaves_an_address_and_the_merchant_sees_it(app, merchant):
    enable_prechat(merchant)
    visitor = app.test_client()
    page = visitor.get("/s/blue-fern-shop/chat").get_data(as_text=True)
    assert "Leave your email" in page and 'name="email"' in page
    bad = visitor_post(visitor, "blue-fern-shop", {"email": "not an address", "message": "Hi"})
    assert bad.status_code == 200 and "msg-error" in bad.get_data(as_text=True)
    missing = visitor_post(visitor, "blue-fern-shop", {"email": "", "message": "Hi"})
    assert "so we can reply after you leave" in missing.get_data(as_text=True)
    ok = visitor_post(visitor, "blue-fern-shop", {"name": "Ada", "email": "Ada@Example.com", "message": "Do you ship to Oslo?"})
    assert ok.status_code == 302
    chat = visitor.get("/s/blue-fern-shop/chat").get_data(as_text=True)
    assert "conversation has started" in chat and "Do you ship to Oslo?" in chat
    contacts = merchant.get("/contacts").get_data(as_text=True)
    assert "Ada@example.com" in contacts and "Ada" in contacts


def test_unknown_store_is_404(client):
    assert client.get("/s/no-such-store/chat").status_code == 404


def test_sign_in_sign_out_and_duplicate_sign_up(client, merchant):
    merchant.post("/signout")
    assert client.get("/wizard/provider").status_code == 302
    page = client.get("/signin").get_data(as_text=True)
    token = CSRF_IN_PAGE.search(page).group(1)
    wrong = client.post("/signin", data={"email": merchant.email, "password": "nope-nope", "csrf_token": token})
    assert "do not match" in wrong.get_data(as_text=True)
    right = client.post("/signin", data={"email": merchant.email, "password": "merchant-pass-1", "csrf_token": token})
    assert right.status_code == 302
    client.post("/signout", headers={"X-CSRFToken": token})
    page = client.get("/signup").get_data(as_text=True)
    token = CSRF_IN_PAGE.search(page).group(1)
    again = client.post("/signup", data={"store_name": "X", "email": merchant.email, "password": "quiet-otter-lamp-7", "csrf_token": token})  # noqa: E501
    # A taken email gets the neutral refusal (no account enumeration) with a way to sign in.
    assert again.status_code == 200 and "We could not create an account with these details" in again.get_data(as_text=True)


def test_first_start_creates_database_and_private_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("WIZARD_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = tmp_path / "instance"
    app = create_app({"INSTANCE_PATH": str(instance)})
    for name in ("secret_key", "encryption.key"):
        mode = stat.S_IMODE(os.stat(instance / name).st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert (instance / "wizard.sqlite").exists()
    Fernet((instance / "encryption.key").read_text().strip().encode())  # a valid key
    # A second start reuses the same keys.
    again = create_app({"INSTANCE_PATH": str(instance)})
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    for each in (app, again):
        each.extensions["db_engine"].dispose()


def test_environment_overrides_database_and_keys(tmp_path, monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'other.sqlite'}")
    monkeypatch.setenv("WIZARD_ENCRYPTION_KEY", key)
    monkeypatch.setenv("SECRET_KEY", "from-env")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance")})
    assert (tmp_path / "other.sqlite").exists()
    assert app.config["ENCRYPTION_KEYS"] == key and app.config["SECRET_KEY"] == "from-env"
    assert not (tmp_path / "instance" / "encryption.key").exists()
    app.extensions["db_engine"].dispose()
