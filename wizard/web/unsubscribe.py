"""Unsubscribing from conversion reminders.

Every reminder carries a signed link naming the store and the address (no
database row is needed to make one, and the signature means nobody can
unsubscribe someone else by editing the URL). The link opens a page with a
button (a normal form POST with CSRF). The same token also serves RFC 8058
one-click unsubscribe: mail clients POST ``List-Unsubscribe=One-Click`` to
the address in the ``List-Unsubscribe`` header without any token of ours, so
exactly that endpoint is exempt from CSRF — it can only ever unsubscribe the
address its signed token names.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeSerializer

from wizard.db import get_session
from wizard.extensions import csrf
from wizard.forms import ActionForm
from wizard.models import Store
from wizard.outbox.queue import suppress, suppression_for
from wizard.web.public_url import external_url

bp = Blueprint("unsubscribe", __name__, url_prefix="/u")

# Its own salt: a token signed for anything else in the app never passes here.
SALT = "heichat.unsubscribe.reminders"
REASON = "unsubscribed"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def unsubscribe_token(store_id: int, email: str) -> str:
    """The signed token for ``email`` at store ``store_id``."""
    return _serializer().dumps({"store": store_id, "email": email.strip().lower()})


def unsubscribe_urls(store_id: int, email: str) -> tuple[str, str]:
    """Absolute URLs of the confirmation page (for the footer) and of the one-click endpoint (for the header)."""
    token = unsubscribe_token(store_id, email)
    # From WIZARD_PUBLIC_URL, never from the request's Host header (wizard.web.public_url).
    return (external_url("unsubscribe.confirm", token=token), external_url("unsubscribe.one_click", token=token))


def _read(token: str) -> tuple[Store, str]:
    """The store and address a token names; 404 for anything tampered with or unknown."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        abort(404)
    if not isinstance(data, dict) or not isinstance(data.get("store"), int) or not isinstance(data.get("email"), str):
        abort(404)
    store = get_session().get(Store, data["store"])
    if store is None:
        abort(404)
    return store, data["email"]


def _unsubscribe(store: Store, email: str) -> None:
    suppress(get_session(), store.id, email, REASON)


@bp.route("/<token>", methods=("GET", "POST"))
def confirm(token: str):
    """The page the footer link opens: a button, then the confirmation."""
    store, email = _read(token)
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
    store, email = _read(token)
    if request.method == "GET":
        # Someone opened the header's URL in a browser: show the page with its button.
        return redirect(url_for("unsubscribe.confirm", token=token))
    _unsubscribe(store, email)
    return render_template("unsubscribe/page.html", store=store, email=email, done=True, form=None, token=token)
