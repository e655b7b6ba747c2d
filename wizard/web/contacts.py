"""The merchant's list of visitors who left an email address."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required
from sqlalchemy import func
from sqlmodel import select

from wizard.db import get_session
from wizard.models import Contact, Conversation
from wizard.web.context import current_store

bp = Blueprint("contacts", __name__)


@bp.route("/contacts")
@login_required
def index():
    store = current_store()
    db = get_session()
    conversations = (
        select(Conversation.contact_id, func.count(Conversation.id).label("count"))
        .where(Conversation.store_id == store.id)
        .group_by(Conversation.contact_id)
        .subquery()
    )
    rows = db.exec(
        select(Contact, conversations.c.count)
        .join(conversations, conversations.c.contact_id == Contact.id, isouter=True)
        .where(Contact.store_id == store.id)
        .order_by(Contact.last_seen_at.desc())
    ).all()
    return render_template("contacts/index.html", store=store, rows=rows)
