"""Helpers the test modules share: a merchant walking the first wizard steps, a
visitor chatting, a support agent. (Fixtures live in conftest.py.)"""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select
from werkzeug.security import generate_password_hash

from wizard.models import ChatMessage, Conversation, Member, utcnow

from conftest import CSRF_IN_PAGE, Merchant, smtp_form

AGENT_PASSWORD = "support-pass-1"


def enable_prechat(merchant, htmx=False):
    return merchant.post("/wizard/pre-chat-form", {"enabled": "y", "email_required": "y", "name_mode": "optional",
                                                   "intro": "Leave your email"}, htmx=htmx)


def choose_other(merchant, htmx=False):
    return merchant.post("/wizard/provider", {"provider": "custom", "ses_region": "us-east-1"}, htmx=htmx)


def prepare(merchant, server, **overrides):
    enable_prechat(merchant)
    choose_other(merchant)
    response = merchant.post("/wizard/smtp", smtp_form(server, **overrides))
    assert response.status_code == 302


SLUG = "blue-fern-shop"


CHAT = f"/s/{SLUG}/chat"


MESSAGES = f"/s/{SLUG}/chat/messages"


class Visitor:
    """A visitor's browser: its own cookie jar, the CSRF token from the page."""

    def __init__(self, app):
        self.client = app.test_client()
        self.token = ""

    def get(self, url: str, htmx: bool = False):
        response = self.client.get(url, headers={"HX-Request": "true"} if htmx else {})
        found = CSRF_IN_PAGE.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, url: str, data: dict, htmx: bool = False):
        if not self.token:
            self.get(CHAT)
        headers = {"X-CSRFToken": self.token}
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.post(url, data=data, headers=headers)


def start_chat(app, name="Ada", email="ada@example.com", message="Do you ship to Oslo?") -> Visitor:
    visitor = Visitor(app)
    response = visitor.post(CHAT, {"name": name, "email": email, "message": message})
    assert response.status_code == 302, response.get_data(as_text=True)
    return visitor


def conversation_row(app) -> Conversation:
    with Session(app.extensions["db_engine"]) as session:
        return session.exec(select(Conversation).order_by(Conversation.id.desc())).first()


def set_last_seen(app, conversation_id: int, minutes_ago: float) -> None:
    with Session(app.extensions["db_engine"]) as session:
        conversation = session.get(Conversation, conversation_id)
        conversation.last_seen_at = utcnow() - timedelta(minutes=minutes_ago)
        session.add(conversation)
        session.commit()


def chat_bodies(app, conversation_id: int) -> list[tuple[str, str]]:
    with Session(app.extensions["db_engine"]) as session:
        rows = session.exec(select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
                            .order_by(ChatMessage.id)).all()
        return [(m.author, m.body) for m in rows]


AGENT_EMAIL = "agent@heichat.example.com"


def add_member(app, email: str, password: str, role: str, store_id: int | None = None) -> int:
    with Session(app.extensions["db_engine"]) as db:
        # A cheap hash: these accounts exist only for the test (the app's own hashing is tested by sign-up).
        member = Member(email=email, password_hash=generate_password_hash(password, method="pbkdf2:sha256:1000"),
                        role=role, store_id=store_id)
        db.add(member)
        db.commit()
        return member.id


def sign_in(client, email: str, password: str, next_url: str | None = None):
    page = client.get("/signin").get_data(as_text=True)
    token = CSRF_IN_PAGE.search(page).group(1)
    url = "/signin" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password, "csrf_token": token})


def support_agent(app, email: str = AGENT_EMAIL) -> Merchant:
    """A signed-in support agent on their own test client."""
    add_member(app, email, AGENT_PASSWORD, "support")
    client = app.test_client()
    assert sign_in(client, email, AGENT_PASSWORD).status_code == 302
    agent = Merchant(client, email)
    assert agent.get("/support").status_code == 200  # also picks up the CSRF token
    return agent


def store_id_of(app, email: str) -> int:
    with Session(app.extensions["db_engine"]) as db:
        return db.exec(select(Member).where(Member.email == email)).one().store_id


def all_bodies(*people) -> str:
    return "\n".join(body for person in people for body in person.bodies)
