#!/usr/bin/env python3
"""How many visitor tabs, how big an inbox, how fast a live check? (issue 14's benchmark)

Starts the production server as the README documents it (gunicorn, sync
workers, ``wizard:create_app()``, production mode) on PostgreSQL (``--pg URL``
or ``WIZARD_TEST_DATABASE_URL``; ``--sqlite`` for the embedded default), then
creates through the app a store with ``--conversations`` conversations (5,000)
and a store whose visitors poll (one conversation per tab, started with the
chat's own POST). In the same run it measures:

- the baseline: a static file and ``/signin``, closed loop over 16 connections;
- visitor polling, open loop the way htmx 2 polls: every tab asks every 2 s
  with the newest id it has (a tick is dropped while its request is still
  out, like htmx's default ``hx-sync``), at each ``--tabs`` count;
- the inbox list (first page, the merchant's cookie) while ``--inbox-tabs`` tabs poll;
- the live check of step 3 (``/wizard/smtp/check``), closed loop over 16 connections.

It prints each figure and its ratio to the static-file baseline. No figure is
asserted: the machine is shared, so read them next to the baseline.

    .venv/bin/python bench/web.py [--pg URL | --sqlite] [--tabs 300,1000,2000] [--seconds 20]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

USER_AGENT = "heichat-bench/1"
CSRF_IN_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')
# What htmx polls: hx-get, plus the hx-vals it sends with the GET.
POLL_URL = re.compile(r'hx-get="(/s/[^"]+/chat/messages\?after=\d+)"\s+hx-vals=\'\{"emails": "([0-9]+-[0-9]+)"\}\'')
TIMEOUT = 10.0


# -- the server ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(instance: Path, database_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {**os.environ, "DATABASE_URL": database_url, "WIZARD_INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench-secret-key-" + "x" * 32, "WIZARD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "WIZARD_PUBLIC_URL": "https://chat.bench.example"}


def start_gunicorn(environment: dict[str, str], port: int, workers: int, worker_class: str) -> subprocess.Popen:
    """The documented production command (README, "Production server")."""
    command = [str(Path(sys.executable).parent / "gunicorn"), "-w", str(workers), "-k", worker_class,
               "-b", f"127.0.0.1:{port}", "--backlog", "4096", "--log-level", "warning", "wizard:create_app()"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


# -- the data, through the app -------------------------------------------------------

@dataclass
class Setup:
    poll_requests: list[tuple[str, str]] = field(default_factory=list)  # (path, cookie) per tab
    merchant_cookie: str = ""
    checker_cookie: str = ""
    checker_token: str = ""


def cookie_header(client) -> str:
    return "; ".join(f"{cookie.key}={cookie.value}" for cookie in client._cookies.values())


def build_data(environment: dict[str, str], tabs: int, conversations_count: int) -> Setup:
    """A polling store with ``tabs`` visitors (the chat's own POST), a store with
    ``conversations_count`` conversations (the chat module), a merchant at step 3."""
    for key in ("DATABASE_URL", "WIZARD_INSTANCE_PATH", "SECRET_KEY", "WIZARD_ENCRYPTION_KEY", "WIZARD_PUBLIC_URL"):
        os.environ[key] = environment[key]
    from sqlmodel import Session, select

    from wizard import create_app
    from wizard.chat import conversations
    from wizard.config import DEFAULTS
    from wizard.models import Store

    # Thousands of conversations from one address in a minute: the bench's own limits, in process only.
    limits = {**DEFAULTS["RATE_LIMITS"], "chat_start": "1000000 per minute", "chat_start_store": "1000000 per minute",
              "sign_up": "1000 per minute"}
    app = create_app({"RATE_LIMITS": limits})
    base = {"base_url": "https://chat.bench.example", "environ_base": {"HTTP_USER_AGENT": USER_AGENT,
                                                                "HTTP_REFERER": "https://chat.bench.example/"}}
    setup = Setup()

    def signed_up(email: str, store: str):
        client = app.test_client()
        token = CSRF_IN_PAGE.search(client.get("/signup", **base).get_data(as_text=True)).group(1)
        answer = client.post("/signup", data={"store_name": store, "email": email, "password": "Quiet-Harbour-Lantern-4711",
                                               "csrf_token": token}, **base)
        assert answer.status_code == 302, answer.status_code
        page = client.get("/wizard/pre-chat-form", **base).get_data(as_text=True)
        token = CSRF_IN_PAGE.search(page).group(1)
        client.post("/wizard/pre-chat-form", data={"enabled": "y", "name_mode": "optional", "intro": "Hi",
                                                    "csrf_token": token}, **base)
        return client, token

    merchant, _token = signed_up("owner@inbox.bench.example", "Inbox Bench Shop")
    setup.merchant_cookie = cookie_header(merchant)
    started = time.monotonic()
    with Session(app.extensions["db_engine"], expire_on_commit=False) as db:
        store = db.exec(select(Store).where(Store.slug == "inbox-bench-shop")).one()
        for number in range(conversations_count):
            entry = conversations.PreChat(f"Visitor {number}", f"visitor{number}@bench.example" if number % 3 else "",
                                          f"Question number {number}: do you ship to Oslo?")
            conversation = conversations.start_conversation(db, store, entry)
            if number % 4 == 0:
                conversations.add_message(db, conversation, "merchant", "Yes, in three days.")
    print(f"  {conversations_count:,} conversations in {time.monotonic() - started:.0f} s", flush=True)

    polling_owner, _ = signed_up("owner@poll.bench.example", "Poll Bench Shop")
    started = time.monotonic()
    for number in range(tabs):
        visitor = app.test_client()
        token = CSRF_IN_PAGE.search(visitor.get("/s/poll-bench-shop/chat", **base).get_data(as_text=True)).group(1)
        answer = visitor.post("/s/poll-bench-shop/chat", data={"name": f"Tab {number}", "email": f"tab{number}@bench.example",
                                                              "message": "Hello?", "csrf_token": token}, **base)
        assert answer.status_code == 302, answer.status_code
        page = visitor.get("/s/poll-bench-shop/chat", **base).get_data(as_text=True)
        polled = POLL_URL.search(page)
        setup.poll_requests.append((f"{polled.group(1)}&emails={polled.group(2)}", cookie_header(visitor)))
    print(f"  {tabs:,} visitor tabs in {time.monotonic() - started:.0f} s", flush=True)

    checker, _ = signed_up("owner@check.bench.example", "Check Bench Shop")
    page = checker.get("/wizard/provider", **base).get_data(as_text=True)
    token = CSRF_IN_PAGE.search(page).group(1)
    checker.post("/wizard/provider", data={"provider": "gmail", "csrf_token": token}, **base)
    setup.checker_cookie, setup.checker_token = cookie_header(checker), token
    app.extensions["db_engine"].dispose()
    return setup


# -- the load ------------------------------------------------------------------------

async def request(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    """One HTTP/1.1 request on a fresh connection (gunicorn's sync workers close each one); the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", "Host: chat.bench.example", f"User-Agent: {USER_AGENT}",
                 "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        await reader.read()
        return status
    finally:
        writer.close()


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


@dataclass
class Figures:
    offered: int = 0
    answered: int = 0
    errors: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)

    def line(self, seconds: float) -> str:
        share = self.answered / self.offered * 100 if self.offered else 0
        return (f"{self.offered / seconds:7.1f} offered/s  {self.answered / seconds:7.1f} answered/s  "
                f"answered {share:5.1f} %  p50 {p95_at(self.latencies, 0.5):7.1f} ms  "
                f"p95 {p95(self.latencies):7.1f} ms  errors {self.errors}  dropped {self.dropped}")


def p95_at(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def closed_loop(port: int, connections: int, seconds: float, make) -> tuple[float, Figures]:
    """``connections`` clients asking back to back for ``seconds``: requests per second and figures."""
    figures = Figures()
    stop = time.monotonic() + seconds

    async def client():
        while time.monotonic() < stop:
            method, path, headers, body = make()
            started = time.monotonic()
            figures.offered += 1
            try:
                status = await asyncio.wait_for(request(port, method, path, headers, body), TIMEOUT)
            except (TimeoutError, OSError, IndexError, ValueError):
                figures.errors += 1
                continue
            if status < 400:
                figures.answered += 1
                figures.latencies.append((time.monotonic() - started) * 1000)
            else:
                figures.errors += 1

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    return figures.answered / (time.monotonic() - began), figures


async def poll_tabs(port: int, tabs: list[tuple[str, str]], seconds: float, every: float = 2.0,
                    warm_up: float = 4.0) -> Figures:
    """Open loop: each tab ticks every ``every`` seconds from a random start; a tick whose
    previous request is still out is dropped (and counted as offered, not answered). The
    first ``warm_up`` seconds run but are not counted: every tab's first poll of a phase
    is due to write presence, a burst real tabs (opened at different moments) do not make."""
    figures = Figures()
    counted_from = time.monotonic() + warm_up
    stop = counted_from + seconds

    async def tab(path: str, cookie: str):
        await asyncio.sleep(random.uniform(0, every))
        pending: asyncio.Task | None = None
        next_tick = time.monotonic()
        while next_tick < stop:
            counted = next_tick >= counted_from
            figures.offered += counted
            if pending is not None and not pending.done():
                figures.dropped += counted
            else:
                pending = asyncio.ensure_future(one_poll(path, cookie, counted))
            next_tick += every
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        if pending is not None:
            await pending

    async def one_poll(path: str, cookie: str, counted: bool):
        started = time.monotonic()
        try:
            status = await asyncio.wait_for(request(port, "GET", path, {"Cookie": cookie, "HX-Request": "true"}), TIMEOUT)
        except (TimeoutError, OSError, IndexError, ValueError):
            figures.errors += counted
            return
        if not counted:
            return
        if status == 204:
            figures.answered += 1
            figures.latencies.append((time.monotonic() - started) * 1000)
        else:
            figures.errors += 1

    await asyncio.gather(*(tab(path, cookie) for path, cookie in tabs))
    return figures


async def run(port: int, setup: Setup, tab_counts: list[int], inbox_tabs: int, seconds: float) -> None:
    static = lambda: ("GET", "/static/app.css", {}, b"")  # noqa: E731
    # Warm up: the port answers as soon as gunicorn's master listens, before the workers have built the app.
    await closed_loop(port, 4, 3, static)
    await closed_loop(port, 4, 2, lambda: ("GET", "/s/poll-bench-shop/chat", {}, b""))
    static_rate, figures = await closed_loop(port, 16, 5, static)
    print(f"static file (16 connections):  {static_rate:7.1f} req/s  p95 {p95(figures.latencies):.1f} ms", flush=True)
    signin_rate, figures = await closed_loop(port, 16, 5, lambda: ("GET", "/signin", {}, b""))
    print(f"/signin (16 connections):      {signin_rate:7.1f} req/s  p95 {p95(figures.latencies):.1f} ms"
          f"  ratio {signin_rate / static_rate:.2f}", flush=True)

    for count in tab_counts:
        figures = await poll_tabs(port, setup.poll_requests[:count], seconds)
        answered = figures.answered / seconds
        print(f"visitor poll, {count:>5,} tabs:    {figures.line(seconds)}  ratio {answered / static_rate:.2f}", flush=True)

    inbox_headers = {"Cookie": setup.merchant_cookie}
    inbox = lambda: ("GET", "/inbox", inbox_headers, b"")  # noqa: E731
    inbox_rate, figures = await closed_loop(port, 1, 5, inbox)
    print(f"inbox list alone (1 client):   {inbox_rate:7.1f} req/s  p95 {p95(figures.latencies):.1f} ms"
          f"  errors {figures.errors}  ratio {inbox_rate / static_rate:.2f}", flush=True)
    polling = asyncio.ensure_future(poll_tabs(port, setup.poll_requests[:inbox_tabs], seconds))
    await asyncio.sleep(5)  # past the tabs' warm-up
    inbox_rate, figures = await closed_loop(port, 1, seconds - 2, inbox)
    tabs = await polling
    print(f"inbox list, {inbox_tabs} tabs polling:  {inbox_rate:7.1f} req/s  p95 {p95(figures.latencies):.1f} ms"
          f"  errors {figures.errors}; the tabs: {tabs.line(seconds)}", flush=True)

    form = (b"host=smtp.gmail.com&port=587&security=starttls&sender_name=Bench&sender_email=owner%40check.bench.example"
            b"&username=owner%40check.bench.example&password=")
    check_headers = {"Cookie": setup.checker_cookie, "X-CSRFToken": setup.checker_token, "HX-Request": "true",
                     "HX-Trigger-Name": "host", "Content-Type": "application/x-www-form-urlencoded"}
    check_rate, figures = await closed_loop(port, 16, 10, lambda: ("POST", "/wizard/smtp/check", check_headers, form))
    print(f"live check (16 connections):   {check_rate:7.1f} checks/s  p95 {p95(figures.latencies):.1f} ms"
          f"  errors {figures.errors}  ratio {check_rate / static_rate:.2f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default=os.environ.get("WIZARD_TEST_DATABASE_URL", ""))
    parser.add_argument("--sqlite", action="store_true", help="the embedded SQLite default instead of PostgreSQL")
    parser.add_argument("--tabs", default="300,1000,2000")
    parser.add_argument("--inbox-tabs", type=int, default=300)
    parser.add_argument("--conversations", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync")
    options = parser.parse_args()
    tab_counts = [int(count) for count in options.tabs.split(",") if count]
    instance = Path(tempfile.mkdtemp(prefix="bench-web-"))
    if options.sqlite:
        database_url = f"sqlite:///{instance / 'wizard.sqlite'}"
    elif options.pg:
        database_url = fresh_pg_database(options.pg)
    else:
        raise SystemExit("Give --pg URL (or WIZARD_TEST_DATABASE_URL; scripts/start-test-postgres.sh), or --sqlite")
    environment = server_environment(instance, database_url)
    print(f"database: {database_url.split('@')[-1] if not options.sqlite else 'SQLite'}; "
          f"gunicorn -w {options.workers} -k {options.worker_class}; {os.cpu_count()} CPUs", flush=True)
    print("creating the data through the app…", flush=True)
    setup = build_data(environment, max(tab_counts + [options.inbox_tabs]), options.conversations)
    port = free_port()
    server = start_gunicorn(environment, port, options.workers, options.worker_class)
    try:
        asyncio.run(run(port, setup, tab_counts, options.inbox_tabs, options.seconds))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return 0


def fresh_pg_database(url: str) -> str:
    """A new database on the server of ``url`` (the bench never touches an existing one)."""
    import uuid

    import psycopg

    name = f"bench_web_{uuid.uuid4().hex[:10]}"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


if __name__ == "__main__":
    sys.exit(main())
