"""Signing in to a mailbox provider with OAuth 2.0 (no Flask, no database).

``providers`` reads which sign-in providers this installation has (the data
in ``catalogue/oauth.toml`` plus the operator's client registrations),
``outbound`` is the one HTTP client the flow uses (timeouts, no redirects,
only the provider's own hosts), and ``flow`` runs the authorization code
flow with PKCE and state, refreshes and revokes tokens. What is stored, and
when a connection needs signing in again, lives in ``wizard.setup.sign_in``.
"""
