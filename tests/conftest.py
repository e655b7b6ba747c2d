"""Shared fixtures: the app on a temporary instance folder and database, real
aiosmtpd servers on 127.0.0.1, and a signed-up merchant that posts with CSRF."""
from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from wizard import create_app
from wizard.devmailbox.certs import ensure_self_signed_cert

# The password is distinctive, so a leak anywhere is easy to find.
from failure_peers import SMTP_PASSWORD, SMTP_USERNAME  # noqa: E402
from smtp_servers import start_test_server

# CI sets this so tests needing Chromium or PostgreSQL fail instead of skipping.
STRICT = os.environ.get("WIZARD_REQUIRE_ALL_TESTS") == "1"


def skip_or_fail(reason: str) -> None:
    if STRICT:
        pytest.fail(f"{reason} (WIZARD_REQUIRE_ALL_TESTS=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> tuple[Path, Path]:
    return ensure_self_signed_cert(tmp_path_factory.mktemp("certs"), "test-smtp")


PG_URL = os.environ.get("WIZARD_TEST_DATABASE_URL", "")
# Every test that uses the app runs on SQLite, and on PostgreSQL too when a
# server is given (CI always gives one: WIZARD_REQUIRE_ALL_TESTS=1 makes a
# missing server a failure, not a skip).
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL or STRICT else [])


@contextlib.contextmanager
def fresh_database(backend: str, folder: Path):
    """A fresh, empty database: a SQLite file in ``folder``, or a new PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'wizard.sqlite'}"
        return
    if not PG_URL:
        skip_or_fail("PostgreSQL not configured (set WIZARD_TEST_DATABASE_URL; scripts/start-test-postgres.sh)")
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh database for one test, on each backend."""
    with fresh_database(request.param, tmp_path / "instance") as url:
        yield url


def database_text(app) -> str:
    """Every value stored in every table, as text: what a copy of the database reveals."""
    from sqlmodel import SQLModel, select

    parts = []
    with app.extensions["db_engine"].connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                parts.append(" ".join(str(value) for value in row))
    return "\n".join(parts)


@pytest.fixture
def app(tmp_path, certs, database_url):
    instance = tmp_path / "instance"
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "SMTP_EXTRA_CA_FILE": str(certs[0]),
            "SMTP_TIMEOUT": 5.0,
            "SMTP_GREETING_TIMEOUT": 1.0,
            "DEV_MAILBOX": False,
            # The tests' peers listen on loopback and random ports: allowed explicitly.
            "SMTP_ALLOWED_NETWORKS": "127.0.0.0/8, ::1/128",
            "SMTP_ALLOWED_PORTS": "",
        }
    )
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def starttls_server(certs):
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1]) as server:
        yield server


@pytest.fixture
def ssl_server(certs):
    with start_test_server("ssl", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1]) as server:
        yield server


@pytest.fixture
def plain_server(certs):
    with start_test_server("plain", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1]) as server:
        yield server


CSRF_IN_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')


class Merchant:
    """A signed-in merchant driving the app through the Flask test client.

    Every POST carries the CSRF token read from the page, like a browser;
    ``htmx=True`` adds the headers htmx sends. Every response body is kept so
    tests can assert what was never shown.
    """

    def __init__(self, client, email: str):
        self.client = client
        self.email = email
        self.bodies: list[str] = []
        self.token = ""

    def _keep(self, response):
        body = response.get_data(as_text=True)
        self.bodies.append(body + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items()))
        found = CSRF_IN_PAGE.search(body)
        if found:
            self.token = found.group(1)
        return response

    def get(self, url: str, htmx: bool = False, **kwargs):
        headers = {"HX-Request": "true"} if htmx else {}
        return self._keep(self.client.get(url, headers=headers, **kwargs))

    def post(self, url: str, data: dict | None = None, htmx: bool = False, trigger: str | None = None, **kwargs):
        if not self.token:
            self.get("/wizard/pre-chat-form")
        headers = {"X-CSRFToken": self.token}
        if htmx:
            headers["HX-Request"] = "true"
            if trigger:
                headers["HX-Trigger-Name"] = trigger
        return self._keep(self.client.post(url, data=data or {}, headers=headers, **kwargs))


RUN_URL = re.compile(r'hx-get="(/wizard/test/runs/\d+)"')


def run_connection_test(merchant, htmx: bool = False, data: dict | None = None, max_polls: int = 200):
    """Click Test Connection and return the finished step page.

    Without JavaScript the POST runs the test and redirects back to the step;
    with htmx it starts a live run that the page polls until it is finished.
    """
    if not htmx:
        return merchant.post("/wizard/test", data or {}, follow_redirects=True)
    response = merchant.post("/wizard/test", data or {}, htmx=True)
    for _ in range(max_polls):
        found = RUN_URL.search(response.get_data(as_text=True))
        if found is None:
            return response
        time.sleep(0.05)
        response = merchant.get(found.group(1), htmx=True)
    raise AssertionError("the connection test never finished")


def sign_up(client, email: str = "owner@bluefern.example.com", store: str = "Blue Fern Shop", password: str = "merchant-pass-1") -> Merchant:  # noqa: E501
    page = client.get("/signup").get_data(as_text=True)
    token = CSRF_IN_PAGE.search(page).group(1)
    response = client.post("/signup", data={"store_name": store, "email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return Merchant(client, email)


@pytest.fixture
def merchant(client) -> Merchant:
    return sign_up(client)


def smtp_form(server, **overrides) -> dict:
    """SMTP form values pointing at a test server ("Other SMTP" provider)."""
    values = {
        "host": "localhost",
        "port": str(server.port),
        "security": "ssl" if server.mode == "ssl" else "starttls",
        "sender_name": "Blue Fern Support",
        "sender_email": SMTP_USERNAME,
        "username": SMTP_USERNAME,
        "password": SMTP_PASSWORD,
    }
    values.update(overrides)
    return values


# Fixtures shared by test modules (importing them here makes them visible to every module).
from browser_helpers import artifacts, browser, live, new_page  # noqa: E402, F401


@pytest.fixture
def chatting(app, merchant):
    """A visitor (Ada, with an address) who wrote one message."""
    from helpers import conversation_row, enable_prechat, start_chat

    enable_prechat(merchant)
    visitor = start_chat(app)
    return visitor, conversation_row(app).id
