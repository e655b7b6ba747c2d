"""Sign in with Google / Microsoft: start, callback, disconnect, back to the password.

The browser leaves for the provider with a state, a PKCE challenge and a
nonce (kept in the signed session cookie until it returns) and comes back
to ``/oauth/<provider>/callback``. Whatever goes wrong — cancelled, consent
refused, admin consent needed, a forged or stale answer, a provider that
does not answer — the merchant lands back on the page they came from with a
plain explanation. The flow itself lives in ``wizard.oauth.flow``, what is
stored in ``wizard.setup.sign_in``.
"""
from __future__ import annotations

import time

from flask import Blueprint, abort, flash, redirect, request, session, url_for
from flask_login import current_user, login_required

from wizard.db import get_session
from wizard.models import SmtpDraft, Store
from wizard.oauth.flow import PendingSignIn, SignInProblem
from wizard.oauth.providers import PROVIDER_KEYS, load_sign_in_catalogue
from wizard.setup import drafts, sign_in
from wizard.web.context import catalogue, current_store, secret_box, sign_in_clients
from wizard.web.forms import ActionForm
from wizard.web.public_url import page_url
from wizard.web.rate_limits import limited

bp = Blueprint("oauth", __name__, url_prefix="/oauth")

PENDING_KEY = "oauth_pending"
# Where a sign-in may return to (a name, never a URL from the request).
RETURNS = {"smtp": "wizard.smtp", "troubleshooting": "troubleshooting.index", "inbox": "inbox.index",
           "replies": "replies.page"}
# A pending sign-in older than this is treated as stale.
PENDING_MAX_AGE_SECONDS = 15 * 60


@bp.before_request
@login_required
def require_member():
    current_store()  # 403 for accounts without a store


def _return_endpoint(name: str | None) -> str:
    return RETURNS.get(name or "", RETURNS["smtp"])


def _explain(reason: str, provider_name: str) -> None:
    title, text = load_sign_in_catalogue().problem_text(reason, provider_name)
    flash(f"{title}. {text}", "error")


@bp.route("/<provider>/start", methods=("POST",))
@limited("connection_test")
def start(provider: str):
    """Send the browser to the provider (a POST: it carries the CSRF token)."""
    if provider not in PROVIDER_KEYS:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    store = current_store()
    back = _return_endpoint(request.form.get("return_to"))
    client = sign_in_clients().get(provider)
    if client is None:
        title, text = load_sign_in_catalogue().not_configured(provider)
        flash(f"{title}. {text}", "error")
        return redirect(url_for(back))
    preset = catalogue().get(store.provider)
    if preset is None or preset.sign_in != provider:
        flash("Choose the provider of this sign-in in step 2 first.", "error")
        return redirect(url_for("wizard.provider"))
    db = get_session()
    draft = drafts.get_draft(db, store)
    purpose = "reading" if request.form.get("purpose") == "reading" else "sending"
    # "Allow reading" renews the saved settings' sign-in: their account is the one to pick.
    login = drafts.get_saved(db, store) if purpose == "reading" else draft
    hint = login.username.strip() if login is not None and "@" in login.username else ""
    # "Allow reading" asks for reading too; so does any sign-in of a store that reads with its sign-in.
    reading = purpose == "reading" or sign_in.asks_for_reading(db, store.id)
    try:
        url, pending = client.begin(page_url("oauth.callback", provider=provider), login_hint=hint[:254],
                                    reading=reading)
    except SignInProblem as problem:
        _explain(problem.reason, client.provider.name)
        return redirect(url_for(back))
    session[PENDING_KEY] = {**pending.as_dict(), "store_id": store.id, "return_to": request.form.get("return_to"),
                            "purpose": purpose}
    return redirect(url, code=303)


@bp.route("/<provider>/callback")
def callback(provider: str):
    """The provider sends the browser back here, with a code or an error."""
    if provider not in PROVIDER_KEYS:
        abort(404)
    store = current_store()
    saved_pending = session.pop(PENDING_KEY, None) or {}
    back = _return_endpoint(saved_pending.get("return_to"))
    client = sign_in_clients().get(provider)
    if client is None:
        title, text = load_sign_in_catalogue().not_configured(provider)
        flash(f"{title}. {text}", "error")
        return redirect(url_for(back))
    pending = PendingSignIn.from_dict(saved_pending)
    if (pending is None or pending.provider != provider or saved_pending.get("store_id") != store.id
            or _stale(pending)):
        pending = None  # finish() reports it as a state mismatch
    try:
        tokens = client.finish(pending, {key: request.args.get(key, "") for key in
                                         ("state", "code", "error", "error_description")})
    except SignInProblem as problem:
        _explain(problem.reason, client.provider.name)
        return redirect(url_for(back))
    db = get_session()
    if saved_pending.get("purpose") == "reading":
        return _allow_reading(store, provider, client.provider.name, tokens)
    preset = catalogue().get(store.provider)
    if preset is None or preset.sign_in != provider:
        flash("Choose the provider of this sign-in in step 2 first.", "error")
        return redirect(url_for("wizard.provider"))
    draft = drafts.get_draft(db, store) or SmtpDraft(store_id=store.id, provider=store.provider or "",
                                                      sender_email=current_user.email)
    draft.provider = store.provider or ""
    if not draft.host:
        values = drafts.preset_values(preset, store.ses_region, current_user.email)
        draft.host, draft.port, draft.security = values["host"], values["port"], values["security"]
    connected = sign_in.connect(db, store, draft, preset, provider, tokens, secret_box(),
                                current_user._get_current_object())
    grant, released = connected.grant, connected.released_emails
    next_step = ("Next: test the connection." if back == "wizard.smtp" else "")
    if released:
        next_step = f"{released} held email{'s go' if released != 1 else ' goes'} out now. " + next_step
    flash(f"Signed in with {client.provider.name} as {grant.account_email}. {next_step}".strip(), "success")
    return redirect(url_for(back))


def _allow_reading(store: Store, provider: str, name: str, tokens) -> object:
    """The end of "Allow reading with …": the saved sign-in renewed, back on the replies page."""
    db = get_session()
    saved = drafts.get_saved(db, store)
    if saved is None:
        flash("Save your sending settings in the set-up first: reading uses the same login.", "error")
        return redirect(url_for("replies.page"))
    try:
        sign_in.allow_reading(db, store, saved, provider, tokens, secret_box(), current_user._get_current_object())
    except sign_in.ReadingNotAllowed as refused:
        db.rollback()
        flash(str(refused), "error")
        return redirect(url_for("replies.page"))
    flash(f"{name} now lets HeiChat read {saved.username}: turn reading on below.", "success")
    return redirect(url_for("replies.page"))


def _stale(pending: PendingSignIn) -> bool:
    return time.time() - pending.started_at > PENDING_MAX_AGE_SECONDS


@bp.route("/disconnect", methods=("POST",))
def disconnect():
    """Revoke the sign-in at the provider (where it can) and forget its tokens."""
    if not ActionForm().validate_on_submit():
        abort(400)
    store = current_store()
    db = get_session()
    draft = drafts.get_draft(db, store)
    saved = drafts.get_saved(db, store)
    grant_id = (draft.oauth_grant_id if draft is not None and draft.oauth_grant_id else
                saved.oauth_grant_id if saved is not None else None)
    grant = sign_in.get_grant(db, store.id, grant_id)
    if grant is None:
        flash("There is no sign-in to disconnect.", "info")
        return redirect(url_for("wizard.smtp"))
    account = grant.account_email
    revoked = sign_in.disconnect(db, store, grant, secret_box(), sign_in_clients(), current_user._get_current_object())
    flash(f"Disconnected {account}. " + ("The provider confirmed HeiChat's access is revoked."
                                         if revoked else "Its tokens are deleted here; you can also remove HeiChat "
                                                         "from your account's connected apps at the provider."),
          "success")
    return redirect(url_for("wizard.smtp"))


@bp.route("/use-password", methods=("POST",))
def use_password():
    """Log in with a password (app password) instead of the sign-in."""
    if not ActionForm().validate_on_submit():
        abort(400)
    store = current_store()
    db = get_session()
    draft = drafts.get_draft(db, store)
    if draft is not None:
        sign_in.use_password_instead(draft)
        db.add(draft)
        db.commit()
    flash("Enter the password below. The sign-in stays available if you change your mind.", "info")
    return redirect(url_for("wizard.smtp"))


def panel_context(store, draft, feedback=None) -> dict | None:
    """What the SMTP step's "How HeiChat logs in" panel shows (None: the
    provider has no sign-in)."""
    preset = catalogue().get(store.provider)
    if preset is None or not preset.sign_in:
        return None
    key = preset.sign_in
    sign_ins = load_sign_in_catalogue()
    configured = key in sign_in_clients()
    signed_in = drafts.signed_in(draft)
    grant = sign_in.get_grant(get_session(), store.id, draft.oauth_grant_id) if signed_in else None
    account = (draft.username if draft is not None else "").strip().lower()
    return {
        "key": key,
        "name": sign_ins.providers[key]["name"],
        "button": sign_ins.providers[key]["button"],
        "configured": configured,
        "not_configured": None if configured else sign_ins.not_configured(key),
        "signed_in": signed_in,
        "grant": grant,
        # Outlook.com and friends: OAuth only, no password path at all.
        "password_possible": account.rpartition("@")[2] not in preset.oauth_only_domains,
        "password_label": "an app password" if preset.password_rule == "app_password" else "a password",
        "form": ActionForm(),
    }


# Why a provider stopped accepting the sign-in, in the banner's words.
REFUSALS = {"disconnected": "it was disconnected", "invalid_grant": "the access was revoked or has expired"}


def banner_notice() -> dict | None:
    """The reconnect banner's content for the signed-in member's store (None: no banner)."""
    store_id = getattr(current_user, "store_id", None)
    store = get_session().get(Store, store_id) if store_id is not None else None
    notice = sign_in.reconnect_notice(get_session(), store) if store is not None else None
    if notice is None:
        return None
    raw = load_sign_in_catalogue().providers.get(notice.provider, {})
    return_to = next((name for name, endpoint in RETURNS.items() if endpoint.split(".")[0] == request.blueprint), "smtp")
    return {"provider": notice.provider, "provider_name": raw.get("name", notice.provider),
            "account_email": notice.account_email, "held_emails": notice.held_emails,
            "reason": REFUSALS.get(notice.problem, "the access was revoked or has expired"),
            "configured": notice.provider in sign_in_clients(), "return_to": return_to}
