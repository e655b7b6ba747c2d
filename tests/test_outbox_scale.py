"""Scale-out on PostgreSQL: three worker processes drain 500 queued emails and
the server receives each Message-ID exactly once (``FOR UPDATE SKIP LOCKED``;
the lease is long, so no email is taken over during the test)."""
from __future__ import annotations

import signal
from collections import Counter

import pytest
from sqlmodel import Session
from test_outbox import make_store, received_ids, rows, wait_until
from test_outbox_crash import start_worker, stop_process

from wizard.models import Store
from wizard.models.outbox import SENT
from wizard.outbox import queue

from conftest import SMTP_PASSWORD, SMTP_USERNAME
from smtp_servers import start_test_server

EMAILS = 500


# Scale-out is a PostgreSQL feature (SQLite runs one worker): only that backend.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_three_workers_drain_500_emails_each_delivered_exactly_once(app, certs, tmp_path):
    log = tmp_path / "workers.log"
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0],
                           key=certs[1]) as server:
        store_ids = [make_store(app, server, slug=f"store-{n}") for n in range(3)]
        message_ids = []
        with Session(app.extensions["db_engine"], expire_on_commit=False) as session:
            stores = [session.get(Store, store_id) for store_id in store_ids]
            for n in range(EMAILS):
                email = queue.enqueue(session, store=stores[n % 3], kind="follow_up", recipient=f"visitor{n}@example.com",
                                      subject=f"Following up #{n}", body_text=f"Hello #{n}",
                                      body_html=f"<p>Hello #{n}</p>", idempotency_key=f"scale-{n}")
                message_ids.append(email.message_id)
        workers = [start_worker(app, certs, server, log, "--worker-id", f"w{n}", "--batch", "20", "--lease", "600",
                                "--poll", "0.05") for n in range(3)]
        try:
            assert wait_until(lambda: len(server.messages) >= EMAILS and all(r.status == SENT for r in rows(app)),
                              timeout=120, step=0.2), log.read_text()
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            assert [worker.wait(15) for worker in workers] == [0, 0, 0], log.read_text()
        finally:
            for worker in workers:
                stop_process(worker)
        received = received_ids(server)
    assert received == Counter({message_id: 1 for message_id in message_ids})
    final = rows(app)
    assert all(r.attempts == 1 for r in final)
    # The work was shared.
    assert len({r.claimed_by for r in final}) == 3, Counter(r.claimed_by for r in final)
