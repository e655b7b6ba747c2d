"""Blueprints (one per area); page-or-fragment answers live in ``wizard.web.htmx``."""
from __future__ import annotations

from flask import Flask, request


def register_blueprints(app: Flask) -> None:
    from wizard.web import (
        account,
        audit,
        auth,
        contacts,
        detect,
        devmailbox,
        home,
        inbox,
        oauth,
        replies,
        share,
        support,
        troubleshooting,
        unsubscribe,
        visitor,
        wizard,
        wizard_send,  # noqa: F401  (step 5's routes, on the wizard's blueprint)
    )

    for module in (home, auth, wizard, detect, troubleshooting, visitor, contacts, devmailbox, support, share, audit,
                   inbox, unsubscribe, account, oauth, replies):
        app.register_blueprint(module.bp)

    from wizard.catalogue.help import topic_for_category
    from wizard.smtp.diagnosis import category_title, is_library_text
    from wizard.web.context import dev_mailbox_enabled, member_setup_state, member_store
    from wizard.web.oauth import banner_notice

    app.jinja_env.tests["library_text"] = is_library_text
    app.jinja_env.globals.update(dev_mailbox_enabled=dev_mailbox_enabled, current_user_store=member_store,
                                 member_setup_state=member_setup_state,
                                 topic_for_category=topic_for_category, category_title=category_title,
                                 reconnect_notice=banner_notice)


def form_data() -> dict[str, str]:
    """The request's form as plain strings; a duplicated field keeps its first value."""
    return {key: request.form.get(key, "") for key in request.form.keys()}
