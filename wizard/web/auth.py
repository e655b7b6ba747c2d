"""Sign up, sign in, sign out."""
from __future__ import annotations

import re
import secrets
from functools import lru_cache

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user
from sqlmodel import select
from werkzeug.security import check_password_hash, generate_password_hash

from wizard.db import get_session
from wizard.forms import SignInForm, SignOutForm, SignUpForm
from wizard import accounts
from wizard.models import Member, Store, utcnow
from wizard.rate_limits import limited

bp = Blueprint("auth", __name__)



@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """Checked when the address is unknown, so both paths cost the same
    (made on first use: hashing is deliberately slow, start-up should not be)."""
    return generate_password_hash("not-a-real-password")


def slug_for(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "store"
    db = get_session()
    slug = base
    while db.exec(select(Store).where(Store.slug == slug)).first() is not None:
        slug = f"{base}-{secrets.token_hex(2)}"
    return slug


def _start_session(member: Member) -> None:
    # A fresh session at sign-in: nothing from before survives (no fixation).
    session.clear()
    login_user(member)


def home_for(member: Member) -> str:
    """Where a member lands after signing in: support agents on the support desk."""
    return "support.index" if member.role == "support" else "wizard.resume"


def safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after sign-in."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isprintable() and len(target) < 2000):
        return target
    return None


@bp.route("/signup", methods=("GET", "POST"))
def sign_up():
    form = SignUpForm()
    if form.validate_on_submit():
        db = get_session()
        email = form.email.data.lower()
        if db.exec(select(Member).where(Member.email == email)).first() is not None:
            form.email.errors.append("An account with this email already exists. Sign in instead.")
        else:
            store = Store(name=form.store_name.data.strip(), slug=slug_for(form.store_name.data))
            db.add(store)
            db.flush()
            member = Member(email=email, password_hash=generate_password_hash(form.password.data), store_id=store.id, role="owner")
            db.add(member)
            db.commit()
            _start_session(member)
            flash(f"Welcome! Let's set up email sending for {store.name}.", "success")
            return redirect(url_for("wizard.resume"))
    return render_template("auth/sign_up.html", form=form)


@bp.route("/signin", methods=("GET", "POST"))
@limited("sign_in", per_store=False)
def sign_in():
    form = SignInForm()
    if form.validate_on_submit():
        db = get_session()
        member = db.exec(select(Member).where(Member.email == form.email.data.strip().lower())).first()
        now = utcnow()
        wait = accounts.seconds_blocked(member, now) if member is not None else 0
        if wait:
            form.password.errors.append(f"Too many wrong passwords for this account. Try again in {wait} s.")
        elif member is not None and check_password_hash(member.password_hash, form.password.data):
            accounts.record_success(member)
            db.add(member)
            db.commit()
            _start_session(member)
            return redirect(safe_next(request.args.get("next")) or url_for(home_for(member)))
        else:
            check_password_hash(dummy_hash(), form.password.data)
            if member is not None:
                accounts.record_failure(member, now)
                db.add(member)
                db.commit()
            form.password.errors.append("That email and password do not match an account.")
    return render_template("auth/sign_in.html", form=form)


@bp.route("/signout", methods=("POST",))
@login_required
def sign_out():
    if SignOutForm().validate_on_submit():
        logout_user()
        session.clear()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))
