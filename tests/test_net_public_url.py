"""Issue 9, item 9: absolute URLs come from WIZARD_PUBLIC_URL, never from a
forged Host header; X-Forwarded-For counts only with WIZARD_TRUSTED_PROXIES."""
from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from test_inbox import compose_post, configure_email, deliver, emails, open_compose  # noqa: F401
from test_share_links import make_link

from wizard import create_app

from conftest import CSRF_IN_PAGE, SMTP_PASSWORD, run_connection_test
from helpers import prepare, store_id_of, support_agent

PUBLIC = "https://chat.heichat.example"
EVIL = "evil.example"


def forged(person) -> dict:
    """Request options for ``person`` with the Host header an attacker chose (the
    session cookie goes along, as a browser behind a careless proxy would send it)."""
    jar = person.client._cookies  # the test client's cookie jar: copy the cookies to the forged host
    for cookie in list(jar.values()):
        person.client.set_cookie(cookie.key, cookie.value, domain=EVIL, path=cookie.path)
    return {"base_url": f"http://{EVIL}/"}


def test_reminder_links_use_the_public_url_whatever_the_host_header(app, merchant, chatting, starttls_server):
    app.config["PUBLIC_URL"] = PUBLIC
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    evil = forged(merchant)
    page = merchant.get(f"/inbox/{conversation_id}/compose?kind=reminder", **evil).get_data(as_text=True)
    key = re.search(r'name="draft_key" type="hidden" value="([^"]+)"', page).group(1)
    data = {"draft_key": key, "action": "preview", "subject": "Still thinking?", "body": "Hi {visitor_name}"}
    preview = merchant.post(f"/inbox/{conversation_id}/compose?kind=reminder", data, **evil).get_data(as_text=True)
    assert f"open {PUBLIC}/u/" in preview and EVIL not in preview
    sent = merchant.post(f"/inbox/{conversation_id}/compose?kind=reminder", dict(data, action="send"), **evil)
    assert sent.status_code == 302
    deliver(app)
    [received] = starttls_server.messages
    assert received.message["List-Unsubscribe"].startswith(f"<{PUBLIC}/u/")
    assert f'<a href="{PUBLIC}/u/' in received.message.get_body(("html",)).get_content()
    assert EVIL.encode() not in received.data


def test_share_links_and_support_links_use_the_public_url(app, merchant, starttls_server):
    store = store_id_of(app, merchant.email)
    agent = support_agent(app)
    make_link(agent, store)  # made normally, then shown to a request with a forged host
    app.config["PUBLIC_URL"] = PUBLIC
    page = agent.get(f"/support/stores/{store}", **forged(agent)).get_data(as_text=True)
    assert re.search(rf'value="{re.escape(PUBLIC)}/share/[^"]+"', page) and EVIL not in page
    # The merchant's "send this to support" link after a failed test.
    prepare(merchant, starttls_server, password="wrong-one")
    run_connection_test(merchant)
    failed = merchant.get("/wizard/test", **forged(merchant)).get_data(as_text=True)
    assert re.search(rf'value="{re.escape(PUBLIC)}/support/tests/\d+"', failed) and EVIL not in failed


def test_without_the_setting_development_uses_the_request(app, merchant, starttls_server):
    prepare(merchant, starttls_server, password="wrong-one")
    page = run_connection_test(merchant).get_data(as_text=True)
    assert re.search(r'value="http://localhost/support/tests/\d+"', page)


@pytest.fixture
def production_app(tmp_path, certs, database_url):
    """Production mode (neither debug nor testing) without WIZARD_PUBLIC_URL."""
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url,
                      "SECRET_KEY": "k", "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                      "SMTP_EXTRA_CA_FILE": str(certs[0]), "SMTP_TIMEOUT": 5.0, "SMTP_GREETING_TIMEOUT": 1.0,
                      "DEV_MAILBOX": False, "SMTP_ALLOWED_NETWORKS": "127.0.0.0/8", "SMTP_ALLOWED_PORTS": "",
                      "SESSION_COOKIE_SECURE": False})
    yield app
    app.extensions["db_engine"].dispose()


def test_production_without_the_setting_builds_no_link_from_the_host_header(production_app, starttls_server):
    from test_chat import conversation_row, start_chat
    from test_wizard_flow import enable_prechat

    from conftest import sign_up

    assert not production_app.testing and not production_app.debug
    merchant = sign_up(production_app.test_client())
    enable_prechat(merchant)
    start_chat(production_app)
    conversation_id = conversation_row(production_app).id
    configure_email(merchant, starttls_server)
    _page, key = open_compose(merchant, conversation_id, "reminder")
    refused = compose_post(merchant, conversation_id, key, "send", kind="reminder", subject="Still thinking?",
                           body="Hi {visitor_name}").get_data(as_text=True)
    assert "must set WIZARD_PUBLIC_URL" in refused and emails(production_app) == []
    # Links shown in pages stay on this site (a path), never on the Host header's site.
    prepare(merchant, starttls_server, password="wrong-one")
    page = run_connection_test(merchant).get_data(as_text=True)
    assert re.search(r'value="/support/tests/\d+"', page) and "http://localhost/support" not in page


@pytest.mark.parametrize("value", ["https://chat.example.com/wizard", "chat.example.com", "ftp://chat.example.com",
                                   "https://user@chat.example.com", "https://chat.example.com/?a=1",
                                   "https://chat.example.com:port"])
def test_a_malformed_public_url_stops_start_up_with_the_reason(tmp_path, monkeypatch, value):
    monkeypatch.setenv("WIZARD_PUBLIC_URL", value)
    with pytest.raises(ValueError, match="WIZARD_PUBLIC_URL must be the scheme and host"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "k"})


# -- the client address behind a reverse proxy ------------------------------------------------

def sign_in_attempt(app, forwarded_for: str) -> int:
    client = app.test_client()
    token = CSRF_IN_PAGE.search(client.get("/signin").get_data(as_text=True)).group(1)
    return client.post("/signin", data={"email": "nobody@example.com", "password": SMTP_PASSWORD,
                                        "csrf_token": token},
                       headers={"X-Forwarded-For": forwarded_for}).status_code


def limited_app(tmp_path, database_url, proxies: str | None):
    config = {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url,
              "SECRET_KEY": "k", "ENCRYPTION_KEYS": Fernet.generate_key().decode(), "DEV_MAILBOX": False}
    if proxies is not None:
        config["TRUSTED_PROXIES"] = proxies
    app = create_app(config)
    app.config["RATE_LIMITS"] = dict(app.config["RATE_LIMITS"], sign_in="2 per minute")
    return app


def test_forwarded_for_counts_only_behind_a_trusted_proxy(tmp_path, database_url):
    behind = limited_app(tmp_path, database_url, "1")
    try:
        assert [sign_in_attempt(behind, "198.51.100.7") for _ in range(3)][-1] == 429
        assert sign_in_attempt(behind, "198.51.100.8") != 429  # another client behind the same proxy
        # The proxy appends the real client: what the client itself wrote in front does not count.
        assert sign_in_attempt(behind, "203.0.113.1, 198.51.100.7") == 429
    finally:
        behind.extensions["db_engine"].dispose()
    direct = limited_app(tmp_path, database_url, None)
    try:
        assert [sign_in_attempt(direct, "198.51.100.7") for _ in range(3)][-1] == 429
        assert sign_in_attempt(direct, "198.51.100.8") == 429  # a forged header changes nothing
    finally:
        direct.extensions["db_engine"].dispose()
