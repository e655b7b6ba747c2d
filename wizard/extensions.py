"""Extension objects, created once and bound to the app by the factory."""
from __future__ import annotations

from flask import Flask
from flask_htmx import HTMX
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
htmx = HTMX()
login_manager = LoginManager()


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_member(member_id: str):
        from wizard.db import get_session
        from wizard.models import Member

        if not member_id.isdigit():
            return None
        return get_session().get(Member, int(member_id))
