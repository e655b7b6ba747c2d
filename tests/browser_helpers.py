"""Browser test helpers: Debian's Chromium through Playwright, the app on a real
port with the local test mailbox beside it, pages watched for problems, and
the clicks every browser test shares. The fixtures are made available to every
test module by ``conftest.py``."""
from __future__ import annotations

import contextlib
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from werkzeug.serving import make_server

from wizard import create_app
from wizard.cli import start_dev_inbound, start_dev_mailbox, start_dev_signin
from wizard.devmailbox.server import find_free_port

from conftest import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TIMEOUT_MS = 10_000

SENDER_NAME = "Blue Fern Browser Support"
SENDER_EMAIL = "support@bluefern.example.com"
SMTP_USER = "mailer@bluefern.example.com"
# Distinctive, so a leak into any page is easy to spot.
SMTP_SECRET = "Br0wser-unique-SMTP-secret-9923"

try:  # Imported lazily so a missing Playwright skips instead of erroring.
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the venv ships it
    sync_playwright = None


# -- fixtures -------------------------------------------------------------------------

def chromium_path() -> str | None:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium")


@dataclass
class LiveApp:
    app: object
    base_url: str
    mailbox_port: int
    signin: object = None  # the local test sign-in server, when started

    def url(self, path: str) -> str:
        return self.base_url + path


@contextlib.contextmanager
def serve_live(tmp: Path, with_worker: bool = False, with_signin: bool = False, with_inbound: bool = False,
               **config):
    """The app on a real port with the local test mailbox (and, if asked, an outbox
    worker and the local test sign-in server, as ``serve`` runs them)."""
    instance = tmp / "instance"
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "DATABASE_URL": f"sqlite:///{instance / 'wizard.sqlite'}",
            "SECRET_KEY": "browser-test-secret",
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DEV_MAILBOX": True,
            "DEV_MAILBOX_PORT": find_free_port(),
            "SMTP_TIMEOUT": 5.0,
            "SMTP_GREETING_TIMEOUT": 2.0,
            "DEV_SIGNIN_PORT": 0,
            "INBOUND_SMTP_PORT": 0,
            **config,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    signin = start_dev_signin(app, [f"http://127.0.0.1:{server.server_port}"]) if with_signin else None
    inbound = start_dev_inbound(app) if with_inbound else None
    mailbox = start_dev_mailbox(app, token_checker=signin.store.check_access_token if signin else None)
    worker = None
    if with_worker:
        from wizard.commands.embedded_worker import start_embedded_worker

        worker = start_embedded_worker(app, poll_seconds=0.2)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    try:
        yield LiveApp(app, f"http://127.0.0.1:{server.server_port}", mailbox.port, signin)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        if worker is not None:
            worker.stop(timeout=10)
        mailbox.stop()
        if signin is not None:
            signin.stop()
        if inbound is not None:
            inbound.stop()
        app.extensions["db_engine"].dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a real port, with the local test mailbox running beside it."""
    with serve_live(tmp_path_factory.mktemp("browser")) as app:
        yield app


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if sync_playwright is None:
        skip_or_fail("Playwright is not installed")
    if executable is None:
        skip_or_fail(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
    except PlaywrightError as exc:
        playwright.stop()
        skip_or_fail(f"Chromium at {executable} did not start: {exc}")
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Reports every request htmx aborts, with its path, to the test (see Problems).
HTMX_ABORT_LISTENER = """
document.addEventListener("htmx:sendAbort", (event) => {
  const detail = event.detail || {};
  const path = (detail.pathInfo && detail.pathInfo.requestPath) || (detail.requestConfig && detail.requestConfig.path) || "?";
  window.reportHtmxAbort(String(path));
});
"""
# Live validation re-checks the form on each edit with hx-sync "closest form:replace",
# so a newer check may abort the check still in flight (timing-dependent). That is
# the design; htmx then logs the abort with console.error. Any other abort counts.
ABORTABLE_PATH = "/wizard/smtp/check"


@dataclass
class Problems:
    """Everything that went wrong in the browser: console errors (CSP violations
    show up here), uncaught exceptions, failed requests and HTTP errors."""

    items: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    watched: set[int] = field(default_factory=set)

    def watch(self, page) -> None:
        if id(page) in self.watched:
            return
        self.watched.add(id(page))
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        page.on("requestfailed", self._request_failed)
        page.on("response", lambda r: r.status >= 400 and self.items.append(f"HTTP {r.status}: {r.request.method} {r.url}"))

    def htmx_abort(self, path: str) -> None:
        self.aborted.append(path)
        if path.split("?")[0] != ABORTABLE_PATH:
            self.items.append(f"htmx aborted a request to {path}")

    def _console(self, message) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        # Chromium asks for /favicon.ico on its own; the app has none (yet). Only
        # that automatic request is forgiven, any other 404 still counts.
        if url.endswith("/favicon.ico") and "404" in message.text:
            return
        # htmx's own log line for an aborted request; which request it was is
        # checked in htmx_abort (only live checks may be aborted).
        if message.text.startswith(("htmx:sendAbort", "htmx:afterRequest")) and "/static/htmx-" in url:
            return
        self.items.append(f"console error: {message.text} @ {url}")

    def _request_failed(self, request) -> None:
        failure = request.failure or ""
        if ABORTABLE_PATH in request.url and "ERR_ABORTED" in failure:
            return
        self.items.append(f"request failed: {request.method} {request.url}: {failure}")


@pytest.fixture
def new_page(browser):
    """Pages in fresh contexts, each watched for problems; asserted clean at the end."""
    contexts = []
    problems = Problems()

    def make(**context_options):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.on("page", problems.watch)
        context.expose_function("reportHtmxAbort", problems.htmx_abort)
        context.add_init_script(HTMX_ABORT_LISTENER)
        contexts.append(context)
        page = context.new_page()
        problems.watch(page)  # no-op if the "page" event already did
        return context, page

    make.problems = problems
    yield make
    for context in contexts:
        context.close()


def shot(page, artifacts: Path, name: str) -> None:
    # caret="initial": Playwright's default caret hiding leaves an empty style=""
    # on every input; htmx's settle step then copies that attribute onto the
    # swapped-in inputs with the same id, which the CSP (no inline styles)
    # reports as a violation. That would be the test's doing, not the app's.
    page.screenshot(path=str(artifacts / name), full_page=True, caret="initial")


def url_is(live: LiveApp, path: str) -> re.Pattern:
    """The page URL is exactly ``path`` (optionally with a query string)."""
    return re.compile(re.escape(live.url(path)) + r"(\?.*)?$")


def sign_up(page, live: LiveApp, store: str, email: str) -> None:
    page.goto(live.url("/signup"))
    page.get_by_label("Store name").fill(store)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("merchant-pass-1")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(url_is(live, "/wizard/pre-chat-form"))


def complete_pre_chat_form(page) -> None:
    page.get_by_label("Show the pre-chat form to visitors").check()
    page.get_by_label("Ask for the email address (required)").check()
    page.get_by_role("button", name="Save and continue").click()


def choose_local_mailbox(page) -> None:
    page.locator("input[name=provider][value=local]").check()
    page.get_by_role("button", name="Use this provider").click()


def fill_smtp(page) -> None:
    page.get_by_label("Sender Name").fill(SENDER_NAME)
    page.get_by_label("Sender Email").fill(SENDER_EMAIL)
    page.get_by_label("Username").fill(SMTP_USER)
    page.locator("#password").fill(SMTP_SECRET)


def step(page, slug: str):
    return page.locator(f"#wizard-step[data-step='{slug}']")


# -- tests ----------------------------------------------------------------------------
