"""Share links: made by support for one store, opened by its members after sign-in,
refused clearly when expired, revoked, altered or for another store, and the
suggestion they leave — accepted into the draft or dismissed, never saved silently."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from wizard.models import AuditEvent, ShareLink, ShareLinkOpening, SmtpDraft, SmtpSettings, Store, utcnow
from wizard.support import share_links

from conftest import SMTP_PASSWORD, run_connection_test, sign_up
from helpers import AGENT_EMAIL, all_bodies, prepare, sign_in, store_id_of, support_agent

OWNER = "owner@bluefern.example.com"
OWNER_PASSWORD = "merchant-pass-1"
SHARE_URL = re.compile(r'value="http://localhost(/share/[^"]+)"')


def make_link(agent, store: int, htmx: bool = False, **fields) -> str:
    """Create a link through the support view; return its path (/share/<token>)."""
    data = {"target": "smtp", "expires_amount": "7", "expires_unit": "days", "note": ""}
    data.update(fields)
    response = agent.post(f"/support/stores/{store}/links", data, htmx=htmx)
    if htmx:
        body = response.get_data(as_text=True)
    else:
        assert response.status_code == 302, response.get_data(as_text=True)
        body = agent.get(response.headers["Location"]).get_data(as_text=True)
    links = SHARE_URL.findall(body)
    assert links, body
    return links[0]  # newest first


def link_row(app, link_id: int | None = None) -> ShareLink:
    with Session(app.extensions["db_engine"]) as db:
        query = select(ShareLink).order_by(ShareLink.id.desc())
        return db.get(ShareLink, link_id) if link_id else db.exec(query).first()


def events(app, action: str) -> list[AuditEvent]:
    with Session(app.extensions["db_engine"]) as db:
        return db.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


SUGGESTED = {"host": "smtp.suggested.example.com", "port": "465", "security": "ssl",
             "username": "helpdesk@bluefern.example.com", "sender_name": "Blue Fern Help",
             "sender_email": "help@bluefern.example.com"}


# -- creating, listing, revoking -----------------------------------------------------------------

def test_create_list_and_revoke(app, merchant):
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    path = make_link(agent, store, provider="custom", note="Try port 465", **SUGGESTED)
    row = link_row(app)
    assert row.store_id == store and row.target == "smtp" and row.note == "Try port 465"
    assert row.prefill == {"provider": "custom", **SUGGESTED}
    assert timedelta(days=6, hours=23) < share_links.as_utc(row.expires_at) - utcnow() <= timedelta(days=7)
    # The token carries only the row id, signed with the app's key and the links' own salt.
    token = path.rsplit("/", 1)[1]
    assert share_links.link_id_from(token, app.config["SECRET_KEY"]) == row.id
    assert share_links.link_id_from(token, "another-key") is None
    page = agent.get(f"/support/stores/{store}").get_data(as_text=True)
    listed = page.split('id="share-links"', 1)[1]
    assert f'data-link-id="{row.id}" data-state="active"' in listed
    assert "Step 3 · SMTP settings" in listed and "smtp.suggested.example.com" in listed and "Try port 465" in listed
    assert "opened 0 times" in listed and f"by {AGENT_EMAIL}" in listed

    # htmx: the section comes back alone, with the new link on top.
    second = make_link(agent, store, htmx=True, target="auth-failed")
    assert second != path and link_row(app).target == "auth-failed"

    revoked = agent.post(f"/support/stores/{store}/links/{row.id}/revoke")
    assert revoked.status_code == 302
    assert link_row(app, row.id).revoked_at is not None
    after = agent.get(f"/support/stores/{store}").get_data(as_text=True)
    assert f'data-link-id="{row.id}" data-state="revoked"' in after
    fragment = agent.post(f"/support/stores/{store}/links/{row.id}/revoke", htmx=True).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="share-links"')
    # Another store's link id under this store: not found.
    other = sign_up(app.test_client(), "maria@redoak.example.com", "Red Oak Candles")
    other_store = store_id_of(app, other.email)
    assert agent.post(f"/support/stores/{other_store}/links/{row.id}/revoke").status_code == 404

    created = events(app, "share_link.created")
    assert [e.detail["target"] for e in created] == ["smtp", "auth-failed"]
    assert created[0].detail["fields"] == sorted(["provider", *SUGGESTED]) and created[0].actor_email == AGENT_EMAIL
    assert [e.detail["link_id"] for e in events(app, "share_link.revoked")] == [row.id]  # revoked once


INVALID = [
    ({"port": "99999"}, "port", "port number from 1 to 65535"),
    ({"security": "tls"}, "security", "STARTTLS or SSL/TLS"),
    ({"provider": "nope"}, "provider", "providers in the list"),
    ({"host": "https://smtp.example.com"}, "host", "only the server name"),
    ({"sender_email": "not-an-address"}, "sender_email", "@"),
    ({"username": "a\r\nBcc: x@example.com"}, "username", "control characters"),
    ({"target": "nowhere"}, "target", "wizard step or a help topic"),
    ({"expires_amount": "0", "expires_unit": "hours"}, "expires", "between 1 hour and 30 days"),
    ({"expires_amount": "31", "expires_unit": "days"}, "expires", "between 1 hour and 30 days"),
    ({"expires_amount": "721", "expires_unit": "hours"}, "expires", "between 1 hour and 30 days"),
    ({"expires_amount": "two", "expires_unit": "days"}, "expires", "whole number"),
    ({"note": "x" * 501}, "note", "under 500 characters"),
]


def test_invalid_links_are_refused_beside_the_field(app, merchant):
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    for fields, field, message in INVALID:
        data = {"target": "smtp", "expires_amount": "7", "expires_unit": "days", **fields}
        for htmx in (False, True):
            response = agent.post(f"/support/stores/{store}/links", data, htmx=htmx)
            body = response.get_data(as_text=True)
            assert response.status_code == 200, fields
            errors = body.split(f'id="link-{field}-errors"', 1)[1].split("</div>", 1)[0]
            assert message in errors, (fields, errors)
            assert ("<html" in body) is not htmx
    assert link_row(app) is None


def test_edge_expiries_are_accepted(app, merchant):
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    make_link(agent, store, expires_amount="1", expires_unit="hours")
    assert timedelta(minutes=59) < share_links.as_utc(link_row(app).expires_at) - utcnow() <= timedelta(hours=1)
    make_link(agent, store, expires_amount="30", expires_unit="days")
    assert timedelta(days=29, hours=23) < share_links.as_utc(link_row(app).expires_at) - utcnow() <= timedelta(days=30)


def test_a_password_is_never_accepted_into_a_link(app, merchant):
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    for key in ("password", "smtp_password", "Password"):
        response = agent.post(f"/support/stores/{store}/links", {"target": "smtp", "expires_amount": "7",
                                                                 "expires_unit": "days", key: SMTP_PASSWORD})
        assert response.status_code == 400, key
        assert "never carry a password" in response.get_data(as_text=True)
        assert SMTP_PASSWORD not in response.get_data(as_text=True)
        with pytest.raises(share_links.PasswordRefused):
            share_links.clean_prefill({"host": "smtp.example.com", key: "secret"}, ["custom"])
    assert link_row(app) is None


# -- opening ----------------------------------------------------------------------------------------

def test_anonymous_opening_signs_in_and_comes_back(app, client):
    sign_up(client)  # the owner's account; they open the link from another, signed-out browser
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    path = make_link(agent, store, target="provider")

    visitor = app.test_client()
    first = visitor.get(path)
    assert first.status_code == 302
    assert first.headers["Location"] == f"/signin?next={path}"
    assert first.headers["Referrer-Policy"] == "no-referrer"
    sign_in_page = visitor.get(first.headers["Location"])
    assert "Sign in to open the link" in sign_in_page.get_data(as_text=True)
    assert sign_in_page.headers["Referrer-Policy"] == "no-referrer"

    signed_in = sign_in(visitor, OWNER, OWNER_PASSWORD, next_url=path)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == path
    opened = visitor.get(path)
    assert opened.status_code == 302 and opened.headers["Location"] == "/wizard/provider"
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    landing = visitor.get("/wizard/provider")
    assert landing.status_code == 200 and landing.headers["Referrer-Policy"] == "no-referrer"
    # Only that first landing: the next page has the usual policy again.
    assert visitor.get("/wizard/provider").headers["Referrer-Policy"] == "same-origin"

    with Session(app.extensions["db_engine"]) as db:
        [opening] = db.exec(select(ShareLinkOpening)).all()
    assert opening.link_id == link_row(app).id
    [event] = events(app, "share_link.opened")
    assert event.actor_email == OWNER and event.store_id == store and event.detail["target"] == "provider"
    listed = agent.get(f"/support/stores/{store}").get_data(as_text=True)
    assert "opened 1 time," in listed


def test_a_topic_link_opens_the_help_topic(app, merchant):
    store = store_id_of(app, OWNER)
    path = make_link(support_agent(app), store, target="auth-failed")
    response = merchant.get(path)
    assert response.status_code == 302 and response.headers["Location"] == "/troubleshooting#auth-failed"


def test_expired_revoked_tampered_unknown_and_other_store_links(app, merchant):
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    expired_path = make_link(agent, store)
    expired = link_row(app)
    revoked_path = make_link(agent, store)
    revoked = link_row(app)
    agent.post(f"/support/stores/{store}/links/{revoked.id}/revoke")
    with Session(app.extensions["db_engine"]) as db:
        row = db.get(ShareLink, expired.id)
        row.expires_at = utcnow() - timedelta(minutes=1)
        db.add(row)
        db.commit()
    token = expired_path.rsplit("/", 1)[1]
    tampered = "/share/" + token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    unknown = "/share/" + share_links.serializer(app.config["SECRET_KEY"]).dumps(987654)

    cases = [(expired_path, 410, "This link has expired"), (revoked_path, 410, "This link was revoked"),
             (tampered, 404, "This link is not valid"), (unknown, 404, "This link does not exist"),
             ("/share/not-a-token", 404, "This link is not valid")]
    for path, status, words in cases:
        response = merchant.get(path)
        assert response.status_code == status, path
        assert words in response.get_data(as_text=True)
        assert response.headers["Referrer-Policy"] == "no-referrer"
    # Anonymous visitors learn nothing more than "not valid" for a forged token.
    assert app.test_client().get(tampered).status_code == 404

    # A member of another store: 403, checked before expiry so the link's state stays private.
    other = sign_up(app.test_client(), "maria@redoak.example.com", "Red Oak Candles")
    for path in (make_link(agent, store), expired_path):
        response = other.get(path)
        assert response.status_code == 403
        body = response.get_data(as_text=True)
        assert "This link is for another store" in body and "maria@redoak.example.com" in body
    # Support agents are members of no store.
    assert agent.get(make_link(agent, store)).status_code == 403
    assert events(app, "share_link.opened") == []


# -- the suggestion -----------------------------------------------------------------------------------

def open_with_suggestion(app, merchant, starttls_server, **extra):
    """A merchant with tested, saved settings opens a link suggesting other values."""
    prepare(merchant, starttls_server)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302
    store = store_id_of(app, OWNER)
    path = make_link(support_agent(app), store, note="Your server wants SSL/TLS on 465", **{**SUGGESTED, **extra})
    opened = merchant.get(path)
    assert opened.headers["Location"] == "/wizard/smtp"
    return store


def snapshot(app, store: int):
    with Session(app.extensions["db_engine"]) as db:
        draft = db.exec(select(SmtpDraft).where(SmtpDraft.store_id == store)).one()
        saved = db.exec(select(SmtpSettings).where(SmtpSettings.store_id == store)).one()
        return draft, saved, db.get(Store, store)


def test_suggestion_is_shown_and_accept_fills_the_draft_not_the_saved_settings(app, merchant, starttls_server):
    store = open_with_suggestion(app, merchant, starttls_server)
    draft_before, saved_before, _ = snapshot(app, store)
    step = merchant.get("/wizard/smtp").get_data(as_text=True)
    panel = step.split('id="share-suggestion"', 1)[1].split("</aside>", 1)[0]
    assert "HeiChat support suggests these settings" in panel and "Your server wants SSL/TLS on 465" in panel
    assert 'data-field="host">smtp.suggested.example.com<' in panel and 'data-field="security">SSL/TLS<' in panel
    assert "password" not in panel.split("<dl", 1)[1].split("</dl>", 1)[0].lower()
    # The form itself still shows the merchant's own values: nothing applied yet.
    assert 'value="localhost"' in step
    # Other steps show it too; it is only a suggestion until accepted.
    assert 'id="share-suggestion"' in merchant.get("/wizard/test").get_data(as_text=True)

    accepted = merchant.post("/share/suggestion/accept")
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/wizard/smtp"
    draft, saved, _ = snapshot(app, store)
    assert {f: getattr(draft, f) for f in SUGGESTED} == SUGGESTED
    # Another server: the password typed for the old one is dropped, never sent there (issue 9, item 1).
    assert draft_before.password_encrypted and draft.password_encrypted is None
    assert saved.model_dump() == saved_before.model_dump()  # saved settings unchanged
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert 'id="share-suggestion"' not in page
    assert 'value="smtp.suggested.example.com"' in page and "check them, type your password" in page
    assert "Password saved (encrypted)" not in page and "You changed the server: type the password again" in page
    [changed] = [e for e in events(app, "settings.changed") if e.detail.get("source") == "share_link"]
    assert changed.detail == {"source": "share_link", "link_id": link_row(app).id,
                              "fields": ["host", "port", "security", "sender_name", "sender_email", "username"]}
    assert changed.actor_email == OWNER
    assert SMTP_PASSWORD not in all_bodies(merchant)


def test_accepting_a_provider_applies_its_preset_first(app, merchant, starttls_server):
    store = open_with_suggestion(app, merchant, starttls_server, provider="sendgrid", host="", port="", security="",
                                 username="")
    page = merchant.get("/wizard/smtp").get_data(as_text=True)
    assert 'data-field="provider">SendGrid<' in page
    accepted = merchant.post("/share/suggestion/accept", htmx=True)
    assert json.loads(accepted.headers["HX-Location"])["path"] == "/wizard/smtp"
    draft, saved, store_row = snapshot(app, store)
    assert store_row.provider == "sendgrid" and draft.provider == "sendgrid"
    assert (draft.host, draft.port, draft.username) == ("smtp.sendgrid.net", "587", "apikey")
    assert (draft.sender_name, draft.sender_email) == ("Blue Fern Help", "help@bluefern.example.com")
    assert saved.provider == "custom"


def test_dismiss_forgets_the_suggestion_and_changes_nothing(app, merchant, starttls_server):
    store = open_with_suggestion(app, merchant, starttls_server)
    draft_before, _, _ = snapshot(app, store)
    assert 'id="share-suggestion"' in merchant.get("/wizard/smtp").get_data(as_text=True)
    dismissed = merchant.post("/share/suggestion/dismiss", {"next": "/wizard/smtp"})
    assert dismissed.status_code == 302 and dismissed.headers["Location"] == "/wizard/smtp"
    assert 'id="share-suggestion"' not in merchant.get("/wizard/smtp").get_data(as_text=True)
    draft, _, _ = snapshot(app, store)
    assert draft.model_dump() == draft_before.model_dump()
    assert [e for e in events(app, "settings.changed") if e.detail.get("source") == "share_link"] == []
    # Accepting afterwards finds nothing to apply.
    late = merchant.post("/share/suggestion/accept")
    assert late.status_code == 302 and late.headers["Location"] == "/wizard"
    # htmx dismiss answers with nothing, which swaps the panel away; an off-site next is ignored.
    assert merchant.post("/share/suggestion/dismiss", htmx=True).get_data(as_text=True) == ""
    assert merchant.post("/share/suggestion/dismiss", {"next": "//evil.example"}).headers["Location"] == "/wizard"


def test_suggestion_panel_is_empty_without_a_suggestion(app, merchant):
    store = store_id_of(app, OWNER)
    assert 'id="share-suggestion"' not in merchant.get("/wizard/pre-chat-form").get_data(as_text=True)
    # A link without values opens the step and leaves no panel.
    path = make_link(support_agent(app), store, target="pre-chat-form")
    assert merchant.get(path).headers["Location"] == "/wizard/pre-chat-form"
    assert 'id="share-suggestion"' not in merchant.get("/wizard/pre-chat-form").get_data(as_text=True)


def test_posting_without_csrf_is_refused(app, merchant):
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    assert agent.client.post(f"/support/stores/{store}/links", data={"target": "smtp"}).status_code == 400
    assert merchant.client.post("/share/suggestion/accept").status_code == 400
    assert link_row(app) is None


def test_a_second_agent_sees_who_created_the_link(app, merchant):
    store = store_id_of(app, OWNER)
    make_link(support_agent(app), store)
    other = support_agent(app, "second-agent@heichat.example.com")
    assert f"by {AGENT_EMAIL}" in other.get(f"/support/stores/{store}").get_data(as_text=True)
