"""Helpers for the IMAP tests: a merchant whose sending settings are saved, reading switched on at the test Dovecot."""
from __future__ import annotations

import re

from sqlmodel import Session

from wizard.inbound.imap_settings import get_fetching
from wizard.models.inbound import ImapFetching

from conftest import run_connection_test
from helpers import prepare

RESULT_CATEGORY = re.compile(r'id="imap-result" data-category="([a-z_]+)"')


def save_sending(merchant, smtp_server) -> None:
    """The wizard: SMTP settings for ``smtp_server`` (host localhost), tested and saved."""
    prepare(merchant, smtp_server)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302


def allow_test_imap(app) -> None:
    """Dovecot listens on random loopback ports: allowed like the SMTP test peers are."""
    app.config["IMAP_ALLOWED_PORTS"] = ""


def turn_on_reading(merchant, dovecot, htmx: bool = False, **overrides):
    values = {"enabled": "y", "host": "localhost", "port": str(dovecot.imaps_port), "security": "ssl",
              "folder": "INBOX", "action": "save"}
    values.update(overrides)
    return merchant.post("/inbox/replies", values, htmx=htmx)


def fetching_row(app, store_id: int) -> ImapFetching | None:
    with Session(app.extensions["db_engine"]) as session:
        return get_fetching(session, store_id)


def result_category(response) -> str | None:
    found = RESULT_CATEGORY.search(response.get_data(as_text=True))
    return found.group(1) if found else None
