"""Opening a share link, and the suggestion it leaves in the wizard.

``/share/<token>`` checks the signed token and the link's row, asks for
sign-in when needed, records the opening and redirects to the step or help
topic. Suggested values wait in the session until the merchant accepts them
into the draft or dismisses them (``templates/share/_suggestion.html``).
Pages reached through a link send ``Referrer-Policy: no-referrer``.
"""
from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from wizard.db import get_session
from wizard.support import share_links
from wizard.web import htmx
from wizard.web.auth import safe_next
from wizard.web.context import catalogue, current_store, dev_mailbox_enabled, secret_box
from wizard.web.forms import ActionForm

bp = Blueprint("share", __name__, url_prefix="/share")
SUGGESTION = "share_suggestion"
# Set when a share link sends the browser on; the next page (after any
# redirects) also gets no-referrer, so the link never leaks in a Referer.
LANDING = "share_landing"


def current_suggestion() -> dict | None:
    """For the wizard's suggestion panel: the pending suggestion for the
    signed-in member's own store, ready to show, or None."""
    suggestion = session.get(SUGGESTION)
    if not suggestion or not current_user.is_authenticated:
        return None
    if getattr(current_user, "store_id", None) != suggestion.get("store_id"):
        return None
    if share_links.suggestion_link_state(get_session(), suggestion) != share_links.ACTIVE:
        return None  # revoked or expired meanwhile: nothing left to accept
    return {"rows": share_links.suggestion_rows(suggestion, catalogue()), "note": suggestion.get("note", "")}


@bp.record_once
def _register_globals(state) -> None:
    state.app.jinja_env.globals["share_suggestion"] = current_suggestion


@bp.after_app_request
def no_referrer_from_share_links(response: Response) -> Response:
    if request.endpoint == "share.open":
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    elif (request.endpoint != "static" and current_app.config["SESSION_COOKIE_NAME"] in request.cookies
          and session.get(LANDING)):
        response.headers["Referrer-Policy"] = "no-referrer"
        if not 300 <= response.status_code < 400:
            session.pop(LANDING, None)
    return response


def target_url(target: str) -> str:
    if share_links.target_kind(target) == "step":
        return url_for("wizard." + target.replace("-", "_"))
    return url_for("troubleshooting.index", _anchor=target)


def _unavailable(outcome: str, link=None):
    status, title, text = share_links.PROBLEMS[outcome]
    page = render_template("share/unavailable.html", outcome=outcome, title=title, text=text, link=link,
                           status=status)
    return make_response(page, status)


@bp.route("/<token>", endpoint="open")
def open_link(token: str):
    """Open a share link: sign in first, then the step or topic it points to."""
    db = get_session()
    outcome, link = share_links.find(db, token, current_app.config["SECRET_KEY"])
    if link is None:
        return _unavailable(outcome)
    if not current_user.is_authenticated:
        session[LANDING] = True
        flash("Sign in to open the link HeiChat support sent you.", "info")
        return redirect(url_for("auth.sign_in", next=request.path))
    verdict = share_links.check_for(link, current_user)
    if verdict != "ok":
        return _unavailable(verdict, link)
    suggestion = share_links.record_opening(db, link, current_user._get_current_object())
    if suggestion is not None:
        session[SUGGESTION] = suggestion
    session[LANDING] = True
    return redirect(target_url(link.target))


def _go(url: str):
    """After a POST: the wizard step at ``url`` (loaded into place for htmx, like the wizard's)."""
    return htmx.after_post(url, target="#wizard-step")


@bp.route("/suggestion/accept", methods=("POST",))
@login_required
def accept():
    """Copy the suggested values into the draft (never the saved settings or the
    password), then open step 3 so the merchant checks them and types the password."""
    store = current_store()
    if not ActionForm().validate_on_submit():
        abort(400)
    suggestion = session.get(SUGGESTION)
    if not suggestion or suggestion.get("store_id") != store.id:
        flash("There is no suggestion from HeiChat support to accept any more.", "info")
        return _go(url_for("wizard.resume"))
    providers = [p.key for p in catalogue().visible(dev_mailbox_enabled())]
    try:
        share_links.apply_suggestion(get_session(), store, suggestion, catalogue(), providers,
                                     current_user._get_current_object(), secret_box())
    except share_links.ShareLinkError as exc:
        session.pop(SUGGESTION, None)
        flash(exc.errors.get("link") or "That suggestion cannot be used here. Ask HeiChat support for a new link.",
              "error")
        return _go(url_for("wizard.resume"))
    session.pop(SUGGESTION, None)
    flash("Support's suggested values are in your draft — check them, type your password, and continue.", "success")
    return _go(url_for("wizard.smtp"))


@bp.route("/suggestion/dismiss", methods=("POST",))
@login_required
def dismiss():
    """Forget the suggestion; nothing in the draft changes."""
    if not ActionForm().validate_on_submit():
        abort(400)
    session.pop(SUGGESTION, None)
    # htmx: the panel swaps itself out.
    return htmx.empty_or_redirect(safe_next(request.form.get("next")) or url_for("wizard.resume"),
                                  notice=("Suggestion dismissed — nothing was changed.", "info"))
