"""Issue 9, item 13: the development mode's local test mailbox.

- ``/dev/mailbox`` needs a signed-in member and shows each member only the
  mail their own store sent (tied by the queue id the mailbox answered);
- choosing the "Local test mailbox" provider opens the mailbox's own address
  and port only — not 127.0.0.1 on the other allowed ports, nor that port on
  another loopback address.
"""
from __future__ import annotations

import re
import smtplib
import socket
import ssl

import pytest
from cryptography.fernet import Fernet
from test_address_policy import CountingListener

from wizard import create_app
from wizard.cli import start_dev_mailbox
from wizard.devmailbox.server import find_free_port
from wizard.devmailbox.store import list_messages

from conftest import run_connection_test, sign_up
from helpers import enable_prechat

REFUSED = "HeiChat will not connect to this address"


@pytest.fixture
def listener():
    """Something else listening on 127.0.0.1 (a database, an admin port …)."""
    other = CountingListener("127.0.0.1")
    yield other
    other.close()


@pytest.fixture
def dev_app(tmp_path, database_url, listener):
    """Development mode with the local test mailbox running; the policy is the
    production one, except that the operator also allows the listener's port."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url,
                      "SECRET_KEY": "k", "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                      "SMTP_TIMEOUT": 3.0, "SMTP_GREETING_TIMEOUT": 1.0, "DEV_MAILBOX": True,
                      "DEV_MAILBOX_PORT": find_free_port(),
                      "SMTP_ALLOWED_PORTS": f"25,465,587,2525,{listener.port}"})
    mailbox = start_dev_mailbox(app)
    yield app
    mailbox.stop()
    app.extensions["db_engine"].dispose()


def use_local_mailbox(merchant, host: str, port: int):
    enable_prechat(merchant)
    merchant.post("/wizard/provider", {"provider": "local", "ses_region": "us-east-1"})
    response = merchant.post("/wizard/smtp", {"host": host, "port": str(port), "security": "starttls",
                                              "sender_name": "Shop", "sender_email": merchant.email,
                                              "username": merchant.email, "password": "any-password"})
    assert response.status_code == 302, response.get_data(as_text=True)


def send_test_email(merchant, port: int) -> str:
    """Steps 3–5 against the local mailbox; returns the key the mailbox stored the message under."""
    use_local_mailbox(merchant, "127.0.0.1", port)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302
    sent = merchant.post("/wizard/send", {"recipient": merchant.email})
    page = merchant.get(sent.headers["Location"]).get_data(as_text=True)
    return re.search(r'<code class="queue-id">([^<]+)</code>', page).group(1)


def test_the_local_mailbox_opens_only_its_own_address_and_port(dev_app, listener):
    merchant = sign_up(dev_app.test_client())
    # Another service on 127.0.0.1, on a port the policy allows for public hosts.
    use_local_mailbox(merchant, "127.0.0.1", listener.port)
    page = run_connection_test(merchant).get_data(as_text=True)
    assert REFUSED in page and f"Port {listener.port} is not allowed" not in page
    assert "127.0.0.1 is a loopback address" in page
    assert listener.accepted == 0

    # The mailbox's port, but on another loopback address.
    mailbox_port = int(dev_app.config["DEV_MAILBOX_PORT"])
    with socket.create_server(("127.0.0.2", mailbox_port)) as elsewhere:
        use_local_mailbox(merchant, "127.0.0.2", mailbox_port)
        page = run_connection_test(merchant).get_data(as_text=True)
        assert REFUSED in page and "127.0.0.2 is a loopback address" in page
        elsewhere.setblocking(False)
        with pytest.raises(BlockingIOError):  # nobody knocked
            elsewhere.accept()

    # The mailbox itself still works.
    use_local_mailbox(merchant, "127.0.0.1", mailbox_port)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)


def test_dev_mailbox_needs_sign_in_and_shows_only_the_stores_own_mail(dev_app):
    port = int(dev_app.config["DEV_MAILBOX_PORT"])
    anonymous = dev_app.test_client()
    ada = sign_up(dev_app.test_client(), email="ada@bluefern.example.com", store="Blue Fern")
    bo = sign_up(dev_app.test_client(), email="bo@redoak.example.com", store="Red Oak")
    ada_key = send_test_email(ada, port)
    bo_key = send_test_email(bo, port)
    # Mail that did not come through the app (anything on this machine can connect).
    cert = dev_app.instance_path + "/dev-mailbox-cert.pem"
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.starttls(context=ssl.create_default_context(cafile=cert))
        client.login("ada@bluefern.example.com", "x")
        client.sendmail("ada@bluefern.example.com", ["ada@bluefern.example.com"],
                        b"Subject: injected\r\nMessage-ID: <injected@x>\r\n\r\nnot from the app\r\n")
    keys = {m.key for m in list_messages(dev_app.config["DEV_MAILBOX_DIR"])}
    assert {ada_key, bo_key} < keys and len(keys) == 3

    # Nobody signed in: sent to the sign-in page, nothing shown.
    for url in ("/dev/mailbox", f"/dev/mailbox/{ada_key}"):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/signin" in response.headers["Location"]

    ada_inbox = ada.get("/dev/mailbox").get_data(as_text=True)
    assert ada_key in ada_inbox and bo_key not in ada_inbox and "injected" not in ada_inbox
    assert ada.get(f"/dev/mailbox/{ada_key}").status_code == 200
    assert ada.get(f"/dev/mailbox/{bo_key}").status_code == 404
    bo_inbox = bo.get("/dev/mailbox").get_data(as_text=True)
    assert bo_key in bo_inbox and ada_key not in bo_inbox
    assert bo.get(f"/dev/mailbox/{ada_key}").status_code == 404
    injected = (keys - {ada_key, bo_key}).pop()
    assert ada.get(f"/dev/mailbox/{injected}").status_code == 404
