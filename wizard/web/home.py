"""The landing page: for visitors the product, for a merchant whose set-up is
done the answer to "is my email working?" (``wizard.setup.health``); anyone
still setting up goes on with the wizard, support agents to their desk."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from wizard.db import get_session
from wizard.setup import health
from wizard.web.context import member_store

bp = Blueprint("home", __name__)


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return render_template("home.html")
    if current_user.role == "support":
        return redirect(url_for("support.index"))
    store = member_store()
    if store is None or not health.setup_finished(get_session(), store):
        return redirect(url_for("wizard.resume"))
    return render_template("home/dashboard.html", store=store, health=health.email_health(get_session(), store))
