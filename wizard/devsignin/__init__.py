"""The local test sign-in server: an OpenID provider on loopback for development and tests.

It lets a newcomer walk "Sign in with Google / Microsoft" end to end with no outside
account, and it is the tests' authorization server. Built from Authlib's server
components, it offers three flavours, each under its own path prefix with its own
discovery document, mimicking the real providers' quirks (``flavours.toml``):
``google``, ``microsoft`` (with a tenant in the path) and ``local``.

- ``store``: ``SigninStore``, the thread-safe memory of clients, codes and grants;
  the local test mailbox asks it ``check_access_token(username, token)``;
- ``runner``: ``start_signin_server(...) -> RunningSigninServer``;
- ``app``: the small Flask app of its own (consent page, home page, endpoints);
- ``flavours``, ``claims``, ``keys``, ``records``, ``oauth_server``, ``urls``: the parts.

This package sits in the top layer beside the commands: it imports Flask and Authlib,
and nothing below it imports it — the mailbox gets a store handed to it.
"""
from .runner import RunningSigninServer, start_signin_server
from .store import SigninStore

__all__ = ["RunningSigninServer", "SigninStore", "start_signin_server"]
