"""Friendly error pages: a clear sentence instead of a bare status line.

htmx requests that hit an error (expired session, missing CSRF token) get
an ``HX-Redirect`` or a small fragment, so nothing half-swaps into the page.
"""
from __future__ import annotations

from flask import Flask, abort, make_response, redirect, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from wizard.extensions import login_manager
from wizard.web import htmx

MESSAGES = {
    400: ("That request could not be understood", "Some of what was sent is missing or malformed. Go back, check the form and try again."),  # noqa: E501
    403: ("Not allowed", "Your account cannot open this page."),
    404: ("Page not found", "The address may be mistyped, or the thing it pointed to no longer exists."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too much data", "What you sent is larger than this app accepts. Shorten the values and try again."),
    429: ("Slow down", "Too many attempts in a short time. Wait a moment and try again."),
    500: ("Something went wrong on our side", "The error was logged. Your saved settings are unchanged; try again in a moment."),
}


def error_page(status: int, title: str, text: str):
    """A friendly error: the whole page, or the alert fragment for htmx, with ``status``."""
    return htmx.page_or_fragment("errors/page.html", "errors/_error.html", status=status,
                                 error_status=status, title=title, text=text)


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_nul_in_url():
        # No URL here has a use for NUL, and PostgreSQL text cannot hold it:
        # refuse it once, here, instead of in every query that takes a slug or a search.
        if "\x00" in request.path or any("\x00" in value for value in request.args.values()):
            abort(400)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return error_page(400, "This form has expired", "For your security, forms expire when you sign out or your session ends. "
                     "Reload the page and submit again — what you typed is still in your draft where it was saved. "
                     f"({error.description})")

    @app.errorhandler(429)
    def too_many(error):
        from wizard.web.rate_limits import seconds_until_reset

        if getattr(error, "response", None) is not None:
            return error.response  # the view's own answer (flask-limiter's on_breach)

        wait = seconds_until_reset()
        response = error_page(429, "Slow down", f"Too many attempts in a short time. Try again in {wait} s.")
        response.headers["Retry-After"] = str(wait)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        title, text = MESSAGES.get(error.code or 500, (error.name, error.description or ""))
        return error_page(error.code or 500, title, text)

    @app.errorhandler(500)
    def server_error(_error):
        title, text = MESSAGES[500]
        return error_page(500, title, text)

    @login_manager.unauthorized_handler
    def sign_in_first():
        target = url_for("auth.sign_in", next=request.full_path if request.method == "GET" else None)
        if request.headers.get("HX-Request"):
            response = make_response("", 200)
            response.headers["HX-Redirect"] = target
            return response
        return redirect(target)
