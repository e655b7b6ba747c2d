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

    # Called on every request with the session key from the session cookie
    # (or a remember cookie): only a live server-side session signs anyone in.
    @login_manager.user_loader
    def load_member(session_key: str):
        from wizard import accounts
        from wizard.db import get_session

        return accounts.member_for_session(get_session(), session_key)
