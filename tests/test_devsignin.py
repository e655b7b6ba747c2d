"""The local test sign-in server, over HTTP with requests: discovery, the consent page,
the code flow with PKCE, ID tokens, refresh (rotating or not), expiry, revocation and
the providers' error answers. Every server runs on 127.0.0.1; redirects are read from
the Location header, never followed (the redirect URI's port 9 has nobody listening).
"""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from wizard.devsignin import SigninStore, start_signin_server

CLIENT_ID = "heichat-wizard"
CLIENT_SECRET = "client-secret-Zq81"
REDIRECT_URI = "http://127.0.0.1:9/cb"
CLIENT = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [REDIRECT_URI],
          "name": "HeiChat email wizard"}
SCOPES = {
    "google": "openid email https://mail.google.com/",
    "microsoft": "https://outlook.office.com/SMTP.Send offline_access openid email",
    "local": "smtp openid email",
}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def server():
    with start_signin_server(clients=[CLIENT]) as running:
        yield running


def metadata(server, flavour: str, tenant: str = "common") -> dict:
    response = requests.get(server.metadata_url(flavour, tenant), timeout=10)
    assert response.status_code == 200
    return response.json()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def query_of(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def authorization_params(flavour: str, challenge: str | None, **extra) -> dict:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
              "scope": SCOPES[flavour], "state": "state-" + secrets.token_hex(4)}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return params


def consent(server, flavour: str, params: dict, *, decision: str = "allow", email: str = "Merchant@Shop.example.com",
            tenant: str = "common", session: requests.Session | None = None) -> requests.Response:
    """Open the consent page as a browser would, then post its form with ``decision``."""
    session = session or requests.Session()
    endpoint = metadata(server, flavour, tenant)["authorization_endpoint"]
    page = session.get(endpoint, params=params, timeout=10, allow_redirects=False)
    assert page.status_code == 200, page.text
    csrf_token = CSRF_FIELD.search(page.text).group(1)
    return session.post(page.url, data={"csrf_token": csrf_token, "email": email, "decision": decision},
                        timeout=10, allow_redirects=False)


def exchange(server, flavour: str, code: str, verifier: str | None, *, secret: str = CLIENT_SECRET,
             auth: str = "basic", tenant: str = "common") -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    if verifier:
        data["code_verifier"] = verifier
    return token_request(server, flavour, data, secret=secret, auth=auth, tenant=tenant)


def refresh(server, flavour: str, refresh_token: str, *, tenant: str = "common") -> requests.Response:
    return token_request(server, flavour, {"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth="post", tenant=tenant)


def token_request(server, flavour: str, data: dict, *, secret: str = CLIENT_SECRET, auth: str = "basic",
                  tenant: str = "common") -> requests.Response:
    endpoint = metadata(server, flavour, tenant)["token_endpoint"]
    if auth == "basic":
        return requests.post(endpoint, data=data, auth=(CLIENT_ID, secret), timeout=10)
    return requests.post(endpoint, data={**data, "client_id": CLIENT_ID, "client_secret": secret}, timeout=10)


def sign_in(server, flavour: str, *, email: str = "Merchant@Shop.example.com", tenant: str = "common",
            **extra) -> dict:
    """The whole code flow; the token response."""
    verifier, challenge = pkce_pair()
    params = authorization_params(flavour, challenge, **extra)
    code = query_of(consent(server, flavour, params, email=email, tenant=tenant))["code"]
    response = exchange(server, flavour, code, verifier, tenant=tenant)
    assert response.status_code == 200, response.text
    return response.json()


def verified_claims(server, flavour: str, id_token: str, tenant: str = "common") -> dict:
    keys = requests.get(metadata(server, flavour, tenant)["jwks_uri"], timeout=10).json()
    token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    return token.claims


def home_form_post(server, action: str, grant_id: str, *, with_csrf: bool = True) -> requests.Response:
    session = requests.Session()
    page = session.get(server.url + "/", timeout=10)
    data = {"csrf_token": CSRF_FIELD.search(page.text).group(1)} if with_csrf else {}
    return session.post(f"{server.url}/grants/{grant_id}/{action}", data=data, timeout=10, allow_redirects=False)


def only_grant_id(server) -> str:
    (grant,) = server.store.list_grants()
    return grant.grant_id


# Discovery


@pytest.mark.parametrize("flavour", ["google", "microsoft", "local"])
def test_discovery_document_names_the_flavours_endpoints(server, flavour):
    document = metadata(server, flavour)
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["token_endpoint_auth_methods_supported"]) == {"client_secret_post", "client_secret_basic"}
    assert document["response_types_supported"] == ["code"]
    assert set(SCOPES[flavour].split()) <= set(document["scopes_supported"])
    assert ("revocation_endpoint" in document) == (flavour != "microsoft")
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert document[endpoint].startswith(f"{server.url}/{flavour}/")
    keys = requests.get(document["jwks_uri"], timeout=10).json()["keys"]
    assert keys and keys[0]["kty"] == "RSA" and "d" not in keys[0]


def test_google_and_local_issuers_are_their_prefixes(server):
    assert metadata(server, "google")["issuer"] == f"{server.url}/google"
    assert metadata(server, "local")["issuer"] == f"{server.url}/local"


def test_microsoft_discovery_answers_under_any_tenant(server):
    common = metadata(server, "microsoft", "common")
    assert common["issuer"] == f"{server.url}/microsoft/{{tenantid}}/v2.0"
    tenant_id = str(uuid.uuid4())
    own = metadata(server, "microsoft", tenant_id)
    assert own["issuer"] == f"{server.url}/microsoft/{tenant_id}/v2.0"
    assert own["token_endpoint"] == f"{server.url}/microsoft/{tenant_id}/oauth2/v2.0/token"


# The code flow


def test_google_code_flow_gives_a_token_the_mailbox_accepts_and_a_verifiable_id_token(server):
    token = sign_in(server, "google", nonce="nonce-81", access_type="offline")
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert "refresh_token" in token
    claims = verified_claims(server, "google", token["id_token"])
    assert claims["email"] == "Merchant@shop.example.com"
    assert claims["nonce"] == "nonce-81"
    assert claims["aud"] == CLIENT_ID and claims["iss"] == f"{server.url}/google"
    assert claims["exp"] > claims["iat"] and claims["sub"].isdigit()
    assert server.store.check_access_token("merchant@SHOP.example.com", token["access_token"])
    assert not server.store.check_access_token("someone.else@shop.example.com", token["access_token"])
    assert not server.store.check_access_token("merchant@shop.example.com", "made-up-token")


def test_state_comes_back_with_the_code_and_the_consent_page_prefills_login_hint(server):
    verifier, challenge = pkce_pair()
    params = authorization_params("local", challenge, login_hint="hint@shop.example.com")
    page = requests.get(metadata(server, "local")["authorization_endpoint"], params=params, timeout=10)
    assert 'value="hint@shop.example.com"' in page.text
    assert "HeiChat email wizard" in page.text and "not a real Google/Microsoft page" in page.text
    answer = query_of(consent(server, "local", params))
    assert answer["state"] == params["state"] and answer["code"]


def test_consent_page_without_login_hint_leaves_the_email_empty(server):
    params = authorization_params("google", pkce_pair()[1])
    page = requests.get(metadata(server, "google")["authorization_endpoint"], params=params, timeout=10)
    assert 'name="email" value=""' in page.text


def test_microsoft_id_token_carries_preferred_username_tid_and_the_tenant_in_iss(server):
    token = sign_in(server, "microsoft", email="owner@contoso.example.com", nonce="n-1")
    claims = verified_claims(server, "microsoft", token["id_token"])
    assert claims["preferred_username"] == "owner@contoso.example.com"
    assert uuid.UUID(claims["tid"])
    assert claims["iss"] == f"{server.url}/microsoft/{claims['tid']}/v2.0"
    assert claims["nonce"] == "n-1"


def test_an_invalid_email_keeps_the_consent_page_with_the_error(server):
    response = consent(server, "google", authorization_params("google", pkce_pair()[1]), email="not-an-address")
    assert response.status_code == 200 and "Location" not in response.headers
    assert "Enter the email address" in response.text and 'aria-invalid="true"' in response.text


def test_consent_without_csrf_token_is_refused(server):
    params = authorization_params("google", pkce_pair()[1])
    endpoint = metadata(server, "google")["authorization_endpoint"]
    response = requests.post(endpoint, params=params, data={"email": "a@shop.example.com", "decision": "allow"},
                             timeout=10, allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers
    assert server.store.list_grants() == []


def test_token_without_the_mail_scope_is_no_good_for_smtp(server):
    token = sign_in(server, "google", scope="openid email")
    assert not server.store.check_access_token("merchant@shop.example.com", token["access_token"])


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_both_client_authentication_methods_work(server, auth):
    verifier, challenge = pkce_pair()
    code = query_of(consent(server, "local", authorization_params("local", challenge)))["code"]
    assert exchange(server, "local", code, verifier, auth=auth).status_code == 200


# PKCE and codes


def test_authorization_request_without_pkce_is_sent_back_with_invalid_request(server):
    params = authorization_params("google", None)
    endpoint = metadata(server, "google")["authorization_endpoint"]
    answer = query_of(requests.get(endpoint, params=params, timeout=10, allow_redirects=False))
    assert answer["error"] == "invalid_request" and answer["state"] == params["state"]


@pytest.mark.parametrize("flavour", ["google", "microsoft"])
@pytest.mark.parametrize("verifier", [None, "wrong-verifier-" + "x" * 40])
def test_missing_or_wrong_code_verifier_is_invalid_grant(server, flavour, verifier):
    _, challenge = pkce_pair()
    code = query_of(consent(server, flavour, authorization_params(flavour, challenge)))["code"]
    response = exchange(server, flavour, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    if flavour == "microsoft":
        assert response.json()["error_description"].startswith("AADSTS")


def test_a_code_works_once_and_its_replay_revokes_what_it_gave(server):
    verifier, challenge = pkce_pair()
    code = query_of(consent(server, "google", authorization_params("google", challenge)))["code"]
    token = exchange(server, "google", code, verifier).json()
    replay = exchange(server, "google", code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert not server.store.check_access_token("merchant@shop.example.com", token["access_token"])


def test_a_code_dies_after_sixty_seconds():
    now = [time.time()]
    store = SigninStore([CLIENT], clock=lambda: now[0])
    with start_signin_server(store=store) as running:
        verifier, challenge = pkce_pair()
        code = query_of(consent(running, "local", authorization_params("local", challenge)))["code"]
        now[0] += 61
        response = exchange(running, "local", code, verifier)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


# Refresh


def test_google_gives_a_refresh_token_only_with_access_type_offline(server):
    assert "refresh_token" not in sign_in(server, "google")
    assert "refresh_token" in sign_in(server, "google", access_type="offline")


def test_google_refresh_tokens_are_not_rotated(server):
    first = sign_in(server, "google", access_type="offline")
    for _ in range(2):
        answer = refresh(server, "google", first["refresh_token"])
        assert answer.status_code == 200 and "refresh_token" not in answer.json()
        assert server.store.check_access_token("merchant@shop.example.com", answer.json()["access_token"])


def test_microsoft_refresh_token_only_with_offline_access(server):
    token = sign_in(server, "microsoft", scope="https://outlook.office.com/SMTP.Send openid email")
    assert "refresh_token" not in token


@pytest.mark.parametrize("flavour", ["microsoft", "local"])
def test_rotated_refresh_token_replaces_the_old_one(server, flavour):
    first = sign_in(server, flavour)
    second = refresh(server, flavour, first["refresh_token"])
    assert second.status_code == 200
    new_refresh = second.json()["refresh_token"]
    assert new_refresh != first["refresh_token"]
    reused = refresh(server, flavour, first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    if flavour == "microsoft":
        assert reused.json()["error_description"].startswith("AADSTS")
        assert reused.json()["error_codes"]
    assert refresh(server, flavour, new_refresh).status_code == 200


# Expiry and revocation


def test_access_token_lifetime_is_configurable_and_the_token_dies_with_it():
    with start_signin_server(clients=[CLIENT], access_token_lifetime=1) as running:
        token = sign_in(running, "local")
        assert token["expires_in"] == 1
        assert running.store.check_access_token("merchant@shop.example.com", token["access_token"])
        deadline = time.monotonic() + 10
        while running.store.check_access_token("merchant@shop.example.com", token["access_token"]):
            assert time.monotonic() < deadline, "the access token outlived its lifetime"
            time.sleep(0.05)


def test_expire_now_on_the_home_page_forces_a_refresh(server):
    token = sign_in(server, "google", access_type="offline")
    response = home_form_post(server, "expire", only_grant_id(server))
    assert response.status_code == 302
    assert not server.store.check_access_token("merchant@shop.example.com", token["access_token"])
    renewed = refresh(server, "google", token["refresh_token"]).json()
    assert server.store.check_access_token("merchant@shop.example.com", renewed["access_token"])


def test_revoke_on_the_home_page_kills_access_and_refresh(server):
    token = sign_in(server, "microsoft")
    assert home_form_post(server, "revoke", only_grant_id(server)).status_code == 302
    assert not server.store.check_access_token("merchant@shop.example.com", token["access_token"])
    answer = refresh(server, "microsoft", token["refresh_token"])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_home_page_forms_refuse_a_post_without_csrf_token(server):
    token = sign_in(server, "local")
    response = home_form_post(server, "revoke", only_grant_id(server), with_csrf=False)
    assert response.status_code == 400
    assert server.store.check_access_token("merchant@shop.example.com", token["access_token"])


def test_home_page_lists_grants_without_token_values(server):
    token = sign_in(server, "local")
    page = requests.get(server.url + "/", timeout=10).text
    assert "Merchant@shop.example.com" in page and "HeiChat email wizard" in page and "valid until" in page
    for value in (token["access_token"], token["refresh_token"], token["id_token"], CLIENT_SECRET):
        assert value not in page


@pytest.mark.parametrize("with_client_auth", [False, True])
def test_google_revocation_endpoint_revokes_the_grant(server, with_client_auth):
    token = sign_in(server, "google", access_type="offline")
    endpoint = metadata(server, "google")["revocation_endpoint"]
    auth = (CLIENT_ID, CLIENT_SECRET) if with_client_auth else None
    assert requests.post(endpoint, data={"token": token["access_token"]}, auth=auth, timeout=10).status_code == 200
    assert refresh(server, "google", token["refresh_token"]).json()["error"] == "invalid_grant"


def test_local_revocation_endpoint_wants_the_client(server):
    token = sign_in(server, "local")
    endpoint = metadata(server, "local")["revocation_endpoint"]
    refused = requests.post(endpoint, data={"token": token["refresh_token"]}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert requests.post(endpoint, data={"token": token["refresh_token"], "token_type_hint": "refresh_token"},
                         auth=(CLIENT_ID, CLIENT_SECRET), timeout=10).status_code == 200
    assert not server.store.check_access_token("merchant@shop.example.com", token["access_token"])


# Errors


@pytest.mark.parametrize("flavour", ["google", "microsoft", "local"])
def test_cancel_sends_access_denied_with_state(server, flavour):
    params = authorization_params(flavour, pkce_pair()[1])
    answer = query_of(consent(server, flavour, params, decision="cancel"))
    assert answer["error"] == "access_denied" and answer["state"] == params["state"]
    assert "code" not in answer
    if flavour == "microsoft":
        assert answer["error_description"].startswith("AADSTS65004: User declined to consent")


def test_microsoft_admin_consent_decline_sends_consent_required(server):
    params = authorization_params("microsoft", pkce_pair()[1])
    answer = query_of(consent(server, "microsoft", params, decision="admin_consent"))
    assert answer["error"] == "consent_required" and answer["state"] == params["state"]
    assert answer["error_description"].startswith("AADSTS65001")


def test_admin_consent_button_is_microsofts_only(server):
    for flavour, offered in (("microsoft", True), ("google", False)):
        params = authorization_params(flavour, pkce_pair()[1])
        page = requests.get(metadata(server, flavour)["authorization_endpoint"], params=params, timeout=10).text
        assert ("Decline: admin consent required" in page) == offered


@pytest.mark.parametrize("auth", ["basic", "post"])
@pytest.mark.parametrize("flavour", ["google", "microsoft"])
def test_wrong_client_secret_is_invalid_client(server, flavour, auth):
    verifier, challenge = pkce_pair()
    code = query_of(consent(server, flavour, authorization_params(flavour, challenge)))["code"]
    response = exchange(server, flavour, code, verifier, secret="not-the-secret", auth=auth)
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"
    if flavour == "microsoft":
        assert response.json()["error_description"].startswith("AADSTS7000215")


@pytest.mark.parametrize(("flavour", "change", "wording"), [
    ("google", {"redirect_uri": "http://127.0.0.1:9/elsewhere"}, "redirect_uri_mismatch"),
    ("microsoft", {"redirect_uri": "http://127.0.0.1:9/cb/"}, "AADSTS50011"),
    ("local", {"client_id": "nobody"}, "invalid_client"),
])
def test_untrusted_redirect_gets_an_error_page_not_a_redirect(server, flavour, change, wording):
    params = {**authorization_params(flavour, pkce_pair()[1]), **change}
    response = requests.get(metadata(server, flavour)["authorization_endpoint"], params=params, timeout=10,
                            allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers
    assert wording in response.text


def test_the_runner_refuses_non_loopback_addresses():
    for host in ("0.0.0.0", "192.0.2.10", "example.invalid"):
        with pytest.raises(ValueError):
            start_signin_server(host)


def test_no_token_or_secret_reaches_the_logs_even_at_debug(server, caplog):
    caplog.set_level("DEBUG")
    token = sign_in(server, "local")
    renewed = refresh(server, "local", token["refresh_token"]).json()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/local/token" in logged  # the request log is there, by path
    for value in (token["access_token"], token["refresh_token"], renewed["refresh_token"], CLIENT_SECRET):
        assert value not in logged


def test_the_code_exchange_must_repeat_the_exact_redirect_uri(server):
    verifier, challenge = pkce_pair()
    code = query_of(consent(server, "microsoft", authorization_params("microsoft", challenge)))["code"]
    response = token_request(server, "microsoft", {"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": REDIRECT_URI + "/", "code_verifier": verifier})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert response.json()["error_description"].startswith("AADSTS50011")


def test_microsoft_id_token_under_a_tenant_id_matches_that_tenants_issuer(server):
    tenant_id = str(uuid.uuid4())
    token = sign_in(server, "microsoft", tenant=tenant_id)
    claims = verified_claims(server, "microsoft", token["id_token"], tenant_id)
    assert claims["tid"] == tenant_id
    assert claims["iss"] == metadata(server, "microsoft", tenant_id)["issuer"]
