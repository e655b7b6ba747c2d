#!/usr/bin/env python3
"""How fast does the outbox deliver, next to raw smtplib? (issue 5's benchmark)

Queues N follow-ups (default 1,000) and drains them through the outbox (one
worker, in-process, on SQLite) into an aiosmtpd sink with STARTTLS + AUTH
running in its own process, like a real mail server. In the same run the
same N messages go out with raw smtplib over one reused connection
(``send_message``, the messages built beforehand), and once more with one
connection per message. It prints the three rates and the outbox's ratio to
raw smtplib (goal: at least 0.8).

With a PostgreSQL URL (``--pg`` or ``WIZARD_TEST_DATABASE_URL``) it also
drains N emails on PostgreSQL with one in-process worker and with three
``flask --app wizard outbox-worker`` processes (timed from the moment the
emails fall due, after the processes have started), and checks that the sink
got each Message-ID exactly once.

    .venv/bin/python bench/outbox.py [--count 1000] [--pg URL] [--workers 3]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

USERNAME = "merchant@bluefern.example.com"
PASSWORD = "bench-smtp-password-4711"
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


# -- the sink: its own process, answering "count", "ids", "reset" on stdin --------------

def run_sink(cert: str, key: str) -> int:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from wizard.devmailbox.certs import server_tls_context
    from wizard.devmailbox.server import find_free_port, quiet_login_data_notice

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    quiet_login_data_notice()
    received: list[str] = []
    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            found = MESSAGE_ID.search(envelope.original_content or b"")
            with lock:
                received.append(found.group(1).decode() if found else "")
            return "250 2.0.0 Ok: queued"

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USERNAME.encode()
              and auth_data.password == PASSWORD.encode())
        return AuthResult(success=ok, handled=False if not ok else True,
                          message=None if ok else "535 5.7.8 Username and Password not accepted")

    port = find_free_port("127.0.0.1")
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, server_hostname="sink.bench.example",
                            tls_context=server_tls_context(Path(cert), Path(key)), require_starttls=True,
                            auth_required=True, auth_require_tls=True, authenticator=authenticate)
    controller.start()
    print(port, flush=True)
    for line in sys.stdin:
        command = line.strip()
        with lock:
            if command == "count":
                print(len(received), flush=True)
            elif command == "ids":
                print(json.dumps(received), flush=True)
            elif command == "reset":
                received.clear()
                print("ok", flush=True)
            else:
                break
    controller.stop()
    return 0


class Sink:
    """The sink process, seen from the benchmark."""

    def __init__(self, cert: Path, key: Path):
        self.process = subprocess.Popen([sys.executable, __file__, "--sink", str(cert), str(key)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.port = int(self.process.stdout.readline())

    def ask(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline()

    def count(self) -> int:
        return int(self.ask("count"))

    def ids(self) -> Counter:
        return Counter(json.loads(self.ask("ids")))

    def reset(self) -> None:
        self.ask("reset")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


# -- the app side ----------------------------------------------------------------------

def make_app(instance: Path, database_url: str | None, cert: Path, port: int):
    from cryptography.fernet import Fernet

    from wizard import create_app

    config = {
        "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench-secret", "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SMTP_EXTRA_CA_FILE": str(cert), "SMTP_ALLOWED_NETWORKS": "127.0.0.0/8", "SMTP_ALLOWED_PORTS": str(port),
        "DEV_MAILBOX": False,
    }
    if database_url:
        config["DATABASE_URL"] = database_url
    return create_app(config)


def queue_follow_ups(app, port: int, count: int, held: bool = False) -> list[str]:
    """A store pointing at the sink and ``count`` queued follow-ups; their Message-IDs."""
    from sqlalchemy import update
    from sqlmodel import Session

    from wizard.models import Conversation, SmtpSettings, Store, utcnow
    from wizard.models.outbox import OutboxEmail
    from wizard.outbox import queue
    from wizard.secrets import SecretBox
    from wizard.smtp.target_options import saved_identity

    box = SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])
    ids = []
    with Session(app.extensions["db_engine"], expire_on_commit=False) as session:
        store = Store(name="Blue Fern Shop", slug=f"bench-{uuid.uuid4().hex[:8]}", reply_to="help@bluefern.example.com",
                      send_limit_per_minute=0)
        session.add(store)
        session.commit()
        settings = SmtpSettings(store_id=store.id, provider="custom", host="127.0.0.1", port=port, security="starttls",
                                sender_name="Blue Fern Support", sender_email=USERNAME, username=USERNAME,
                                password_encrypted="", fingerprint="bench", tested=True)
        settings.password_encrypted, settings.password_binding = box.seal(PASSWORD, saved_identity(settings))
        session.add(settings)
        session.commit()
        conversations = []
        for _ in range(max(1, count // 4)):
            conversation = Conversation(store_id=store.id, token=uuid.uuid4().hex)
            session.add(conversation)
            conversations.append(conversation)
        session.commit()
        for n in range(count):
            email = queue.enqueue(
                session, store=store, kind="follow_up", recipient=f"visitor{n}@example.com",
                subject=f"Following up on your visit to Blue Fern Shop (#{n})",
                body_text=f"Hello again,\n\nthanks for chatting with us earlier. Here is the link you asked for: "
                          f"https://bluefern.example.com/p/{n}\n\n— Blue Fern Support\n" * 3,
                body_html=f"<p>Hello again,</p><p>thanks for chatting with us earlier. Here is the "
                          f"<a href=\"https://bluefern.example.com/p/{n}\">link you asked for</a>.</p>"
                          f"<p>— Blue Fern Support</p>" * 3,
                idempotency_key=f"bench-{store.id}-{n}", conversation=conversations[n % len(conversations)],
            )
            ids.append(email.message_id)
        if held:
            # Not due until release_all(): the timing starts when they all are.
            session.execute(update(OutboxEmail).where(OutboxEmail.store_id == store.id)
                            .values(next_attempt_at=utcnow() + timedelta(days=1)))
            session.commit()
    return ids


def requeue_all(app) -> None:
    """Every email queued again, due now (the next round sends the same ones)."""
    from sqlalchemy import update
    from sqlmodel import Session

    from wizard.models import utcnow
    from wizard.models.outbox import QUEUED, OutboxEmail

    with Session(app.extensions["db_engine"]) as session:
        session.execute(update(OutboxEmail).values(status=QUEUED, attempts=0, next_attempt_at=utcnow(),
                                                   sent_at=None, claimed_by=None))
        session.commit()


def release_all(app) -> None:
    from sqlalchemy import update
    from sqlmodel import Session

    from wizard.models import utcnow
    from wizard.models.outbox import QUEUED, OutboxEmail

    with Session(app.extensions["db_engine"]) as session:
        session.execute(update(OutboxEmail).where(OutboxEmail.status == QUEUED).values(next_attempt_at=utcnow()))
        session.commit()


def drain_in_process(app) -> tuple[float, object]:
    from wizard.outbox.worker import run_worker
    from wizard.secrets import SecretBox
    from wizard.smtp.target_options import target_options_from_config

    options = target_options_from_config(app.config, False)
    box = SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])
    began = time.perf_counter()
    stats = run_worker(app.extensions["db_engine"], box, lambda: options, worker_id="bench", once=True)
    return time.perf_counter() - began, stats


def stored_emails(app):
    """The queued emails' rows, loaded before timing the raw smtplib runs."""
    from sqlmodel import Session, select

    from wizard.models.outbox import OutboxEmail

    with Session(app.extensions["db_engine"], expire_on_commit=False) as session:
        return list(session.exec(select(OutboxEmail).order_by(OutboxEmail.id)).all())


def raw_smtplib(emails, port: int, cert: Path, reuse: bool, prebuilt: bool = False) -> float:
    """Send the emails directly: build each message (as any sender must) and
    ``send_message`` it; ``prebuilt`` builds them all before the clock starts."""
    from wizard.outbox.messages import build_message
    from wizard.smtp.tls import tls_context

    context = tls_context(str(cert))
    messages = [build_message(email) for email in emails] if prebuilt else None

    def connect():
        client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.localdomain", timeout=10)
        client.starttls(context=context)
        client.ehlo()
        client.login(USERNAME, PASSWORD)
        return client

    began = time.perf_counter()
    client = connect() if reuse else None
    for index, email in enumerate(emails):
        message = messages[index] if prebuilt else build_message(email)
        if not reuse:
            client = connect()
        client.send_message(message)
        if not reuse:
            client.quit()
    if reuse:
        client.quit()
    return time.perf_counter() - began


def wait_for_sink(sink: Sink, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while sink.count() < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the sink got {sink.count()} of {count} messages")
        time.sleep(0.02)


def check_exactly_once(sink: Sink, ids: list[str]) -> str:
    received = sink.ids()
    missing = set(ids) - set(received)
    repeated = sum(1 for value in received.values() if value > 1)
    if missing:
        raise SystemExit(f"{len(missing)} Message-IDs never arrived")
    return "each Message-ID exactly once" if not repeated else f"{repeated} Message-IDs more than once"


def pg_schema(url: str):
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"

    def drop():
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return f"{url}{separator}options=-csearch_path%3D{schema}", drop


def worker_processes(app, cert: Path, port: int, workers: int, log: Path) -> list[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(DATABASE_URL=app.config["DATABASE_URL"], WIZARD_INSTANCE_PATH=app.instance_path,
               WIZARD_ENCRYPTION_KEY=app.config["ENCRYPTION_KEYS"], SECRET_KEY=app.config["SECRET_KEY"],
               WIZARD_SMTP_CA_FILE=str(cert), WIZARD_SMTP_ALLOWED_NETWORKS="127.0.0.0/8",
               WIZARD_SMTP_ALLOWED_PORTS=str(port), PYTHONPATH=str(ROOT / "tests"))
    target = "wizard" if "outbox-worker" in app.cli.commands else "test_outbox_crash:app_with_worker_command()"
    return [subprocess.Popen([sys.executable, "-m", "flask", "--app", target, "outbox-worker", "--worker-id",
                              f"bench-{n}", "--batch", "50", "--lease", "300", "--poll", "0.02"],
                             cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
            for n in range(workers)]


def all_sent(app) -> bool:
    from sqlmodel import Session, func, select

    from wizard.models.outbox import SENT, OutboxEmail

    with Session(app.extensions["db_engine"]) as session:
        return session.exec(select(func.count(OutboxEmail.id)).where(OutboxEmail.status != SENT)).one() == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--pg", default=os.environ.get("WIZARD_TEST_DATABASE_URL", ""),
                        help="PostgreSQL URL for the scale-out run (default: $WIZARD_TEST_DATABASE_URL)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the SQLite comparison")
    parser.add_argument("--sink", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        return run_sink(*args.sink)

    from wizard.devmailbox.certs import ensure_self_signed_cert

    count = args.count
    scratch = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    cert, key = ensure_self_signed_cert(scratch, "sink")
    sink = Sink(cert, key)
    rows = []
    try:
        app = make_app(scratch / "sqlite", None, cert, sink.port)
        began = time.perf_counter()
        ids = queue_follow_ups(app, sink.port, count)
        rows.append(("enqueue (SQLite, one commit each)", count / (time.perf_counter() - began), ""))

        emails = stored_emails(app)
        # Rounds alternate the variants, so a machine busy with something
        # else slows them alike; each rate is the median of its rounds.
        rates: dict[str, list[float]] = {"outbox": [], "raw": [], "prebuilt": [], "single": []}
        checks = set()
        for round_number in range(args.rounds):
            if round_number:
                requeue_all(app)
            sink.reset()
            elapsed, stats = drain_in_process(app)
            wait_for_sink(sink, count)
            rates["outbox"].append(count / elapsed)
            checks.add(f"{stats.connections_opened} connection(s); {check_exactly_once(sink, ids)}")
            for name, options in (("raw", {}), ("prebuilt", {"prebuilt": True})):
                sink.reset()
                rates[name].append(count / raw_smtplib(emails, sink.port, cert, reuse=True, **options))
                wait_for_sink(sink, count)
        sink.reset()
        rates["single"].append(count / raw_smtplib(emails, sink.port, cert, reuse=False))
        wait_for_sink(sink, count)
        outbox_rate, raw_rate, prebuilt_rate = (median(rates[name]) for name in ("outbox", "raw", "prebuilt"))
        rows.append(("outbox, 1 worker, SQLite", outbox_rate, "; ".join(sorted(checks))))
        rows.append(("raw smtplib, one reused connection", raw_rate, "building each message, as a sender must"))
        rows.append(("raw smtplib, one reused connection, prebuilt", prebuilt_rate,
                     "messages built before the clock starts"))
        rows.append(("raw smtplib, one connection per message", rates["single"][0], "building each message"))
        app.extensions["db_engine"].dispose()

        if args.pg:
            url, drop = pg_schema(args.pg)
            try:
                pg_app = make_app(scratch / "pg", url, cert, sink.port)
                sink.reset()
                pg_ids = queue_follow_ups(pg_app, sink.port, count)
                elapsed, stats = drain_in_process(pg_app)
                wait_for_sink(sink, count)
                rows.append(("outbox, 1 worker, PostgreSQL", count / elapsed, check_exactly_once(sink, pg_ids)))

                sink.reset()
                log = scratch / "workers.log"
                # Queued but held back until every process is up and polling.
                pg_ids = queue_follow_ups(pg_app, sink.port, count, held=True)
                processes = worker_processes(pg_app, cert, sink.port, args.workers, log)
                try:
                    while log.read_text().count("batch 50") < args.workers:
                        if any(process.poll() is not None for process in processes):
                            raise SystemExit(f"a worker process ended:\n{log.read_text()}")
                        time.sleep(0.05)
                    time.sleep(0.5)  # past start-up: imports done, polling
                    began = time.perf_counter()
                    release_all(pg_app)
                    wait_for_sink(sink, count)
                    while not all_sent(pg_app):
                        time.sleep(0.01)
                    elapsed = time.perf_counter() - began
                finally:
                    for process in processes:
                        process.terminate()
                    for process in processes:
                        process.wait(15)
                rows.append((f"outbox, {args.workers} worker processes, PostgreSQL", count / elapsed,
                             check_exactly_once(sink, pg_ids)))
                pg_app.extensions["db_engine"].dispose()
            finally:
                drop()
    finally:
        sink.close()
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"{count} follow-ups, aiosmtpd sink with STARTTLS + AUTH in its own process, {os.cpu_count()} CPUs, "
          f"median of {args.rounds} alternating rounds (load average {os.getloadavg()[0]:.1f})")
    for name, rate, note in rows:
        print(f"  {name:<45} {rate:8.0f} messages/s  {note}")
    print(f"  ratio outbox / raw smtplib (one connection): {outbox_rate / raw_rate:.2f}  (goal >= 0.8); "
          f"against prebuilt messages: {outbox_rate / prebuilt_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
