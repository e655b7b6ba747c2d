"""The store's audit log, for its owner: who changed, tested, saved or shared what, and when."""
from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from wizard import audit
from wizard.db import get_session
from wizard.web.context import current_store

bp = Blueprint("audit", __name__)


@bp.route("/audit")
@login_required
def index():
    store = current_store()  # 403 for accounts without a store (support agents)
    if current_user.role != "owner":
        abort(403)
    events = audit.events_for_store(get_session(), store.id)
    return render_template("audit/index.html", store=store, events=events, describe=audit.describe,
                           limit=audit.PAGE_SIZE)
