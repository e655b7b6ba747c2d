"""The account page: change the password, sign out everywhere."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.security import check_password_hash, generate_password_hash

from wizard import accounts
from wizard.db import get_session
from wizard.web.auth import SIGN_IN_WAIT, end_session, start_session
from wizard.web.context import member_store
from wizard.web.forms import ChangePasswordForm, SignOutEverywhereForm

bp = Blueprint("account", __name__)


def _password_form() -> ChangePasswordForm:
    form = ChangePasswordForm()
    store = member_store()
    form.email, form.store_name = current_user.email, store.name if store else ""
    return form


def _page(form: ChangePasswordForm):
    sessions = accounts.live_sessions(get_session(), current_user.id)
    return render_template("account/index.html", form=form, everywhere=SignOutEverywhereForm(), sessions=sessions)


@bp.route("/account")
@login_required
def index():
    return _page(_password_form())


@bp.route("/account/password", methods=("POST",))
@login_required
def change_password():
    form = _password_form()
    if not form.validate_on_submit():
        return _page(form)
    db = get_session()
    member = current_user._get_current_object()
    address = request.remote_addr or "unknown"
    # A stolen session must not become a way to guess the password: same throttle as sign-in.
    wait = accounts.sign_in_wait(db, member.email, address)
    if wait:
        form.current_password.errors.append(SIGN_IN_WAIT.format(wait=wait))
        return _page(form)
    if not check_password_hash(member.password_hash, form.current_password.data):
        accounts.record_failed_sign_in(db, member.email, address)
        form.current_password.errors.append("That is not your current password.")
        return _page(form)
    accounts.set_password(db, member, generate_password_hash(form.new_password.data))
    start_session(member)
    flash("Your password is changed. Every other browser signed in to your account is signed out.", "success")
    return redirect(url_for("account.index"))


@bp.route("/account/signout-everywhere", methods=("POST",))
@login_required
def sign_out_everywhere():
    if not SignOutEverywhereForm().validate_on_submit():
        return redirect(url_for("account.index"))
    accounts.end_all_sessions(get_session(), current_user.id)
    end_session()
    flash("You are signed out everywhere, on this browser too.", "info")
    return redirect(url_for("auth.sign_in"))
