"""Sign-in throttling and sign-up enumeration (issue 9, item 5): a stranger's
failures slow down only the stranger's address; the wait looks the same for
real and unknown accounts; a taken email at sign-up gets the neutral refusal;
sign-up is limited per client address with a friendly answer."""
from __future__ import annotations

import re

from sqlmodel import Session, select

from wizard import accounts
from wizard.models import Member

from conftest import CSRF_IN_PAGE, sign_up

OWNER_PASSWORD = "merchant-pass-1"


def browser(app, address: str):
    """A browser whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def sign_in(client, email: str, password: str):
    token = CSRF_IN_PAGE.search(client.get("/signin").get_data(as_text=True)).group(1)
    return client.post("/signin", data={"email": email, "password": password, "csrf_token": token})


def password_error(response) -> str:
    found = re.search(r'id="password-errors"[^>]*>(.*?)</div>', response.get_data(as_text=True), re.DOTALL)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""


def unlimited_sign_in(app) -> None:
    # flask-limiter's per-address request limit is not what these tests are about.
    app.config["RATE_LIMITS"] = dict(app.config["RATE_LIMITS"], sign_in="100000 per minute")


def owner(app) -> str:
    client = browser(app, "192.0.2.10")
    merchant = sign_up(client)
    merchant.post("/signout")
    return merchant.email


def test_a_stranger_cannot_lock_the_owner_out(app):
    unlimited_sign_in(app)
    email = owner(app)
    stranger = browser(app, "203.0.113.66")
    for _ in range(accounts.FREE_ATTEMPTS + 3):
        sign_in(stranger, email, "guess-guess-guess")
    # The stranger's address waits, even with the right password (it is not even checked) ...
    blocked = sign_in(stranger, email, OWNER_PASSWORD)
    assert blocked.status_code == 200
    assert re.fullmatch(r"Fix: Too many failed sign-ins from here\. Try again in \d+ s\.", password_error(blocked))
    # ... while the owner, from an address that has not been failing, gets straight in.
    signed_in = sign_in(browser(app, "198.51.100.7"), email, OWNER_PASSWORD)
    assert signed_in.status_code == 302


def test_the_wait_reads_the_same_for_real_and_unknown_accounts(app):
    unlimited_sign_in(app)
    email = owner(app)
    answers = {}
    for address, target in (("203.0.113.1", email), ("203.0.113.2", "nobody-here@bluefern.example.com")):
        client = browser(app, address)
        failures = [password_error(sign_in(client, target, "guess-guess-guess")) for _ in range(accounts.FREE_ATTEMPTS)]
        assert set(failures) == {"Fix: That email and password do not match an account."}
        answers[target] = re.sub(r"\d+", "N", password_error(sign_in(client, target, "guess-guess-guess")))
    assert answers[email] == answers["nobody-here@bluefern.example.com"] == \
        "Fix: Too many failed sign-ins from here. Try again in N s."


def test_one_address_trying_many_accounts_is_slowed_down(app):
    unlimited_sign_in(app)
    email = owner(app)
    sprayer = browser(app, "203.0.113.99")
    for number in range(accounts.FREE_ATTEMPTS_ADDRESS):
        sign_in(sprayer, f"someone{number}@bluefern.example.com", "Summer2024!")
    assert "Too many failed sign-ins from here" in password_error(sign_in(sprayer, email, OWNER_PASSWORD))
    assert sign_in(browser(app, "198.51.100.8"), email, OWNER_PASSWORD).status_code == 302


def test_sign_up_with_a_taken_email_does_not_say_it_exists(app):
    email = owner(app)
    client = browser(app, "203.0.113.5")
    token = CSRF_IN_PAGE.search(client.get("/signup").get_data(as_text=True)).group(1)
    response = client.post("/signup", data={"store_name": "Other Shop", "email": email.upper(),
                                            "password": "quiet-otter-lamp-7", "csrf_token": token})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "We could not create an account with these details." in body and 'href="/signin"' in body
    assert "already exists" not in body.lower() and "account with this email" not in body.lower()
    assert "quiet-otter-lamp-7" not in body
    with Session(app.extensions["db_engine"]) as db:
        assert len(db.exec(select(Member)).all()) == 1


def test_sign_up_is_limited_per_address_with_a_friendly_page(app):
    app.config["RATE_LIMITS"] = dict(app.config["RATE_LIMITS"], sign_up="3 per minute")
    client = browser(app, "203.0.113.7")
    for number in range(3):
        sign_up(client, email=f"owner{number}@bluefern.example.com", store=f"Shop {number}").post("/signout")
    token = CSRF_IN_PAGE.search(client.get("/signup").get_data(as_text=True)).group(1)
    refused = client.post("/signup", data={"store_name": "Fourth Shop", "email": "fourth@bluefern.example.com",
                                           "password": "quiet-otter-lamp-7", "csrf_token": token})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert re.search(r"Too many sign-ups from here in a short time\. Try again in \d+ s\.", body)
    assert 'value="Fourth Shop"' in body and "quiet-otter-lamp-7" not in body  # typed values kept, not the password
    # Another address is not affected.
    assert sign_up(browser(app, "198.51.100.9"), email="fifth@bluefern.example.com").client.get("/inbox").status_code == 200
