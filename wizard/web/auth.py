"""Sign up, sign in, sign out. Sessions and the sign-in throttle live in
``wizard.accounts``; this module only hashes passwords and answers."""
from __future__ import annotations

import math
import time
from functools import lru_cache

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from wizard import accounts
from wizard.db import get_session
from wizard.models import Member
from wizard.web.forms import SignInForm, SignOutForm, SignUpForm
from wizard.web.rate_limits import limited

bp = Blueprint("auth", __name__)

# One answer for every sign-up that cannot go ahead with these details, so the
# page does not tell a stranger which emails have an account.
SIGN_UP_REFUSED = "We could not create an account with these details."
SIGN_IN_WAIT = "Too many failed sign-ins from here. Try again in {wait} s."


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """Checked when the address is unknown, so both paths cost the same
    (made on first use: hashing is deliberately slow, start-up should not be)."""
    return generate_password_hash("not-a-real-password")


def start_session(member: Member) -> None:
    """Sign ``member`` in with a brand-new server-side session: nothing from
    before survives (no fixation), and the old session key means nothing."""
    session.clear()
    accounts.open_session(get_session(), member)
    login_user(member)


def end_session() -> None:
    """Sign this browser out: the server forgets the session, then the cookie is cleared."""
    accounts.end_session(get_session(), current_user.get_id() if current_user.is_authenticated else None)
    logout_user()
    session.clear()


def home_for(member: Member) -> str:
    """Where a member lands after signing in: support agents on the support desk, merchants
    on the home page (which sends anyone still setting up on to the wizard)."""
    return "support.index" if member.role == "support" else "home.index"


def safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after sign-in."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isprintable() and len(target) < 2000):
        return target
    return None


def _sign_up_slowed(limit):
    """Too many sign-ups from one address: the form again (what was typed
    kept) with the wait, instead of a bare 429 page."""
    wait = max(1, math.ceil(limit.reset_at - time.time()))
    page = render_template("auth/sign_up.html", form=SignUpForm(),
                           refusal=f"Too many sign-ups from here in a short time. Try again in {wait} s.")
    response = make_response(page, 429)
    response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/signup", methods=("GET", "POST"))
@limited("sign_up", per_store=False, on_breach=_sign_up_slowed)
def sign_up():
    form = SignUpForm()
    refusal = None
    if form.validate_on_submit():
        db = get_session()
        # Hashed whether or not the account can be created: both answers cost the same.
        password_hash = generate_password_hash(form.password.data)
        member = accounts.create_owner(db, form.store_name.data, form.email.data, password_hash)
        if member is None:
            refusal = SIGN_UP_REFUSED
        else:
            start_session(member)
            flash(f"Welcome! Let's set up email sending for {form.store_name.data.strip()}.", "success")
            return redirect(url_for("wizard.resume"))
    return render_template("auth/sign_up.html", form=form, refusal=refusal)


@bp.route("/signin", methods=("GET", "POST"))
@limited("sign_in", per_store=False)
def sign_in():
    form = SignInForm()
    if form.validate_on_submit():
        db = get_session()
        email = form.email.data.strip().lower()
        address = request.remote_addr or "unknown"
        wait = accounts.sign_in_wait(db, email, address)
        if wait:
            # The same words for every email, known or not; the password is not checked.
            form.password.errors.append(SIGN_IN_WAIT.format(wait=wait))
            return render_template("auth/sign_in.html", form=form)
        member = accounts.find_member(db, email)
        if member is not None and check_password_hash(member.password_hash, form.password.data):
            accounts.record_sign_in(db, email, address)
            start_session(member)
            return redirect(safe_next(request.args.get("next")) or url_for(home_for(member)))
        if member is None:
            check_password_hash(dummy_hash(), form.password.data)
        accounts.record_failed_sign_in(db, email, address)
        form.password.errors.append("That email and password do not match an account.")
    return render_template("auth/sign_in.html", form=form)


@bp.route("/signout", methods=("POST",))
@login_required
def sign_out():
    if SignOutForm().validate_on_submit():
        end_session()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))
