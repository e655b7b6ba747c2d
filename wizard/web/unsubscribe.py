"""Unsubscribing from conversion reminders.

Every reminder carries a link with an opaque random token; the stored row
(``wizard.outbox.unsubscribe``) names the store and the address and decides
expiry, so the URL reveals neither and nobody can unsubscribe someone else by
editing it. The link opens a page with a button (a normal form POST with
CSRF). The same token also serves RFC 8058 one-click unsubscribe: mail
clients POST ``List-Unsubscribe=One-Click`` to the address in the
``List-Unsubscribe`` header without any token of ours, so exactly that
endpoint is exempt from CSRF — it can only ever unsubscribe the address its
stored token names.
"""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from wizard.db import get_session
from wizard.extensions import csrf
from wizard.models import Store
from wizard.outbox.queue import suppress, suppression_for
from wizard.outbox.unsubscribe import find_token, is_expired, issue_token
from wizard.web.forms import ActionForm
from wizard.web.public_url import external_url

bp = Blueprint("unsubscribe", __name__, url_prefix="/u")

REASON = "unsubscribed"
EXPIRED = 410


def unsubscribe_token(store_id: int, email: str, issued_for: str | None = None) -> str:
    """A new stored token for ``email`` at store ``store_id`` (the same one again for the same ``issued_for``)."""
    return issue_token(get_session(), store_id, email, issued_for).token


def unsubscribe_urls(store_id: int, email: str, issued_for: str | None = None) -> tuple[str, str]:
    """Absolute URLs of the confirmation page (for the footer) and of the one-click endpoint (for the header)."""
    token = unsubscribe_token(store_id, email, issued_for)
    # From WIZARD_PUBLIC_URL, never from the request's Host header (wizard.web.public_url).
    return (external_url("unsubscribe.confirm", token=token), external_url("unsubscribe.one_click", token=token))


def _read(token: str) -> tuple[Store, str, bool]:
    """The store and address a token names and whether it has expired; 404 for anything unknown."""
    row = find_token(get_session(), token)
    store = get_session().get(Store, row.store_id) if row is not None else None
    if store is None:
        abort(404)
    return store, row.email, is_expired(row)


def _expired(store: Store):
    return render_template("unsubscribe/page.html", store=store, expired=True, done=False, form=None), EXPIRED


def _unsubscribe(store: Store, email: str) -> None:
    suppress(get_session(), store.id, email, REASON)


@bp.route("/<token>", methods=("GET", "POST"))
def confirm(token: str):
    """The page the footer link opens: a button, then the confirmation."""
    store, email, expired = _read(token)
    if expired:
        return _expired(store)
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        _unsubscribe(store, email)
        return redirect(url_for("unsubscribe.confirm", token=token))
    done = suppression_for(get_session(), store.id, email) is not None
    return render_template("unsubscribe/page.html", store=store, email=email, done=done, form=form, token=token)


@bp.route("/<token>/one-click", methods=("GET", "POST"))
@csrf.exempt
def one_click(token: str):
    """RFC 8058: a mail client's POST unsubscribes at once and gets 200 (never a redirect)."""
    store, email, expired = _read(token)
    if expired:
        return _expired(store)
    if request.method == "GET":
        # Someone opened the header's URL in a browser: show the page with its button.
        return redirect(url_for("unsubscribe.confirm", token=token))
    _unsubscribe(store, email)
    return render_template("unsubscribe/page.html", store=store, email=email, done=True, form=None, token=token)
