"""Store isolation (issue 4, point 3): a member of store A never sees or touches store B's data.

Store B produces data through the wizard and the pages around it (pre-chat
form, provider, an SMTP draft with distinctive values, connection tests, saved
settings, a test email, a visitor contact and conversation, and — where the
routes exist — an inbox reply, a follow-up email and a share link). Then every
rule of ``app.url_map`` is requested as A with B's ids and values in its path
arguments (so a new route is covered automatically; one the test cannot fill
fails loudly), and every store-scoped page without arguments must show A's
data only. No response to A may contain any of B's distinctive strings.
"""
from __future__ import annotations

import contextlib
import itertools
import re
import secrets
import socket
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
from sqlalchemy import select
from sqlmodel import Session, SQLModel
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, PathConverter, RequestRedirect, UnicodeConverter

from conftest import SMTP_PASSWORD, SMTP_USERNAME, Merchant, run_connection_test, sign_up
from dns_server import DnsTestServer
from helpers import choose_other, enable_prechat

ROOT = Path(__file__).resolve().parent.parent

B_STORE = "Bravo Secret Store"
B_OWNER = "owner@bravo-secret.example"
B_SENDER_NAME = "Bravo Secret Sender"
B_SENDER_EMAIL = "bravo-secret-sender@bravo-secret.example"
B_HOST = "smtp.bravo-secret-host.example"
B_USERNAME = "bravo-secret-user@bravo-secret.example"
B_RECIPIENT = "bravo-secret-recipient@bravo-secret.example"
B_VISITOR = "Bravo Secret Visitor"
B_CONTACT = "bravo-secret-visitor@bravo-secret.example"
B_MESSAGE = "Bravo secret visitor message"
B_REPLY = "Bravo secret merchant reply"
B_FOLLOW_UP = "Bravo secret follow-up"
B_NOTE = "Bravo secret note from support"
# What no response to A may contain.
B_SECRETS = [B_STORE, B_OWNER, B_SENDER_NAME, B_SENDER_EMAIL, B_HOST, B_USERNAME, B_RECIPIENT, B_VISITOR,
             B_CONTACT, B_MESSAGE, B_REPLY, B_FOLLOW_UP, B_NOTE]

A_STORE = "Alpha Corner Shop"
A_SENDER_NAME = "Alpha Sender Name"
A_CONTACT = "alpha-visitor@alpha.example"

# Rules this test does not request as A, and why (anything else must be filled and requested).
NOT_REQUESTED = {
    "static": "static files",
    "auth.sign_up": "signing up makes a new account, not A",
    "auth.sign_in": "signing in changes who is signed in",
    "auth.sign_out": "signing out changes who is signed in",
    "devmailbox.inbox": "the development mailbox is not a store's (debug only)",
    "devmailbox.message": "the development mailbox is not a store's (debug only)",
}
# Public pages of a store, by URL: anyone may open them with B's slug. They may show B's public face (its
# name), never B's private data. A's own slug is requested too.
PUBLIC_PER_STORE = ("visitor.",)
# Capability URLs: the signed token itself is the authorisation (RFC 8058 one-click unsubscribe), so B's
# genuine token opens it for anyone holding it — and may show the store and the address it names, nothing
# else. Altered tokens and tokens signed for anything else must be refused.
CAPABILITY = {"unsubscribe.": [B_STORE, B_CONTACT]}
REFUSED = {400, 403, 404, 405}


# -- helpers --------------------------------------------------------------------------------

class Forms(HTMLParser):
    """The forms of a page: action and fields (inputs, textareas, selected options)."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._textarea = None
        self._select = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "fields": {}})
        elif not self.forms:
            return
        elif tag == "input" and attrs.get("name") and attrs.get("type") not in ("submit", "button", "checkbox"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""
        elif tag == "textarea" and attrs.get("name"):
            self._textarea = attrs["name"]
            self.forms[-1]["fields"][self._textarea] = ""
        elif tag == "select" and attrs.get("name"):
            self._select = attrs["name"]
        elif tag == "option" and self._select and ("selected" in attrs or self._select not in self.forms[-1]["fields"]):
            self.forms[-1]["fields"][self._select] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


def form_posting_to(page: str, action_part: str) -> dict:
    for form in Forms(page).forms:
        if action_part in form["action"]:
            return form["fields"]
    raise AssertionError(f"no form posting to {action_part} in the page")


def text_of(response) -> str:
    return response.get_data(as_text=True) + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


def leaks(text: str, allowed=()) -> list[str]:
    lowered = text.lower()
    return [s for s in B_SECRETS if s not in allowed and s.lower() in lowered]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parameter_names() -> list[str]:
    """Every form field and query parameter the app reads, found in its sources (so new ones count)."""
    names = set()
    for path in (ROOT / "wizard").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'(?:args|form|typed|data\(\))\.get(?:list)?\(\s*"([a-z_][a-z0-9_]*)"', text))
        names |= set(re.findall(r'^\s+([a-z_][a-z0-9_]*) = (?:\w+)Field\(', text, re.MULTILINE))
    for path in (ROOT / "templates").rglob("*.html"):
        names |= set(re.findall(r'\bname="([a-z_][a-z0-9_]*)"', path.read_text()))
    return sorted(names - {"csrf_token"})


# -- store B's data -------------------------------------------------------------------------

class StoreB:
    """B's values: ids per table, strings for string arguments."""

    def __init__(self):
        self.store_id: int | None = None
        self.slug = ""
        self.ids: dict[str, set[int]] = {}  # table name -> B's row ids
        self.strings: dict[str, list[str]] = {}  # kind -> B's values (slug, share token, unsubscribe token)
        self.forged_tokens: list[str] = []
        self.owner: Merchant | None = None
        self.agent: Merchant | None = None


def b_row_ids(app, store_id: int) -> dict[str, set[int]]:
    """Every row of B in every table: rows with B's store_id, then rows pointing at those (to a fixpoint)."""
    tables = {t.name: t for t in SQLModel.metadata.sorted_tables}
    owned: dict[str, set[int]] = {"store": {store_id}}
    with Session(app.extensions["db_engine"]) as db:
        changed = True
        while changed:
            changed = False
            for name, table in tables.items():
                if "id" not in table.c:
                    continue
                found = set(owned.get(name, set()))
                if "store_id" in table.c:
                    found |= set(db.execute(select(table.c.id).where(table.c.store_id == store_id)).scalars())
                for fk in table.foreign_keys:
                    parent = fk.column.table.name
                    if parent != name and owned.get(parent) and fk.parent.name != "store_id":
                        if parent == "member":
                            continue  # a row made by a member is not the member's store's (support agents)
                        found |= set(db.execute(select(table.c.id).where(fk.parent.in_(owned[parent]))).scalars())
                if found != owned.get(name, set()):
                    owned[name] = found
                    changed = True
    return {name: ids for name, ids in owned.items() if ids}


@pytest.fixture
def local_dns():
    """B's SMTP host resolves to 127.0.0.1 (the test server); every look-up stays on this machine."""
    with DnsTestServer({"localhost": {"A": ["127.0.0.1"]}, B_HOST: {"A": ["127.0.0.1"]}}) as server:
        yield server


@pytest.fixture
def world(app, local_dns, starttls_server):
    app.config["DNS_NAMESERVER"] = local_dns.nameserver
    app.config["DNS_TIMEOUT"] = 1.0
    # Many requests from one address: the abuse limits are another test's subject (read per request).
    app.config["RATE_LIMITS"] = {action: "100000 per minute" for action in app.config.get("RATE_LIMITS", {})}
    views = app.view_functions
    b_values = StoreB()

    # B signs up first, so every table's first ids are B's.
    owner_b = sign_up(app.test_client(), email=B_OWNER, store=B_STORE)
    owner_a = sign_up(app.test_client(), email="owner@alpha.example", store=A_STORE)

    # B: steps 1-5 with a passing test, then a visitor, the inbox, and a second (failing) test with B's host.
    assert enable_prechat(owner_b).status_code == 302
    assert choose_other(owner_b).status_code == 302
    smtp_b = {"host": "localhost", "port": str(starttls_server.port), "security": "starttls",
              "sender_name": B_SENDER_NAME, "sender_email": B_SENDER_EMAIL, "username": SMTP_USERNAME,
              "password": SMTP_PASSWORD}
    assert owner_b.post("/wizard/smtp", smtp_b).status_code == 302
    assert 'data-category="ok"' in run_connection_test(owner_b).get_data(as_text=True)
    assert owner_b.post("/wizard/save", {}).status_code == 302
    sent = owner_b.post("/wizard/send", {"recipient": B_RECIPIENT})
    assert sent.status_code == 302, sent.get_data(as_text=True)
    page_b = owner_b.get("/wizard/pre-chat-form").get_data(as_text=True)
    b_values.slug = re.search(r'href="/s/([^/"]+)/chat"', page_b).group(1)

    visitor = Merchant(app.test_client(), B_CONTACT)
    visitor.get(f"/s/{b_values.slug}/chat")
    started = visitor.post(f"/s/{b_values.slug}/chat", {"name": B_VISITOR, "email": B_CONTACT, "message": B_MESSAGE})
    assert started.status_code == 302, started.get_data(as_text=True)

    with Session(app.extensions["db_engine"]) as db:
        from wizard.models import Conversation, Store

        b_values.store_id = db.execute(select(Store.id).where(Store.slug == b_values.slug)).scalar_one()
        conversation_id = db.execute(select(Conversation.id).where(Conversation.store_id == b_values.store_id)
                                     ).scalar_one()
    if "inbox.reply" in views:
        replied = owner_b.post(f"/inbox/{conversation_id}/reply", {"body": B_REPLY})
        assert replied.status_code == 302, replied.get_data(as_text=True)
    if "inbox.compose_email" in views:
        page = owner_b.get(f"/inbox/{conversation_id}/compose").get_data(as_text=True)
        fields = form_posting_to(page, f"/inbox/{conversation_id}/compose")
        fields.update(subject=B_FOLLOW_UP, action="send")
        fields.setdefault("draft_key", secrets.token_urlsafe(24))
        queued = owner_b.post(f"/inbox/{conversation_id}/compose", fields)
        assert queued.status_code == 302, queued.get_data(as_text=True)

    # The visitor answers B's follow-up by email: an inbound email in B's conversation.
    from email.message import EmailMessage

    from wizard.inbound.ingest import IMPORTED, ingest
    from wizard.models import Conversation as ConversationRow
    from wizard.outbox.reply_addresses import reply_address

    with Session(app.extensions["db_engine"]) as db:
        address = reply_address(db, db.get(ConversationRow, conversation_id), "replies.isolation.test")
        answer = EmailMessage()
        answer["From"], answer["To"], answer["Subject"] = B_CONTACT, address, f"Re: {B_FOLLOW_UP}"
        answer["Message-ID"] = "<b-visitor-answer@visitor.example>"
        answer.set_content(B_MESSAGE)
        assert ingest(db, answer.as_bytes(), source="smtp").outcome == IMPORTED

    # The draft now holds B's own host and username; testing it reaches the test server under B's name
    # (the certificate does not match that name, so this test fails — a second row with B's values).
    # Another server: the password is typed again (a stored one is bound to the server it was typed for).
    assert owner_b.post("/wizard/smtp", {**smtp_b, "host": B_HOST, "username": B_USERNAME}
                        ).status_code == 302
    run_connection_test(owner_b)

    # HeiChat support makes a share link for B (where share links exist).
    if "support.create_link" in views:
        from wizard.commands.support_agent import PASSWORD_VARIABLE, register

        register(app)
        made = app.test_cli_runner().invoke(args=["create-support-agent", "agent@heichat.example.com"],
                                            env={PASSWORD_VARIABLE: "support-pass-1"})
        assert made.exit_code == 0, made.output
        agent = Merchant(app.test_client(), "agent@heichat.example.com")
        agent.get("/signin")
        assert agent.post("/signin", {"email": "agent@heichat.example.com", "password": "support-pass-1"}
                          ).status_code == 302
        agent.get("/support")
        b_values.agent = agent
        link = agent.post(f"/support/stores/{b_values.store_id}/links",
                          {"target": "smtp", "expires_amount": "7", "expires_unit": "days", "note": B_NOTE,
                           "host": B_HOST, "sender_name": B_SENDER_NAME}, follow_redirects=True)
        tokens = [t for t in re.findall(r"/share/([A-Za-z0-9_.\-]+)", link.get_data(as_text=True)) if "." in t]
        assert tokens, link.get_data(as_text=True)
        b_values.strings["share"] = sorted(set(tokens))

    if "unsubscribe.confirm" in views:
        from wizard.web.unsubscribe import unsubscribe_token

        with app.test_request_context():
            genuine = unsubscribe_token(b_values.store_id, B_CONTACT)
        b_values.strings["unsubscribe"] = [genuine]
        # Altered: the payload's last character changed, and a share token (signed for something else).
        b_values.forged_tokens = [genuine[:-1] + ("A" if genuine[-1] != "A" else "B")]
        b_values.forged_tokens += b_values.strings.get("share", [])

    b_values.strings["slug"] = [b_values.slug]
    b_values.owner = owner_b
    b_values.ids = b_row_ids(app, b_values.store_id)
    assert b_values.ids.get("connectiontest") and b_values.ids.get("sendlog") and b_values.ids.get("contact")

    # A: its own, distinctive data — a draft, saved (untested) settings pointing at a closed loopback port,
    # a visitor — so its pages have something of A's to show and reach the checks behind "nothing saved yet".
    assert enable_prechat(owner_a).status_code == 302
    assert choose_other(owner_a).status_code == 302
    assert owner_a.post("/wizard/smtp", {"host": "localhost", "port": str(_closed_port()), "security": "starttls",
                                         "sender_name": A_SENDER_NAME, "sender_email": "alpha@alpha.example",
                                         "username": "alpha@alpha.example", "password": "alpha-pass-1"}
                        ).status_code == 302
    assert owner_a.post("/wizard/save", {"confirm_untested": "yes"}).status_code == 302
    page_a = owner_a.get("/wizard/pre-chat-form").get_data(as_text=True)
    slug_a = re.search(r'href="/s/([^/"]+)/chat"', page_a).group(1)
    visitor_a = Merchant(app.test_client(), A_CONTACT)
    visitor_a.get(f"/s/{slug_a}/chat")
    assert visitor_a.post(f"/s/{slug_a}/chat", {"name": "Alpha Visitor", "email": A_CONTACT, "message": "Hi A"}
                          ).status_code == 302
    owner_a.slug = slug_a
    owner_a.get("/wizard/smtp")  # the CSRF token of A's session
    assert B_SENDER_NAME in "\n".join(owner_b.bodies)  # B's pages do show B's data (the check can fail)
    return app, owner_a, b_values


# -- filling a rule with B's values -----------------------------------------------------------

def tables_for(arg: str, b: StoreB) -> list[str]:
    """B's tables an int argument names: ``test_id`` -> connectiontest, ``log_id`` -> sendlog, ..."""
    stem = arg.removesuffix("_id").replace("_", "")
    names = sorted(b.ids)
    for match in (lambda n: n == stem, lambda n: n.endswith(stem), lambda n: stem in n):
        found = [n for n in names if match(n)]
        if found:
            return found
    return []


def candidates(rule, arg: str, converter, b: StoreB, a_ids: set[int]) -> list[str]:
    if isinstance(converter, IntegerConverter):
        tables = tables_for(arg, b)
        if tables:
            values = set().union(*(b.ids[t] for t in tables))
        else:  # an argument whose table is not obvious: every id of B that is not also one of A's
            values = set().union(*b.ids.values()) - a_ids
        if not values:
            pytest.fail(f"{rule.rule}: store B has no id for <{arg}> — make B produce one in this test")
        return [str(v) for v in sorted(values)]
    if isinstance(converter, (UnicodeConverter, PathConverter)):
        if rule.endpoint.startswith(tuple(CAPABILITY)):
            values = b.forged_tokens
        elif arg == "slug":
            values = b.strings["slug"]
        elif arg == "provider":  # sign-in providers are the installation's, not a store's
            values = ["google", "microsoft", "local"]
        elif arg == "token":
            values = [v for kind in ("share", "unsubscribe") for v in b.strings.get(kind, [])]
        else:
            values = [v for group in b.strings.values() for v in group]
        if not values:
            pytest.fail(f"{rule.rule}: store B has no value for <{arg}> — make B produce one in this test")
        return [quote(v, safe="") for v in values]
    pytest.fail(f"{rule.rule}: no way to fill <{arg}> ({type(converter).__name__}) with store B's values — "
                "teach test_isolation.py about this converter")


def urls_for(rule, b: StoreB, a_ids: set[int]) -> list[str]:
    args = sorted(rule._converters.items())
    options = [candidates(rule, name, converter, b, a_ids) for name, converter in args]
    urls = []
    for combination in itertools.product(*options):
        url = rule.rule
        for (name, _converter), value in zip(args, combination, strict=False):
            url = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, url)
        urls.append(url)
    return urls


def a_row_ids(app, b: StoreB) -> set[int]:
    """Ids of A's rows (in any table), so an argument of unknown kind is not filled with one of A's ids."""
    everything: set[int] = set()
    b_ids = set().union(*b.ids.values())
    with Session(app.extensions["db_engine"]) as db:
        for table in SQLModel.metadata.sorted_tables:
            if "id" in table.c:
                everything |= set(db.execute(select(table.c.id)).scalars())
    return everything - b_ids


def methods_of(rule) -> list[str]:
    return [m for m in ("GET", "POST") if m in rule.methods]


# -- the test -------------------------------------------------------------------------------

def test_a_member_of_store_a_never_sees_or_touches_store_b(world):
    app, owner_a, b = world
    a_ids = a_row_ids(app, b)
    failures: list[str] = []
    requested: set[str] = set()
    adapter = app.url_map.bind("localhost")

    def request(method: str, url: str, htmx: bool, data=None):
        # (A URL no rule matches — an id the converter refuses — is still asked.)
        with contextlib.suppress(HTTPException, RequestRedirect):
            requested.add(adapter.match(urlsplit(url).path, method=method)[0])
        if method == "GET":
            return owner_a.get(url, htmx=htmx)
        return owner_a.post(url, data or {}, htmx=htmx)

    def follow(response, url: str, where: str, allowed=()) -> None:
        """A redirect must lead to a page of A's own: follow it and look."""
        location = response.headers.get("Location", "")
        if any(s in location for s in b.strings.get("share", []) + b.strings.get("unsubscribe", [])):
            failures.append(f"{where}: redirects to B's link {location}")
        page = owner_a.get(urlsplit(location).path + ("?" + urlsplit(location).query if urlsplit(location).query else ""))
        if page.status_code >= 400 and page.status_code not in (403, 404):
            failures.append(f"{where}: its redirect to {location} answers {page.status_code}")
        for secret in leaks(text_of(page), allowed):
            failures.append(f"{where}: its redirect {location} shows B's {secret!r}")

    # 1. Every rule with arguments, filled with B's ids and values.
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_REQUESTED or not rule.arguments:
            continue
        public = rule.endpoint.startswith(PUBLIC_PER_STORE)
        for url in urls_for(rule, b, a_ids):
            for method, htmx in itertools.product(methods_of(rule), (False, True)):
                where = f"{method} {url} (rule {rule.rule}, htmx={htmx})"
                response = request(method, url, htmx)
                status = response.status_code
                if status >= 500:
                    failures.append(f"{where}: {status}")
                    continue
                allowed = [B_STORE] if public else []
                for secret in leaks(text_of(response), allowed):
                    failures.append(f"{where}: shows B's {secret!r}")
                if public:
                    continue  # B's public page: any status, B's public face only
                if 300 <= status < 400:
                    follow(response, url, where)
                elif status not in REFUSED:
                    failures.append(f"{where}: answered {status}, not 400/403/404/405 or a redirect")
        if public:  # and the same page with A's own slug
            for method, htmx in itertools.product(methods_of(rule), (False, True)):
                url = re.sub(r"<(?:[^:<>]+:)?slug>", owner_a.slug, rule.rule)
                if "<" in url:
                    continue
                response = request(method, url, htmx)
                if response.status_code >= 500:
                    failures.append(f"{method} {url}: {response.status_code}")
                for secret in leaks(text_of(response)):
                    failures.append(f"{method} {url} (A's own slug, htmx={htmx}): shows B's {secret!r}")
        for prefix, allowed in CAPABILITY.items():  # B's genuine token: B's store and address, nothing else
            if rule.endpoint.startswith(prefix) and "unsubscribe" in b.strings and "token" in rule.arguments:
                url = rule.rule.replace("<token>", b.strings["unsubscribe"][0])
                for method in methods_of(rule):
                    response = request(method, url, False)
                    if response.status_code >= 500:
                        failures.append(f"{method} {url}: {response.status_code}")
                    for secret in leaks(text_of(response), allowed):
                        failures.append(f"{method} {url} (B's genuine unsubscribe link): shows B's {secret!r}")

    # 2. Store-scoped rules without arguments show A's data only — first as A reads them, ...
    for path, mine in (("/wizard/smtp", A_SENDER_NAME), ("/contacts", A_CONTACT), ("/wizard/send", A_SENDER_NAME),
                       ("/inbox", A_CONTACT), ("/wizard/done", A_SENDER_NAME)):
        try:
            adapter.match(path)
        except HTTPException:
            continue  # (a page this version of the app does not have)
        text = owner_a.get(path).get_data(as_text=True)
        if mine not in text:
            failures.append(f"GET {path}: A's own {mine!r} is missing")
    plain_rules = [r for r in app.url_map.iter_rules() if not r.arguments and r.endpoint not in NOT_REQUESTED]
    names = parameter_names()
    b_numbers = sorted({str(i) for ids in b.ids.values() for i in ids})
    b_words = [v for group in b.strings.values() for v in group] + b.forged_tokens
    for rule in plain_rules:
        if "GET" not in rule.methods:
            continue
        for htmx in (False, True):
            response = request("GET", rule.rule, htmx)
            if response.status_code >= 500:
                failures.append(f"GET {rule.rule} htmx={htmx}: {response.status_code}")
            for secret in leaks(text_of(response)):
                failures.append(f"GET {rule.rule} htmx={htmx}: shows B's {secret!r}")
            if 300 <= response.status_code < 400:
                follow(response, rule.rule, f"GET {rule.rule} htmx={htmx}")
    # ... then with B's ids and values in every query parameter the app reads (?sent=<B's log id>, ...), ...
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_REQUESTED or "GET" not in rule.methods or rule.endpoint.startswith(PUBLIC_PER_STORE):
            continue
        base = [rule.rule] if not rule.arguments else []
        for url in base:
            for value in b_numbers + b_words:
                target = f"{url}?{urlencode({name: value for name in names})}"
                response = request("GET", target, False)
                if response.status_code >= 500:
                    failures.append(f"GET {url}?…={value}: {response.status_code}")
                for secret in leaks(text_of(response)):
                    failures.append(f"GET {url} with every query parameter = {value}: shows B's {secret!r}")
    # ... and last the POSTs (they change A's own data): empty, then with B's ids and values in every field.
    for rule in plain_rules:
        if "POST" not in rule.methods:
            continue
        # (No host in these bodies: the sweep must never make the app probe anything.)
        bodies = [{}] + [{**{name: value for name in names if name != "password"}, "host": ""}
                         for value in b_numbers + b_words]
        for body in bodies:
            for htmx in (False, True):
                response = request("POST", rule.rule, htmx, body)
                where = f"POST {rule.rule} htmx={htmx} body={'B values' if body else 'empty'}"
                if response.status_code >= 500:
                    failures.append(f"{where}: {response.status_code}")
                for secret in leaks(text_of(response)):
                    failures.append(f"{where}: shows B's {secret!r}")

    # 3. Nothing was left out: every rule was requested (a new rule is filled or fails above).
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in NOT_REQUESTED and rule.endpoint not in requested:
            failures.append(f"{rule.rule} ({rule.endpoint}) was never requested")

    # 4. The values were B's real ones: B itself opens every filled page of its own (a 404 for A then means
    # isolation, not a wrong id). Support pages are opened by the support agent.
    for rule in app.url_map.iter_rules():
        if (rule.endpoint in NOT_REQUESTED or not rule.arguments or "GET" not in rule.methods
                or rule.endpoint.startswith(tuple(CAPABILITY))):
            continue
        who = b.agent if rule.endpoint.startswith("support.") and b.agent else b.owner
        statuses = {who.get(url, htmx=True).status_code for url in urls_for(rule, b, a_ids)}
        if statuses <= {404}:
            failures.append(f"{rule.rule}: even B gets only 404 with the values used — they are not B's")

    # 5. And B's data is still B's: nothing A did changed it.
    b_after = b_row_ids(app, b.store_id)
    for table, ids in b.ids.items():
        if not ids <= b_after.get(table, set()):
            failures.append(f"B's rows in {table} changed: {sorted(ids)} -> {sorted(b_after.get(table, set()))}")

    assert not failures, f"{len(failures)} isolation failures:\n" + "\n".join(dict.fromkeys(failures))
