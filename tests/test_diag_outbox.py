"""The outbox and quotas that reset: the email stays queued, the timeline says
why and when it is tried again, and it is delivered once the server accepts.
A non-ASCII sender is refused with step 3's words."""
from __future__ import annotations

import html
from datetime import timedelta

from sqlmodel import Session, select
from test_diag_diagnosis import M365_QUOTA, NON_ASCII, SES_RATE
from test_inbox import configure_email, deliver  # noqa: F401
from test_outbox import drain, make_store, queue_email, received_ids, rows, wait_until

from wizard.models import SmtpSettings, utcnow
from wizard.models.outbox import FAILED, QUEUED, SENT

from helpers import conversation_row


def test_microsoft_quota_keeps_the_email_queued_for_a_day_and_the_timeline_says_why(
        app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    store_id = conversation_row(app).store_id
    starttls_server.data_reply = M365_QUOTA
    before = utcnow()
    queue_email(app, store_id, "quota-1", conversation_id=conversation_id)
    deliver(app)
    (row,) = rows(app)
    assert row.status == QUEUED and row.last_category == "temporary_failure"
    waited = row.next_attempt_at.replace(tzinfo=before.tzinfo) - before
    assert timedelta(hours=23, minutes=59) < waited < timedelta(hours=24, minutes=5)
    page = html.unescape(merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True))
    assert "Microsoft 365's sending quota for this mailbox is used up" in page
    assert "The next try is at" in page and "Queued" in page
    assert "SubmissionQuotaExceededException" in page
    # Many quota waits in a row never fail the email.
    for _ in range(8):
        with Session(app.extensions["db_engine"]) as session:
            stored = session.get(type(row), row.id)
            stored.next_attempt_at = utcnow()
            session.add(stored)
            session.commit()
        deliver(app)
    assert rows(app)[0].status == QUEUED


def test_a_rate_limited_email_is_delivered_once_the_server_accepts_again(app, starttls_server):
    store_id = make_store(app, starttls_server)
    email = queue_email(app, store_id, "ses-rate")
    starttls_server.mail_reply = SES_RATE
    drain(app)
    (row,) = rows(app)
    assert row.status == QUEUED and row.last_category == "temporary_failure"
    assert drain(app).sent == 0  # not due yet: the outbox waits for the reset instead of hammering
    starttls_server.mail_reply = None
    assert wait_until(lambda: drain(app).sent == 1 or rows(app)[0].status == SENT, timeout=10)
    assert rows(app)[0].status == SENT
    assert received_ids(starttls_server)[email.message_id] == 1


def test_the_outbox_refuses_a_non_ascii_sender_with_the_step_3_message(app, starttls_server):
    store_id = make_store(app, starttls_server)
    with Session(app.extensions["db_engine"]) as session:
        saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store_id)).one()
        saved.sender_email = NON_ASCII
        session.add(saved)
        session.commit()
    queue_email(app, store_id, "non-ascii")
    drain(app)
    (row,) = rows(app)
    assert row.status == FAILED and row.last_category == "sender_rejected"
    assert row.last_reply_text.startswith(f"{NON_ASCII} contains letters outside plain ASCII")
    assert received_ids(starttls_server) == {}
