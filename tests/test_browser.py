"""The wizard in a real browser: Debian's Chromium driven by Playwright.

A live werkzeug server runs the app with the local test mailbox, and the
merchant walks all five steps like a person would: htmx swaps, pushed URLs,
live field hints and a real email that lands in the mailbox. A second test
repeats the first steps with JavaScript off to prove the plain-form path gives
the same answers.

Screenshots of every step go to ``tests/artifacts/`` (git-ignored).
"""
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

from conftest import skip_or_fail
from wizard import create_app
from wizard.cli import start_dev_mailbox
from wizard.devmailbox.server import find_free_port
from wizard.devmailbox.store import list_messages

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

    def url(self, path: str) -> str:
        return self.base_url + path


@contextlib.contextmanager
def serve_live(tmp: Path, with_worker: bool = False):
    """The app on a real port with the local test mailbox (and, if asked, an outbox worker)."""
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
        }
    )
    mailbox = start_dev_mailbox(app)
    worker = None
    if with_worker:
        from wizard.commands.embedded_worker import start_embedded_worker

        worker = start_embedded_worker(app, poll_seconds=0.2)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    try:
        yield LiveApp(app, f"http://127.0.0.1:{server.server_port}", mailbox.port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        if worker is not None:
            worker.stop(timeout=10)
        mailbox.stop()
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

def test_whole_wizard_in_the_browser(live, new_page, artifacts):
    context, page = new_page()
    email = "owner@bluefern-browser.example.com"
    after_password: list[str] = []  # page HTML captured after the password was typed

    # 1. Sign up.
    page.goto(live.url("/signup"))
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    shot(page, artifacts, "01-signup.png")
    sign_up(page, live, "Blue Fern Browser Shop", email)
    expect(step(page, "pre-chat-form")).to_be_visible()
    expect(page.locator("li.progress-step.is-done")).to_have_count(0)
    shot(page, artifacts, "02-pre-chat-form.png")

    # Step 1: the pre-chat form, saved through htmx; HX-Location pushes /wizard/provider.
    complete_pre_chat_form(page)
    expect(page).to_have_url(url_is(live, "/wizard/provider"))
    expect(step(page, "provider")).to_be_visible()
    expect(page.locator("li.progress-step.is-done")).to_have_count(1)
    expect(page.locator("li.progress-step").first).to_have_class(re.compile(r"\bis-done\b"))
    expect(page.locator("li.progress-step a[aria-current=step]")).to_contain_text("Provider")
    shot(page, artifacts, "03-provider.png")

    # Step 2: the local test mailbox card.
    choose_local_mailbox(page)
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(step(page, "smtp")).to_be_visible()
    expect(page.get_by_label("SMTP Host")).to_have_value("127.0.0.1")
    expect(page.get_by_label("Port", exact=True)).to_have_value(str(live.mailbox_port))
    expect(page.get_by_label("Security Protocol")).to_have_value("starttls")
    expect(page.locator("li.progress-step.is-done")).to_have_count(2)
    shot(page, artifacts, "04-smtp.png")

    # Step 3: fill in, then watch the live hint for port 465 with STARTTLS.
    fill_smtp(page)
    after_password.append(page.content())
    port = page.get_by_label("Port", exact=True)
    mismatch = page.locator("#feedback-port [data-code=port_security_mismatch]")
    port.fill("465")
    expect(mismatch).to_be_visible()
    expect(mismatch).to_contain_text("465")
    # Typed, not submitted: still step 3 at the same URL.
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    after_password.append(page.content())
    shot(page, artifacts, "05-smtp-port-hint.png")
    port.fill(str(live.mailbox_port))
    expect(mismatch).to_have_count(0)
    expect(page.locator("#wizard-step [data-code][class*=msg-error]")).to_have_count(0)
    after_password.append(page.content())
    page.get_by_role("button", name="Save draft and continue to test").click()
    expect(page).to_have_url(url_is(live, "/wizard/test"))
    expect(step(page, "test")).to_be_visible()
    expect(page.locator(".card .lead")).to_contain_text(f"port {live.mailbox_port}")
    after_password.append(page.content())
    shot(page, artifacts, "06-test.png")

    # Step 4: test the connection, then save.
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#result[data-category=ok]")
    expect(result).to_be_visible()
    expect(result).to_contain_text("Connection works")
    stages = result.locator("ol.timeline > li")
    assert stages.count() >= 3, result.inner_html()
    expect(result.locator("ol.timeline > li.fail")).to_have_count(0)
    after_password.append(page.content())
    shot(page, artifacts, "07-test-passed.png")
    page.locator("#save-button").click()
    expect(page).to_have_url(url_is(live, "/wizard/send"))
    expect(step(page, "send")).to_be_visible()
    expect(page.locator("li.progress-step.is-done")).to_have_count(4)
    after_password.append(page.content())
    shot(page, artifacts, "08-send.png")

    # Step 5: a real test email to the sign-up address.
    expect(page.get_by_label("Send the test email to")).to_have_value(email)
    page.locator("#send-button").click()
    expect(page).to_have_url(re.compile(re.escape(live.url("/wizard/send?sent=")) + r"\d+$"))
    sent = page.locator("#result[data-category=ok]")
    expect(sent).to_be_visible()
    expect(sent).to_contain_text(f"Sent — the server accepted the message for {email}")
    expect(page.locator("code.queue-id")).to_have_text(re.compile(r"\S+"))
    after_password.append(page.content())
    shot(page, artifacts, "09-sent.png")

    [message] = list_messages(live.app.config["DEV_MAILBOX_DIR"])
    assert message.envelope_to == [email]
    assert SENDER_NAME in (message.from_header or "")
    assert SENDER_EMAIL in (message.from_header or "")
    assert message.subject

    # The local test mailbox, opened from the wizard's own link (a new tab).
    with context.expect_page() as opened:
        page.get_by_role("link", name="Open the local test mailbox").click()
    inbox = opened.value
    inbox.wait_for_load_state()
    expect(inbox).to_have_url(url_is(live, "/dev/mailbox"))
    row = inbox.locator("table.mailbox tbody tr", has_text=message.subject)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(email)
    row.get_by_role("link", name=message.subject).click()
    expect(inbox).to_have_url(url_is(live, f"/dev/mailbox/{message.key}"))
    expect(inbox.get_by_role("heading", level=1)).to_have_text(message.subject)
    expect(inbox.locator("dd.from-header")).to_contain_text(SENDER_NAME)
    after_password.append(inbox.content())
    shot(inbox, artifacts, "10-mailbox-message.png")
    inbox.close()

    # The checklist: all three boxes, saved as a plain form post.
    page.get_by_label("It arrived").check()
    page.get_by_label("The sender name looks right").check()
    page.get_by_label("It was in the inbox, not in spam").check()
    page.get_by_role("button", name="Save checklist").click()
    expect(page).to_have_url(url_is(live, "/wizard/done"))
    expect(step(page, "done")).to_be_visible()
    expect(page.locator("li.progress-step")).to_have_count(5)
    expect(page.locator("li.progress-step.is-done")).to_have_count(5)
    expect(page.locator(".badge.ok")).to_have_text("tested")
    expect(page.locator(".badge.warn")).to_have_count(0)
    expect(page.locator("dl.summary")).to_contain_text(f"{SENDER_NAME} <{SENDER_EMAIL}>")
    expect(page.locator("dl.summary")).to_contain_text("arrived")
    after_password.append(page.content())
    shot(page, artifacts, "11-done.png")

    # The SMTP password never came back in any page after it was typed.
    assert len(after_password) == 9
    for html in after_password:
        assert SMTP_SECRET not in html
    assert new_page.problems.items == [], "\n".join(new_page.problems.items)


def test_without_javascript_the_port_hint_matches(live, new_page, artifacts):
    """No JS: full-page posts only, and step 3 shows the same port/security message."""
    _context, page = new_page(java_script_enabled=False)
    sign_up(page, live, "Blue Fern No-Script", "noscript@bluefern-browser.example.com")

    complete_pre_chat_form(page)
    expect(page).to_have_url(url_is(live, "/wizard/provider"))
    expect(page.locator("li.progress-step.is-done")).to_have_count(1)

    choose_local_mailbox(page)
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(page.get_by_label("SMTP Host")).to_have_value("127.0.0.1")

    fill_smtp(page)
    page.get_by_label("Port", exact=True).fill("465")
    expect(page.get_by_label("Security Protocol")).to_have_value("starttls")
    page.get_by_role("button", name="Save draft and continue to test").click()
    page.wait_for_load_state()
    # The form came back (no move to step 4), with the message beside the port field.
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(step(page, "smtp")).to_be_visible()
    mismatch = page.locator("#field-port #feedback-port [data-code=port_security_mismatch]")
    expect(mismatch).to_be_visible()
    expect(mismatch).to_contain_text("465")
    expect(page.locator("#field-port")).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.get_by_label("Port", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Port", exact=True)).to_have_value("465")
    assert SMTP_SECRET not in page.content()
    shot(page, artifacts, "12-nojs-smtp-port-hint.png")
    assert new_page.problems.items == [], "\n".join(new_page.problems.items)
