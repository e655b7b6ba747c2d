"""Issue 9, items 11 and 8 (share links): Accept re-checks the link a pending
suggestion came from (revoked or expired: refused, nothing changes), and numbers
in a link are ASCII digits only (no 500, never a port like "٣٣")."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select
from test_share_links import SUGGESTED, link_row, make_link, open_with_suggestion, snapshot

from wizard.models import ShareLink, SmtpDraft, utcnow

from helpers import store_id_of, support_agent

OWNER = "owner@bluefern.example.com"


def test_accept_after_the_link_was_revoked_changes_nothing(app, merchant, starttls_server):
    store = open_with_suggestion(app, merchant, starttls_server)
    panel_page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert 'id="accept-suggestion"' in panel_page  # the merchant has the panel open …
    agent = support_agent(app, "revoker@heichat.example.com")
    assert agent.post(f"/support/stores/{store}/links/{link_row(app).id}/revoke").status_code == 302  # … and support revokes
    draft_before, saved_before, _ = snapshot(app, store)

    for htmx in (False, True):
        refused = merchant.post("/share/suggestion/accept", htmx=htmx)
        assert refused.status_code in (200, 302)
    draft, saved, _ = snapshot(app, store)
    assert draft.model_dump() == draft_before.model_dump() and saved.model_dump() == saved_before.model_dump()
    # The first refusal said why (the second found nothing pending any more).
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert 'id="share-suggestion"' not in page


def test_accept_after_revoke_says_why(app, merchant, starttls_server):
    store = open_with_suggestion(app, merchant, starttls_server)
    support_agent(app, "revoker@heichat.example.com").post(f"/support/stores/{store}/links/{link_row(app).id}/revoke")
    refused = merchant.post("/share/suggestion/accept", follow_redirects=True).get_data(as_text=True)
    assert "revoked the link this suggestion came from" in refused and "Nothing was changed" in refused
    assert 'value="smtp.suggested.example.com"' not in merchant.get("/wizard/smtp").get_data(as_text=True)


def test_accept_after_the_link_expired_is_refused(app, merchant, starttls_server):
    store = open_with_suggestion(app, merchant, starttls_server)
    with Session(app.extensions["db_engine"]) as db:
        link = db.exec(select(ShareLink)).one()
        link.expires_at = utcnow() - timedelta(minutes=1)
        db.add(link)
        db.commit()
    refused = merchant.post("/share/suggestion/accept", follow_redirects=True).get_data(as_text=True)
    assert "has expired, so it can no longer be accepted" in refused
    with Session(app.extensions["db_engine"]) as db:
        draft = db.exec(select(SmtpDraft).where(SmtpDraft.store_id == store)).one()
        assert draft.host == "localhost" and draft.host != SUGGESTED["host"]


@pytest.mark.parametrize("fields, message", [
    ({"expires_amount": "²"}, "whole number"),
    ({"expires_amount": "٣"}, "whole number"),
    ({"expires_amount": "100000000000000000000"}, "between 1 hour and 30 days"),
    ({"expires_amount": "100000000000000000000", "expires_unit": "hours"}, "between 1 hour and 30 days"),
    ({"port": "²"}, "port number from 1 to 65535"),
    ({"port": "٣٣"}, "port number from 1 to 65535"),
    ({"port": "100000000000000000000"}, "at most 5 characters"),
])
def test_non_ascii_and_huge_numbers_get_a_field_error(app, merchant, fields, message):
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    data = {"target": "smtp", "expires_amount": "7", "expires_unit": "days", **fields}
    for htmx in (False, True):
        response = agent.post(f"/support/stores/{store}/links", data, htmx=htmx)
        assert response.status_code == 200, response.status_code
        assert message in response.get_data(as_text=True)
    with Session(app.extensions["db_engine"]) as db:
        assert db.exec(select(ShareLink)).all() == []
    assert agent.get(f"/support/stores/{store}?created=²").status_code == 200


def test_a_non_ascii_port_is_never_stored_by_use_detected(app, merchant, starttls_server):
    open_with_suggestion(app, merchant, starttls_server)
    refused = merchant.post("/wizard/smtp/use-detected", {"host": "localhost", "port": "٣٣", "security": "starttls"})
    assert refused.status_code == 400
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert "٣٣" not in page
    # The SMTP form keeps what was typed but flags it: never a number.
    checked = merchant.post("/wizard/smtp", {"host": "localhost", "port": "٣٣", "security": "starttls",
                                            "sender_name": "Blue Fern", "sender_email": OWNER, "username": OWNER})
    assert checked.status_code == 200 and 'data-code="port_not_number"' in checked.get_data(as_text=True)
    assert merchant.post("/wizard/test").status_code == 200  # blocked, not a 500
    assert make_link(support_agent(app, "second-agent@heichat.example"), store_id_of(app, OWNER), port="587")
