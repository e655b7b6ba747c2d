"""Response headers every page gets.

Besides the content policy: pages a signed-in member sees are never stored by
a browser or a proxy cache (``Cache-Control: no-store`` — they show settings,
conversations, share links), and when the public site is https
(``WIZARD_PUBLIC_URL``) browsers are told to use https only (HSTS).
"""
from __future__ import annotations

from flask import Flask, Response, current_app, g, request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)


# A year; not includeSubDomains: other hosts of the operator's domain are not ours to decide.
HSTS = "max-age=31536000"


def init_app(app: Flask) -> None:
    @app.after_request
    def add_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if current_app.config.get("PUBLIC_URL", "").startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        # The member flask-login loaded for this request (every signed-in page loads it; reading it here
        # never touches the database, which may be why an error page is being sent).
        member = g.get("_login_user")
        if request.endpoint != "static" and member is not None and member.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        return response
