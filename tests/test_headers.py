"""Security headers on every page, no inline script anywhere, session cookie flags."""
from __future__ import annotations

import re
from pathlib import Path

from cryptography.fernet import Fernet

from wizard import create_app

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"\sstyle\s*=", re.I)


def test_no_template_has_inline_script_handlers_or_styles():
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, EVENT_HANDLER, INLINE_STYLE, re.compile(r"hx-on", re.I)):
            if pattern.search(text):
                offenders.append(f"{path.relative_to(TEMPLATES)}: {pattern.pattern}")
    assert offenders == []


def assert_secure_headers(response, url):
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, url
    assert "'unsafe-inline'" not in policy, url
    assert response.headers.get("X-Content-Type-Options") == "nosniff", url


def test_every_page_sends_the_security_headers(app, merchant, client):
    urls = set()
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments:
            urls.add(rule.rule)
    urls |= {"/static/app.css", "/no-such-page", "/s/blue-fern-shop/chat"}
    for url in sorted(urls):
        for who in (merchant.client, app.test_client()):
            assert_secure_headers(who.get(url), url)
        assert_secure_headers(merchant.client.get(url, headers={"HX-Request": "true"}), url)


def test_session_cookie_flags(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "k",
                      "ENCRYPTION_KEYS": Fernet.generate_key().decode()})
    assert not app.debug and not app.testing
    client = app.test_client()
    response = client.get("/signup")
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    app.extensions["db_engine"].dispose()
