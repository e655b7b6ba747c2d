"""Blueprints (one per area) and the page-or-fragment helper they share."""
from __future__ import annotations

from flask import Flask, Response, make_response, render_template, request

from wizard.extensions import htmx


def register_blueprints(app: Flask) -> None:
    from wizard.web import auth, contacts, detect, devmailbox, home, troubleshooting, visitor, wizard
    from wizard.web import audit, share, support
    from wizard.web import inbox, unsubscribe
    from wizard.web import account
    from wizard.web import wizard_send  # noqa: F401  (step 5's routes, on the wizard's blueprint)

    for module in (home, auth, wizard, detect, troubleshooting, visitor, contacts, devmailbox, support, share, audit,
                   inbox, unsubscribe, account):
        app.register_blueprint(module.bp)

    from wizard.web.context import dev_mailbox_enabled, member_store

    from wizard.catalogue.help import topic_for_category

    app.jinja_env.globals.update(dev_mailbox_enabled=dev_mailbox_enabled, current_user_store=member_store,
                                 topic_for_category=topic_for_category)


def wants_fragment() -> bool:
    """An htmx request that is neither boosted nor a history restore wants a fragment."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(page: str, fragment: str, status: int = 200, push_url: str | None = None, **context) -> Response:
    """Render the full page, or only its fragment for an htmx request.

    Both use the same fragment template, so markup exists once.
    """
    template = fragment if wants_fragment() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    if push_url and wants_fragment():
        response.headers["HX-Push-Url"] = push_url
    return response


def form_data() -> dict[str, str]:
    """The request's form as plain strings; a duplicated field keeps its first value."""
    return {key: request.form.get(key, "") for key in request.form.keys()}
