"""Six simultaneous sign-ups never answer 500 (issue 9, item 8): one email
gives one account and five neutral refusals; one store name gives six stores
with six different slugs. Real threads, each its own browser."""
from __future__ import annotations

import threading

from sqlmodel import Session, select

from wizard.models import Member, Store

from conftest import CSRF_IN_PAGE

BROWSERS = 6


def sign_up_at_once(app, forms: list[dict]) -> list:
    """Every browser loads the form, then all post at the same moment."""
    clients = [app.test_client() for _ in forms]
    tokens = [CSRF_IN_PAGE.search(c.get("/signup").get_data(as_text=True)).group(1) for c in clients]
    start = threading.Barrier(len(forms))
    results: list = [None] * len(forms)

    def post(index: int) -> None:
        start.wait()
        try:
            response = clients[index].post("/signup", data={**forms[index], "csrf_token": tokens[index]})
            results[index] = (response.status_code, response.get_data(as_text=True))
        except Exception as exc:  # noqa: BLE001 — TESTING propagates a 500's exception: record it as one
            results[index] = (500, repr(exc))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(forms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_six_sign_ups_with_one_email_make_one_account(app):
    results = sign_up_at_once(app, [{"store_name": f"Shop {i}", "email": "same@bluefern.example.com",
                                     "password": "lantern-quarry-mosaic"} for i in range(BROWSERS)])
    statuses = sorted(status for status, _body in results)
    assert statuses == [200] * (BROWSERS - 1) + [302], [(s, b[:300]) for s, b in results if s not in (200, 302)]
    for status, body in results:
        if status == 200:
            assert "We could not create an account with these details." in body
    with Session(app.extensions["db_engine"]) as db:
        assert len(db.exec(select(Member)).all()) == 1
        assert len(db.exec(select(Store)).all()) == 1


def test_six_sign_ups_with_one_store_name_get_six_slugs(app):
    results = sign_up_at_once(app, [{"store_name": "Blue Fern Shop", "email": f"owner{i}@bluefern.example.com",
                                     "password": "lantern-quarry-mosaic"} for i in range(BROWSERS)])
    assert [status for status, _body in results] == [302] * BROWSERS, [b[:300] for s, b in results if s != 302]
    with Session(app.extensions["db_engine"]) as db:
        slugs = [store.slug for store in db.exec(select(Store)).all()]
    assert len(set(slugs)) == BROWSERS and "blue-fern-shop" in slugs
    assert all(slug.startswith("blue-fern-shop") for slug in slugs)
