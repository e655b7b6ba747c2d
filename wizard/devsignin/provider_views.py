"""One flavour's endpoints: discovery, the consent page, token, JWKS and revocation.

``provider_blueprint(flavour)`` builds the flavour's blueprint under its prefix
(Microsoft's carries the tenant). The consent page checks the client and the
redirect URI itself first: a request that cannot name a trustworthy redirect URI
gets an error page here, never a redirect.
"""
from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error
from email_validator import EmailNotValidError, validate_email
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request

from .flavours import Flavour
from .records import Account
from .urls import metadata_issuer, public_url

__all__ = ["provider_blueprint"]


def provider_blueprint(flavour: Flavour) -> Blueprint:
    """The blueprint of one flavour's endpoints, named after the flavour."""
    bp = Blueprint(flavour.name, __name__, url_prefix=flavour.prefix)

    @bp.url_value_preprocessor
    def take_tenant(endpoint, values):
        g.tenant = values.pop("tenant", None) if values else None

    @bp.url_defaults
    def keep_tenant(endpoint, values):
        if flavour.has_tenants:
            values.setdefault("tenant", g.get("tenant") or "common")

    @bp.get(flavour.metadata_path)
    def metadata():
        return jsonify(_discovery_document(flavour))

    @bp.get(flavour.jwks_path)
    def jwks():
        return jsonify(current_app.extensions["devsignin"].key.jwks())

    @bp.route(flavour.authorization_path, methods=("GET", "POST"))
    def authorize():
        return _consent(flavour)

    @bp.post(flavour.token_path)
    def token():
        return _server(flavour).create_token_response()

    if flavour.revocation_path:
        @bp.post(flavour.revocation_path)
        def revoke():
            return _server(flavour).create_endpoint_response("revocation")

    return bp


def _server(flavour: Flavour):
    return current_app.extensions["devsignin"].servers[flavour.name]


def _discovery_document(flavour: Flavour) -> dict:
    document = {
        "issuer": metadata_issuer(flavour, g.get("tenant")),
        "authorization_endpoint": public_url(f"{flavour.name}.authorize"),
        "token_endpoint": public_url(f"{flavour.name}.token"),
        "jwks_uri": public_url(f"{flavour.name}.jwks"),
        "scopes_supported": list(flavour.scopes_supported),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public" if flavour.subject_style == "digits" else "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["iss", "aud", "sub", "email", "nonce", "iat", "exp", "auth_time",
                             *flavour.extra_id_token_claims],
    }
    if flavour.revocation_path:
        document["revocation_endpoint"] = public_url(f"{flavour.name}.revoke")
        document["revocation_endpoint_auth_methods_supported"] = ["client_secret_post", "client_secret_basic"]
    return document


def _consent(flavour: Flavour):
    client = current_app.extensions["devsignin"].store.get_client(request.args.get("client_id"))
    redirect_uri = request.args.get("redirect_uri")
    if client is None:
        return _error_page(flavour, "unknown_client")
    if not redirect_uri:
        return _error_page(flavour, "missing_redirect_uri")
    if not client.check_redirect_uri(redirect_uri):
        return _error_page(flavour, "redirect_uri_mismatch")

    server = _server(flavour)
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:
            return server.handle_error_response(None, error)
        return _error_page(flavour, "other", detail=error.description)

    if request.method == "GET":
        return _consent_page(flavour, client, email=request.args.get("login_hint", ""))

    decision = request.form.get("decision")
    if decision == "allow":
        try:
            email = validate_email(request.form.get("email", "").strip(), check_deliverability=False,
                                   allow_smtputf8=False).normalized
        except EmailNotValidError:
            return _consent_page(flavour, client, email=request.form.get("email", ""),
                                 email_error="Enter the email address of the account to sign in, like name@example.com.")
        return server.create_authorization_response(grant_user=Account(email), grant=grant)
    if decision == "admin_consent" and flavour.offers_admin_consent_decline:
        description = flavour.admin_consent_description.format(client_id=client.client_id, client_name=client.name)
        return _error_redirect(grant, flavour.admin_consent_error, description)
    return _error_redirect(grant, "access_denied", flavour.access_denied_description)


def _consent_page(flavour: Flavour, client, *, email: str, email_error: str | None = None):
    scopes = [(scope, flavour.describe_scope(scope)) for scope in request.args.get("scope", "").split()]
    response = current_app.make_response(render_template(
        "devsignin/consent.html", flavour=flavour, client=client, scopes=scopes, email=email,
        email_error=email_error, redirect_uri=request.args["redirect_uri"], action=request.full_path,
    ))
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_redirect(grant, error: str, description: str | None):
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    if state := grant.request.payload.state:
        params.append(("state", state))
    return redirect(add_params_to_uri(grant.redirect_uri, params), code=302)


def _error_page(flavour: Flavour, kind: str, *, detail: str | None = None):
    message = flavour.authorize_errors.get(kind, flavour.authorize_errors["other"])
    return render_template("devsignin/error.html", flavour=flavour, message=message, detail=detail), 400
