"""Authlib's authorization server, configured for one flavour.

``FlavourAuthorizationServer`` ties Authlib's components to a flavour and the store:
the authorization-code grant with PKCE S256 required and the OpenID ID token, the
refresh-token grant (rotating or not, as the flavour says), RFC 7009 revocation where
the flavour has it, opaque access tokens with the store's lifetime, and token errors
worded as the provider words them.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
import time
import uuid

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Error, scope_to_list
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, g

from .claims import id_token_claims
from .flavours import Flavour
from .keys import SigningKey
from .records import CLIENT_AUTH_METHODS, Account, AuthorizationCode, Grant, RegisteredClient
from .store import SigninStore
from .urls import id_token_issuer

__all__ = ["FlavourAuthorizationServer"]

AADSTS_CODE = re.compile(r"^AADSTS(\d+):")


def _opaque_token(**_context) -> str:
    return secrets.token_urlsafe(32)


class FlavourAuthorizationServer(AuthorizationServer):
    """One flavour's authorization, token and revocation endpoints over the shared store."""

    def __init__(self, app: Flask, flavour: Flavour, store: SigninStore, key: SigningKey) -> None:
        super().__init__()
        self.flavour = flavour
        self.store = store
        self.init_app(app)
        self.scopes_supported = list(flavour.scopes_supported)
        self.register_token_generator("default", BearerTokenGenerator(
            access_token_generator=_opaque_token,
            refresh_token_generator=_opaque_token,
            expires_generator=lambda client, grant_type: store.access_token_lifetime,
        ))
        self.register_grant(CodeGrant, [RequiredS256Challenge(), SigninOpenIDCode(flavour, key)])
        self.register_grant(RefreshGrant)
        if flavour.revocation_path:
            self.register_endpoint(Revocation)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.store.get_client(client_id)

    def save_token(self, token: dict, request) -> None:
        """Keep the tokens just issued: a new grant for a code, more tokens on it for a refresh."""
        if request.authorization_code is not None:
            record = request.authorization_code
            scopes = scope_to_list(token.get("scope") or record.scope)
            grant = self.store.open_grant(request.form["code"], record, token, client_name=request.client.name,
                                          sends_mail=self.flavour.smtp_scope in scopes)
            if grant is None:
                raise InvalidGrantError("Invalid 'code' in request.")
        elif request.refresh_token is not None:
            if not self.store.record_refresh(request.refresh_token.grant_id, request.form["refresh_token"], token):
                raise InvalidGrantError()

    def handle_error_response(self, request, error: OAuth2Error):
        # Errors redirected to the client keep Authlib's words; the ones answered
        # directly (token and revocation endpoints) take the provider's.
        if error.redirect_uri:
            return super().handle_error_response(request, error)
        worded = self.flavour.token_error_description(error.error, error.description or "")
        if worded:
            error.description = worded
        status, body, headers = error(self.get_error_uri(request, error))
        body = dict(body)
        if match := AADSTS_CODE.match(body.get("error_description", "")):
            # Microsoft's error answers carry the code as a number, and ids to quote to support.
            body.update(error_codes=[int(match.group(1))], trace_id=str(uuid.uuid4()),
                        correlation_id=str(uuid.uuid4()),
                        timestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"))
        return self.handle_response(status, body, headers)


class CodeGrant(AuthorizationCodeGrant):
    """The authorization-code grant over the store; a refresh token only when the flavour grants one."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(CLIENT_AUTH_METHODS)
    server: FlavourAuthorizationServer

    def save_authorization_code(self, code: str, request) -> None:
        data = request.payload.data
        store, flavour = self.server.store, self.server.flavour
        store.save_code(code, AuthorizationCode(
            client_id=request.client.get_client_id(),
            flavour=flavour.name,
            tenant=g.get("tenant"),
            account_email=request.user.email,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            nonce=data.get("nonce"),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            offline=flavour.wants_refresh_token(scope_to_list(request.scope), data.get("access_type")),
            auth_time=int(store.now()),
            expires_at=store.code_expiry(),
        ))

    def query_authorization_code(self, code: str, client: RegisteredClient) -> AuthorizationCode | None:
        return self.server.store.find_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        # Nothing left to do: saving the tokens redeemed the code (SigninStore.open_grant).
        pass

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Account:
        return Account(authorization_code.account_email)

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        offline = self.request.authorization_code.offline
        return super().generate_token(user=user, scope=scope, grant_type=grant_type, expires_in=expires_in,
                                      include_refresh_token=include_refresh_token and offline)


class RefreshGrant(RefreshTokenGrant):
    """The refresh-token grant: rotation as the flavour says, dead tokens get invalid_grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(CLIENT_AUTH_METHODS)
    server: FlavourAuthorizationServer

    @property
    def INCLUDE_NEW_REFRESH_TOKEN(self) -> bool:  # noqa: N802 - Authlib's name for the switch
        return self.server.flavour.rotate_refresh_tokens

    def authenticate_refresh_token(self, refresh_token: str) -> Grant | None:
        return self.server.store.find_refresh_grant(refresh_token)

    def authenticate_user(self, grant: Grant) -> Account:
        return Account(grant.account_email)

    def revoke_old_credential(self, grant: Grant) -> None:
        # Nothing left to do: recording the new refresh token replaced the old one.
        pass


class RequiredS256Challenge(CodeChallenge):
    """PKCE for every client, confidential ones too, and only the S256 method.

    A missing or wrong verifier is ``invalid_grant``, as Google and Microsoft answer it.
    """

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidGrantError("Missing 'code_verifier'.")
        try:
            return super().validate_code_verifier(grant, result)
        except InvalidRequestError as error:
            raise InvalidGrantError(error.description) from error


class SigninOpenIDCode(OpenIDCode):
    """The ID token of a code exchange: RS256 with the start-up key, claims as the flavour has them."""

    def __init__(self, flavour: Flavour, key: SigningKey) -> None:
        super().__init__(require_nonce=False)
        self.flavour = flavour
        self.key = key

    def exists_nonce(self, nonce: str, request) -> bool:
        # The client checks the nonce it sent against the ID token; the server
        # keeps no history of nonces.
        return False

    def resolve_client_private_key(self, client):
        return self.key.private_key

    def get_client_algorithm(self, client) -> str:
        return self.key.algorithm

    def get_encode_header(self, client) -> dict:
        return {"alg": self.key.algorithm, "kid": self.key.kid, "typ": "JWT"}

    def get_compatible_claims(self, request) -> dict:
        code: AuthorizationCode = request.authorization_code
        return id_token_claims(
            self.flavour,
            issuer=id_token_issuer(self.flavour, code.tenant, code.account_email),
            client_id=request.client.get_client_id(),
            account_email=code.account_email,
            tenant=code.tenant,
            scopes=scope_to_list(code.scope),
            # The real clock, not the store's: clients check exp against their own.
            now=int(time.time()),
        )

    def generate_user_info(self, user: Account, scope: str) -> dict:
        # Everything is in get_compatible_claims already.
        return {}


class Revocation(RevocationEndpoint):
    """RFC 7009 revocation: revoking any token of a grant ends the whole grant, as at Google.

    Where the flavour takes the token alone (Google), a request without client
    credentials is accepted; credentials that are sent are still checked.
    """

    CLIENT_AUTH_METHODS = list(CLIENT_AUTH_METHODS)
    server: FlavourAuthorizationServer

    def authenticate_endpoint_client(self, request):
        if not self.server.flavour.revocation_client_auth and not _sends_client_credentials(request):
            request.client = None
            return None
        return super().authenticate_endpoint_client(request)

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        grant = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if grant is not None and client is not None and not grant.check_client(client):
            raise InvalidGrantError()
        return grant

    def query_token(self, token_string: str, token_type_hint: str | None) -> Grant | None:
        return self.server.store.find_grant_by_token(token_string, token_type_hint)

    def revoke_token(self, token: Grant, request) -> None:
        self.server.store.revoke_grant(token.grant_id)


def _sends_client_credentials(request) -> bool:
    return bool(request.headers.get("Authorization") or request.form.get("client_secret"))
