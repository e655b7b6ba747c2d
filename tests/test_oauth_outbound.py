"""The sign-in flow's outbound HTTP: only the configured provider's hosts, and
answers from the browser that never reach the token endpoint when they are wrong."""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wizard.oauth.flow import PendingSignIn, SignInClient, SignInProblem, clear_discovery_cache
from wizard.oauth.outbound import OutboundRefused, check_url
from wizard.oauth.providers import load_sign_in_catalogue, providers_from_config


@contextmanager
def json_server(document_for):
    """A loopback HTTP server answering every GET with ``document_for(server)``; records each request."""
    requests_seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            requests_seen.append((self.command, self.path))
            body = json.dumps(document_for(server)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    server.seen = requests_seen
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        clear_discovery_cache()


def client_for(metadata_url: str, key: str = "google") -> SignInClient:
    config = {f"OAUTH_{key.upper()}_CLIENT_ID": "client-1", f"OAUTH_{key.upper()}_CLIENT_SECRET": "secret-1",
              f"OAUTH_{key.upper()}_METADATA_URL": metadata_url}
    return SignInClient(providers_from_config(config)[key], timeout=3)


@pytest.mark.parametrize("url, allowed", [
    ("https://accounts.google.com/o/oauth2/token", True),
    ("http://127.0.0.1:8026/token", True),
    ("http://accounts.google.com/token", False),            # plain HTTP off loopback
    ("https://evil.example/token", False),                  # another host
    ("https://user:pw@accounts.google.com/token", False),   # credentials in the URL
    ("file:///etc/passwd", False),
    ("gopher://127.0.0.1:25/", False),
])
def test_only_https_to_the_providers_hosts_or_http_to_loopback(url, allowed):
    hosts = frozenset({"accounts.google.com", "127.0.0.1"})
    if allowed:
        assert check_url(url, hosts) == url
    else:
        with pytest.raises(OutboundRefused):
            check_url(url, hosts)


def test_real_providers_are_limited_to_their_own_hosts():
    providers = providers_from_config({"OAUTH_GOOGLE_CLIENT_ID": "a", "OAUTH_GOOGLE_CLIENT_SECRET": "b",
                                       "OAUTH_MICROSOFT_CLIENT_ID": "c", "OAUTH_MICROSOFT_CLIENT_SECRET": "d",
                                       "OAUTH_MICROSOFT_TENANT": "contoso.onmicrosoft.com"})
    assert providers["google"].endpoint_hosts == {"accounts.google.com", "oauth2.googleapis.com"}
    assert providers["microsoft"].endpoint_hosts == {"login.microsoftonline.com"}
    assert providers["microsoft"].metadata_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    # An overridden discovery document: that host only.
    custom = providers_from_config({"OAUTH_GOOGLE_CLIENT_ID": "a", "OAUTH_GOOGLE_CLIENT_SECRET": "b",
                                    "OAUTH_GOOGLE_METADATA_URL": "https://id.example.org/.well-known/openid-configuration"})
    assert custom["google"].endpoint_hosts == {"id.example.org"}
    # Half a registration is none: the card says what is missing instead.
    assert providers_from_config({"OAUTH_GOOGLE_CLIENT_ID": "a"}) == {}
    title, text = load_sign_in_catalogue().not_configured("google")
    assert "WIZARD_OAUTH_GOOGLE_CLIENT_ID" in text and "WIZARD_OAUTH_GOOGLE_CLIENT_SECRET" in text


def test_a_discovery_document_cannot_steer_requests_elsewhere():
    """A hostile (or compromised) discovery document names endpoints on other hosts:
    the flow refuses before sending anything there — no code, no secret, no token."""
    with json_server(lambda s: {}) as canary:
        canary_host_as_name = canary.url.replace("127.0.0.1", "localhost")

        def hostile(server):
            return {"issuer": server.url, "authorization_endpoint": server.url + "/authorize",
                    "token_endpoint": canary_host_as_name + "/token",  # another host name
                    "revocation_endpoint": "http://169.254.169.254/latest/meta-data"}

        with json_server(hostile) as identity:
            client = client_for(identity.url + "/.well-known/openid-configuration")
            with pytest.raises(SignInProblem) as refused:
                client.begin("http://127.0.0.1:5000/oauth/google/callback")
            assert refused.value.reason == "provider_error"
            assert identity.seen == [("GET", "/.well-known/openid-configuration")]
        assert canary.seen == []


def test_answers_that_do_not_match_the_sign_in_never_reach_the_token_endpoint():
    def document(server):
        return {"issuer": server.url, "authorization_endpoint": server.url + "/authorize",
                "token_endpoint": server.url + "/token"}

    with json_server(document) as identity:
        client = client_for(identity.url + "/.well-known/openid-configuration")
        url, pending = client.begin("http://127.0.0.1:5000/oauth/google/callback", login_hint="a@b.example")
        assert "code_challenge_method=S256" in url and f"state={pending.state}" in url
        assert "access_type=offline" in url and "login_hint=a%40b.example" in url
        assert pending.code_verifier not in url  # only its S256 challenge travels
        for args, reason in [
            ({"state": "forged", "code": "c"}, "state_mismatch"),
            ({"code": "c"}, "state_mismatch"),
            ({"state": pending.state, "error": "access_denied"}, "cancelled"),
            ({"state": pending.state, "error": "consent_required",
              "error_description": "AADSTS65001: The user or administrator has not consented to use the application"},
             "consent_required"),
            ({"state": pending.state, "error": "access_denied",
              "error_description": "AADSTS65004: User declined to consent to access the app."}, "cancelled"),
            ({"state": pending.state, "error": "invalid_request",
              "error_description": "AADSTS50020: User account from identity provider does not exist in tenant"},
             "wrong_account_type"),
            ({"state": pending.state, "error": "server_error"}, "provider_error"),
        ]:
            with pytest.raises(SignInProblem) as problem:
                client.finish(pending, args)
            assert problem.value.reason == reason, args
        with pytest.raises(SignInProblem) as no_pending:
            client.finish(None, {"state": pending.state, "code": "c"})
        assert no_pending.value.reason == "state_mismatch"
        assert ("POST", "/token") not in identity.seen


def test_every_problem_has_words_for_the_merchant():
    catalogue = load_sign_in_catalogue()
    for reason in ("cancelled", "consent_required", "wrong_account_type", "state_mismatch", "no_account_email",
                   "missing_scope", "no_refresh_token", "provider_error", "unreachable", "access_denied"):
        title, text = catalogue.problem_text(reason, "Microsoft")
        assert title and "Microsoft" in title + text and "{" not in title + text
    assert set(catalogue.aadsts.values()) <= set(catalogue.problems)


def test_pending_sign_in_survives_the_session_cookie_round_trip():
    pending = PendingSignIn("google", "s", "v", "n", "http://127.0.0.1/cb")
    assert PendingSignIn.from_dict(pending.as_dict()) == pending
    assert PendingSignIn.from_dict({"state": "s"}) is None
    assert "code_verifier" not in repr(pending)  # the PKCE secret stays out of logs
