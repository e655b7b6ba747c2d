"""Is this store's email working? The answer the home page and the
troubleshooting page start with.

``email_health`` reads the saved settings, the sign-in behind them, the latest
connection test, the latest email that went out (a test email or one from the
outbox) and the outbox's counts, and picks one connection state and the one
next thing to do. The words live in ``wizard/catalogue/health.toml``. No Flask.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from wizard.catalogue.health import NextStep, health_texts
from wizard.models import ConnectionTest, SendLog, SmtpSettings, Store, utcnow
from wizard.models.outbox import BOUNCED, FAILED, QUEUED, SENDING, SENT, OutboxEmail
from wizard.setup.sign_in import HELD_FOR_SIGN_IN, HELD_FOR_TOKEN, ReconnectNotice, reconnect_notice
from wizard.smtp.diagnosis import category_title

__all__ = ["TESTED", "UNTESTED", "FAILING", "RECONNECT_NEEDED", "NOT_SET_UP", "Outcome", "OutboxCounts",
           "EmailHealth", "email_health", "as_utc", "health_texts", "setup_finished", "FAILED_WINDOW"]

TESTED, UNTESTED, FAILING, RECONNECT_NEEDED, NOT_SET_UP = (
    "tested", "untested", "failing", "reconnect_needed", "not_set_up")
# "Failed this week": the window the home page counts failed emails in.
FAILED_WINDOW = timedelta(days=7)
HELD_CATEGORIES = (HELD_FOR_SIGN_IN, HELD_FOR_TOKEN)


@dataclass(frozen=True)
class Outcome:
    """One finished connection test or email, in plain words."""

    what: str  # "Connection test", "Test email to ada@…", "Follow-up to ada@…"
    when: datetime
    ok: bool
    result: str  # "Passed", "Accepted by the server", or the failure's title


@dataclass(frozen=True)
class OutboxCounts:
    queued: int  # waiting to go out (not held)
    failed_this_week: int  # gave up or bounced in the last seven days
    held: int  # kept back until a sign-in or the provider comes back


@dataclass(frozen=True)
class EmailHealth:
    state: str  # TESTED | UNTESTED | FAILING | RECONNECT_NEEDED | NOT_SET_UP
    title: str
    text: str
    last_test: Outcome | None
    last_send: Outcome | None
    outbox: OutboxCounts
    next_step: NextStep
    reconnect: ReconnectNotice | None = None

    @property
    def working(self) -> bool:
        return self.state == TESTED


def as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for tz-aware columns; every moment here is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def _test_outcome(test: ConnectionTest | None) -> Outcome | None:
    if test is None or test.status != "finished":
        return None
    return Outcome("Connection test", as_utc(test.created_at), test.ok,
                   "Passed" if test.ok else category_title(test.category))


def _latest_send(session: Session, store_id: int) -> Outcome | None:
    """The newest email that went out or gave up: a test email or one from the outbox."""
    log = session.exec(select(SendLog).where(SendLog.store_id == store_id).order_by(SendLog.id.desc()).limit(1)).first()
    email = session.exec(
        select(OutboxEmail).where(OutboxEmail.store_id == store_id, OutboxEmail.status.in_((SENT, FAILED, BOUNCED)))
        .order_by(func.coalesce(OutboxEmail.sent_at, OutboxEmail.created_at).desc(), OutboxEmail.id.desc()).limit(1)).first()
    candidates = []
    if log is not None:
        candidates.append(Outcome(f"Test email to {log.recipient}", as_utc(log.created_at), log.ok,
                                  "Accepted by the server" if log.ok else category_title(log.category)))
    if email is not None:
        ok = email.status == SENT
        result = "Sent" if ok else ("Bounced" if email.status == BOUNCED
                                    else category_title(email.last_category or "unexpected"))
        candidates.append(Outcome(f"Email to {email.recipient}", as_utc(email.sent_at or email.created_at), ok, result))
    return max(candidates, key=lambda outcome: outcome.when, default=None)


def outbox_counts(session: Session, store_id: int, now: datetime | None = None) -> OutboxCounts:
    def count(*conditions) -> int:
        return session.exec(select(func.count()).select_from(OutboxEmail)
                            .where(OutboxEmail.store_id == store_id, *conditions)).one()

    since = (now or utcnow()) - FAILED_WINDOW
    held = count(OutboxEmail.status == QUEUED, OutboxEmail.last_category.in_(HELD_CATEGORIES))
    waiting = count(OutboxEmail.status.in_((QUEUED, SENDING)))
    failed = count(OutboxEmail.status.in_((FAILED, BOUNCED)), OutboxEmail.created_at >= since)
    return OutboxCounts(queued=waiting - held, failed_this_week=failed, held=held)


def setup_finished(session: Session, store: Store) -> bool:
    """Whether the store has saved settings: from then on email can go out, the merchant
    gets the full navigation and lands on the home page (which says what is left)."""
    return session.exec(select(SmtpSettings.id).where(SmtpSettings.store_id == store.id)).first() is not None


def _state(saved: SmtpSettings | None, notice: ReconnectNotice | None, last_test: Outcome | None,
           last_send: Outcome | None) -> str:
    if saved is None:
        return NOT_SET_UP
    if notice is not None:
        return RECONNECT_NEEDED
    if not saved.tested:
        return UNTESTED
    # A test run after saving, or an email, that failed since: the saved test no longer vouches.
    recent = [o for o in (last_test, last_send) if o is not None and o.when >= as_utc(saved.saved_at)]
    newest = max(recent, key=lambda outcome: outcome.when, default=None)
    return FAILING if newest is not None and not newest.ok else TESTED


def _next_key(state: str, last_send: Outcome | None, outbox: OutboxCounts) -> str:
    by_state = {RECONNECT_NEEDED: "reconnect", NOT_SET_UP: "finish_set_up", UNTESTED: "test"}
    if state in by_state:
        return by_state[state]
    if last_send is not None and not last_send.ok:
        return "last_send_failed"
    if state == FAILING:
        return "test"
    if outbox.failed_this_week:
        return "failed_this_week"
    if outbox.held:
        return "held"
    return "send_test_email" if last_send is None else "follow_up"


def email_health(session: Session, store: Store, now: datetime | None = None) -> EmailHealth:
    """The store's connection state, latest test and send, outbox counts and next step."""
    saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store.id)).first()
    notice = reconnect_notice(session, store) if saved is not None else None
    last_test = _test_outcome(session.exec(
        select(ConnectionTest).where(ConnectionTest.store_id == store.id, ConnectionTest.status == "finished")
        .order_by(ConnectionTest.id.desc()).limit(1)).first())
    last_send = _latest_send(session, store.id)
    outbox = outbox_counts(session, store.id, now)
    state = _state(saved, notice, last_test, last_send)
    texts = health_texts()
    words = texts.states[state]
    failure = next((o for o in (last_send, last_test) if o is not None and not o.ok), None)
    text = words.text.format(account=notice.account_email if notice else "",
                             what=failure.what if failure else "", reason=failure.result if failure else "")
    return EmailHealth(state=state, title=words.title, text=text, last_test=last_test, last_send=last_send,
                       outbox=outbox, next_step=texts.next_step(_next_key(state, last_send, outbox)),
                       reconnect=notice)
