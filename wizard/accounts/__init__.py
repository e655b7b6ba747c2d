"""Accounts: creating a store's owner, sign-in sessions, and the sign-in throttle.

Sessions live on the server. Signing in creates a ``SignInSession`` row with a
fresh random key; the browser's cookie (and any remember cookie) carries only
that key, and every request looks it up. Signing out deletes the row, a
password change or "sign out everywhere" deletes all of a member's rows, so a
captured cookie stops working at once. Sessions also end 14 days after sign-in
or after 3 days without use.

Failed sign-ins are counted per (email typed, client address) and per client
address, never per account alone: a stranger failing from their address slows
down only that address, and the owner's correct password from elsewhere still
gets in. Unknown emails are counted exactly like real ones, so the answers
cannot tell them apart.

Password hashing stays with the callers (the web layer and the commands),
which pass hashes in: this module knows nothing of Flask or Werkzeug.
"""
from __future__ import annotations

import hashlib
import math
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from wizard.models import Member, SignInSession, SignInThrottle, Store, utcnow

# -- sessions -------------------------------------------------------------------------------

SESSION_MAX_AGE = timedelta(days=14)
SESSION_IDLE = timedelta(days=3)
# "Last seen" is written at most this often (not on every request).
TOUCH_EVERY = timedelta(minutes=5)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _attach(member: Member, key: str) -> Member:
    # Member.get_id() returns it: Flask-Login puts it in the cookie.
    member.__dict__["session_key"] = key
    return member


def _expired(row: SignInSession, now: datetime) -> bool:
    return row.created_at + SESSION_MAX_AGE <= now or row.last_seen_at + SESSION_IDLE <= now


def open_session(db: Session, member: Member, now: datetime | None = None) -> str:
    """Start a new session for ``member`` (a new key every time) and return its key."""
    now = now or utcnow()
    key = secrets.token_urlsafe(32)
    db.add(SignInSession(member_id=member.id, key_hash=_digest(key), created_at=now, last_seen_at=now))
    # The member's stale sessions go while we are here.
    for row in db.exec(select(SignInSession).where(SignInSession.member_id == member.id)):
        if _expired(row, now):
            db.delete(row)
    db.commit()
    _attach(member, key)
    return key


def member_for_session(db: Session, key: str | None, now: datetime | None = None) -> Member | None:
    """The member whose live session has this key, or None (ended, expired, unknown)."""
    if not key or len(key) > 100:
        return None
    now = now or utcnow()
    # Both rows in one query: every signed-in request asks this first.
    found = db.exec(select(SignInSession, Member).join(Member, Member.id == SignInSession.member_id)
                    .where(SignInSession.key_hash == _digest(key))).first()
    if found is None:
        return None
    row, member = found
    if _expired(row, now):
        db.delete(row)
        db.commit()
        return None
    if row.last_seen_at + TOUCH_EVERY <= now:
        row.last_seen_at = now
        db.add(row)
        db.commit()
    return _attach(member, key)


def end_session(db: Session, key: str | None) -> None:
    """Sign out this one session (this browser)."""
    if key:
        db.execute(delete(SignInSession).where(SignInSession.key_hash == _digest(key)))
        db.commit()


def end_all_sessions(db: Session, member_id: int) -> None:
    """Sign the member out everywhere."""
    db.execute(delete(SignInSession).where(SignInSession.member_id == member_id))
    db.commit()


def live_sessions(db: Session, member_id: int, now: datetime | None = None) -> int:
    """How many browsers are signed in as this member."""
    now = now or utcnow()
    rows = db.exec(select(SignInSession).where(SignInSession.member_id == member_id)).all()
    return sum(1 for row in rows if not _expired(row, now))


def set_password(db: Session, member: Member, password_hash: str) -> None:
    """Store a new password hash and end every session of the member (the
    caller opens a fresh one for the browser that made the change)."""
    member.password_hash = password_hash
    db.add(member)
    db.execute(delete(SignInSession).where(SignInSession.member_id == member.id))
    db.commit()


# -- sign-in throttle -------------------------------------------------------------------------

FREE_ATTEMPTS = 5            # per (email, address) before the first block
FREE_ATTEMPTS_ADDRESS = 20   # per address, over all emails
FIRST_BLOCK = timedelta(seconds=30)
LONGEST_BLOCK = timedelta(minutes=15)
# Counting starts again after this long without a failure.
FORGET_AFTER = timedelta(hours=1)


def block_after(failures: int, free: int) -> timedelta:
    """The block after the ``failures``-th failure in a row: none while free,
    then 30 s, doubling up to 15 minutes."""
    extra = failures - free
    if extra < 0:
        return timedelta(0)
    return min(FIRST_BLOCK * (2 ** min(extra, 20)), LONGEST_BLOCK)


def _keys(email: str, address: str) -> list[tuple[str, int]]:
    email = email.strip().lower()
    return [(_digest(f"email+address\n{email}\n{address}"), FREE_ATTEMPTS),
            (_digest(f"address\n{address}"), FREE_ATTEMPTS_ADDRESS)]


def sign_in_wait(db: Session, email: str, address: str, now: datetime | None = None) -> int:
    """Seconds before this address may try this email again (0: it may now).
    While it must wait, the password is not checked at all."""
    now = now or utcnow()
    wait = 0
    for key, _free in _keys(email, address):
        row = db.get(SignInThrottle, key)
        if row is not None and row.blocked_until is not None:
            wait = max(wait, math.ceil((row.blocked_until - now).total_seconds()))
    return max(0, wait)


def record_failed_sign_in(db: Session, email: str, address: str, now: datetime | None = None) -> None:
    """Count one wrong password (or unknown email) from ``address``."""
    now = now or utcnow()
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    for key, free in _keys(email, address):
        db.execute(delete(SignInThrottle).where(SignInThrottle.key == key,
                                             SignInThrottle.last_failure_at < now - FORGET_AFTER))
        # One atomic statement: parallel failures are all counted.
        statement = insert(SignInThrottle).values(key=key, failures=1, last_failure_at=now)
        db.execute(statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"failures": SignInThrottle.failures + 1, "last_failure_at": now}))
        row = db.get(SignInThrottle, key, populate_existing=True)
        block = block_after(row.failures, free)
        row.blocked_until = now + block if block else None
        db.add(row)
    db.commit()


def record_sign_in(db: Session, email: str, address: str) -> None:
    """A correct password clears this (email, address)'s count; the address's
    own count only fades with time, so signing in to one's own account does not
    buy more guesses at others."""
    key, _free = _keys(email, address)[0]
    db.execute(delete(SignInThrottle).where(SignInThrottle.key == key))
    db.commit()


# -- sign-up ---------------------------------------------------------------------------------

SLUG_ATTEMPTS = 8


def slug_base(name: str) -> str:
    """The URL slug a store name asks for: lower-case ASCII words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "store"


def _free_slug(db: Session, base: str, attempt: int) -> str:
    slug = base if attempt == 0 else f"{base}-{secrets.token_hex(2)}"
    while db.exec(select(func.count()).select_from(Store).where(Store.slug == slug)).one():
        slug = f"{base}-{secrets.token_hex(2)}"
    return slug


def find_member(db: Session, email: str) -> Member | None:
    return db.exec(select(Member).where(Member.email == email.strip().lower())).first()


def email_taken(db: Session, email: str) -> bool:
    return db.exec(select(func.count()).select_from(Member).where(Member.email == email)).one() > 0


def create_member(db: Session, email: str, password_hash: str, *, role: str, store: Store | None = None) -> Member:
    """One account — a store's owner or staff, or a support agent (no store) — committed.

    Every way in creates accounts here (sign-up, ``create-support-agent``). The
    unique email column decides who gets an address: a taken one raises
    ``IntegrityError`` (the caller rolls back and says so), also when two
    requests race for it."""
    member = Member(email=email.lower(), password_hash=password_hash, store_id=store.id if store else None, role=role)
    db.add(member)
    db.commit()
    return member


def create_owner(db: Session, store_name: str, email: str, password_hash: str) -> Member | None:
    """Create a store and its owner; None when the email already has an account.

    Safe when several sign-ups run at once: the unique email and slug columns
    decide, and a slug taken meanwhile is retried with a random suffix.
    """
    email = email.lower()
    name = store_name.strip()
    base = slug_base(name)
    for attempt in range(SLUG_ATTEMPTS):
        if email_taken(db, email):
            return None
        try:
            store = Store(name=name, slug=_free_slug(db, base, attempt))
            db.add(store)
            db.flush()
            return create_member(db, email, password_hash, role="owner", store=store)
        except IntegrityError:
            # Another sign-up took the email or the slug first: look again.
            db.rollback()
    raise RuntimeError("no free store slug after several attempts")
