"""The landing page."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

bp = Blueprint("home", __name__)


@bp.route("/")
def index():
    if current_user.is_authenticated:
        from wizard.web.auth import home_for

        return redirect(url_for(home_for(current_user)))
    return render_template("home.html")
