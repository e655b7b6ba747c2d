"""The audit log: what ``audit.record`` keeps (never a password) and who may read /audit."""
from __future__ import annotations

import pytest
from sqlmodel import Session, select

from wizard import audit
from wizard.models import AuditEvent, Member

from conftest import SMTP_PASSWORD, run_connection_test, sign_up
from helpers import add_member, all_bodies, prepare, sign_in, store_id_of, support_agent

OWNER = "owner@bluefern.example.com"


def test_record_keeps_who_and_what_but_never_a_password(app, merchant):
    store = store_id_of(app, OWNER)
    with Session(app.extensions["db_engine"]) as db:
        owner = db.exec(select(Member).where(Member.email == OWNER)).one()
        event = audit.record(db, store_id=store, actor=owner, action="settings.saved", detail={
            "host": "smtp.example.com", "password": SMTP_PASSWORD, "smtp_Password": SMTP_PASSWORD,
            "nested": {"new_password": SMTP_PASSWORD, "port": 587}, "list": [{"password_encrypted": "x", "ok": 1}],
            "refresh_token": "1//refresh", "client_secret": "s3cret", "oauth": {"access_token": "ya29.x"},
        })
        stored = db.get(AuditEvent, event.id)
        assert (stored.actor_id, stored.actor_email, stored.actor_role) == (owner.id, OWNER, "owner")
        assert stored.detail == {"host": "smtp.example.com", "nested": {"port": 587}, "list": [{"ok": 1}], "oauth": {}}
        assert stored.created_at is not None
        system = audit.record(db, store_id=store, actor=None, action="share_link.revoked")
        assert (system.actor_id, system.actor_email, system.detail) == (None, "", {})
        with pytest.raises(ValueError):
            audit.record(db, store_id=store, actor=owner, action="settings.deleted")
    assert set(audit.ACTIONS) == {"settings.changed", "settings.tested", "settings.saved", "share_link.created",
                                  "share_link.opened", "share_link.revoked", "support_view.opened",
                                  "oauth.connected", "oauth.reconnected", "oauth.reading_allowed", "oauth.refresh_failed",
                                  "oauth.disconnected"}


def test_audit_page_is_for_the_owner_only(app, merchant):
    store = store_id_of(app, OWNER)
    add_member(app, "staff@bluefern.example.com", "staff-pass-1", "staff", store)
    staff_client = app.test_client()
    assert sign_in(staff_client, "staff@bluefern.example.com", "staff-pass-1").status_code == 302
    assert staff_client.get("/audit").status_code == 403
    agent = support_agent(app)
    assert agent.get("/audit").status_code == 403
    anonymous = app.test_client().get("/audit")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/signin")
    assert merchant.get("/audit").status_code == 200


def test_audit_page_lists_events_newest_first_without_passwords(app, merchant, starttls_server):
    prepare(merchant, starttls_server)
    run_connection_test(merchant)
    store = store_id_of(app, OWNER)
    agent = support_agent(app)
    agent.get(f"/support/stores/{store}")
    with Session(app.extensions["db_engine"]) as db:
        owner = db.exec(select(Member).where(Member.email == OWNER)).one()
        audit.record(db, store_id=store, actor=owner, action="settings.saved",
                     detail={"host": "localhost", "password": SMTP_PASSWORD})
    # Another store's events stay out of this log.
    other = sign_up(app.test_client(), "maria@redoak.example.com", "Red Oak Candles")
    agent.get(f"/support/stores/{store_id_of(app, other.email)}")

    page = merchant.get("/audit").get_data(as_text=True)
    rows = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr ")[1:]
    actions = [row.split('data-action="', 1)[1].split('"', 1)[0] for row in rows]
    assert actions[0] == "settings.saved" and actions[1] == "support_view.opened"
    assert actions.count("support_view.opened") == 1
    assert "Opened the store in the support view" in rows[1] and "agent@heichat.example.com" in rows[1]
    assert "HeiChat support" in rows[1]
    assert "Saved the SMTP settings" in rows[0] and OWNER in rows[0] and "host: localhost" in rows[0]
    assert SMTP_PASSWORD not in all_bodies(merchant)
