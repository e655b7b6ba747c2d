"""Rate limits and sign-in slow-down."""
from __future__ import annotations

import re
from datetime import timedelta

from wizard import accounts
from wizard.models import SignInThrottle, utcnow

from conftest import CSRF_IN_PAGE, sign_up
from helpers import prepare


def sign_in(client, email, password):
    token = CSRF_IN_PAGE.search(client.get("/signin").get_data(as_text=True)).group(1)
    return client.post("/signin", data={"email": email, "password": password, "csrf_token": token})


def test_connection_tests_are_limited_per_store_with_a_clear_wait(app, merchant, starttls_server):
    app.config["RATE_LIMITS"] = dict(app.config["RATE_LIMITS"], connection_test="2 per minute")
    prepare(merchant, starttls_server)
    assert merchant.post("/wizard/test").status_code == 302
    assert merchant.post("/wizard/test").status_code == 302
    limited = merchant.post("/wizard/test")
    assert limited.status_code == 429
    assert re.search(r"Try again in \d+ s", limited.get_data(as_text=True))
    assert int(limited.headers["Retry-After"]) > 0
    htmx = merchant.post("/wizard/test", htmx=True)
    assert htmx.status_code == 429 and "<html" not in htmx.get_data(as_text=True)
    # Reading the page is not limited.
    assert merchant.get("/wizard/test").status_code == 200


def test_sign_in_is_limited_per_address(app, client):
    app.config["RATE_LIMITS"] = dict(app.config["RATE_LIMITS"], sign_in="3 per minute")
    statuses = [sign_in(client, "nobody@example.com", "wrong-password").status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429


def test_repeated_wrong_passwords_slow_the_account_down(app, client):
    merchant = sign_up(client)
    merchant.post("/signout")
    for _ in range(accounts.FREE_ATTEMPTS):
        assert "do not match" in sign_in(client, merchant.email, "wrong-password").get_data(as_text=True)
    blocked = sign_in(client, merchant.email, "merchant-pass-1")
    assert blocked.status_code == 200
    assert re.search(r"Too many failed sign-ins from here\. Try again in \d+ s", blocked.get_data(as_text=True))
    # Once the wait is over the right password works and resets the count.
    with app.app_context():
        from sqlmodel import select

        from wizard.db import get_session

        db = get_session()
        for row in db.exec(select(SignInThrottle)).all():
            row.blocked_until = utcnow() - timedelta(seconds=1)
            db.add(row)
        db.commit()
    assert sign_in(client, merchant.email, "merchant-pass-1").status_code == 302


def test_block_grows_and_is_capped():
    waits = [accounts.block_after(failures, accounts.FREE_ATTEMPTS).total_seconds()
             for failures in range(1, accounts.FREE_ATTEMPTS + 14)]
    assert waits[: accounts.FREE_ATTEMPTS - 1] == [0] * (accounts.FREE_ATTEMPTS - 1)
    assert waits[accounts.FREE_ATTEMPTS - 1] == 30 and waits[accounts.FREE_ATTEMPTS] == 60
    assert max(waits) == 15 * 60
