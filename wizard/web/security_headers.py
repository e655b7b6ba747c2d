"""Response headers every page gets.

Besides the content policy: pages a signed-in member sees are never stored by
a browser or a proxy cache (``Cache-Control: no-store`` — they show settings,
conversations, share links), and when the public site is https
(``WIZARD_PUBLIC_URL``) browsers are told to use https only (HSTS).
"""
from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from wizard.web.context import sign_in_clients


def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """The policy; ``form_targets`` are the sign-in providers' origins, where a
    "Sign in with …" form's redirect takes the browser (``form-action`` covers redirects)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "frame-src 'self'",
            " ".join(["form-action 'self'", *form_targets]),
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()


# A year; not includeSubDomains: other hosts of the operator's domain are not ours to decide.
HSTS = "max-age=31536000"


def init_app(app: Flask) -> None:
    @app.after_request
    def add_headers(response: Response) -> Response:
        targets = tuple(sorted({origin for client in sign_in_clients().values()
                                for origin in client.provider.browser_origins}))
        response.headers.setdefault("Content-Security-Policy", content_security_policy(targets))
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
