"""Extension objects, created once and bound to the app by the factory."""
from __future__ import annotations

from flask import Flask
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
htmx = HTMX()
login_manager = LoginManager()
# Storage from RATELIMIT_STORAGE_URI: memory:// by default, redis://… to share across processes.
limiter = Limiter(key_func=get_remote_address)


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_member(member_id: str):
        from wizard.db import get_session
        from wizard.models import Member

        if not member_id.isdigit():
            return None
        return get_session().get(Member, int(member_id))
