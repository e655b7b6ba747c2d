"""Runs the sign-in server on loopback in a daemon thread (werkzeug's threaded server).

``start_signin_server`` refuses any address but a loopback one: this is a
development tool whose consent page signs anyone in as anyone. The request log
names paths only — never query strings, where a token could travel.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_signin_app
from .store import DEFAULT_ACCESS_TOKEN_LIFETIME, SigninStore

__all__ = ["RunningSigninServer", "start_signin_server"]

log = logging.getLogger(__name__)


class _PathOnlyRequestHandler(WSGIRequestHandler):
    """Logs method, path and status; the query string stays out of the log."""

    def log_request(self, code="-", size="-") -> None:
        log.info("%s %s %s", self.command, urlsplit(self.path).path, getattr(code, "value", code))


class RunningSigninServer:
    """A sign-in server serving in the background; stop it with ``stop()`` or ``with``."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread, store: SigninStore, url: str) -> None:
        self._server = server
        self._thread = thread
        self.store = store
        self.url = url
        self.app = server.app

    def metadata_url(self, flavour: str, tenant: str = "common") -> str:
        """The discovery document's URL, e.g. ``…/microsoft/common/v2.0/.well-known/openid-configuration``."""
        return self.app.extensions["devsignin"].metadata_url(flavour, tenant)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> RunningSigninServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def start_signin_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
    clients: Iterable[Mapping] = (),
    store: SigninStore | None = None,
) -> RunningSigninServer:
    """Serve a sign-in server on ``host:port`` (port 0: any free one) and return at once.

    ``clients`` are mappings with ``register_client``'s arguments. ``store`` replaces
    the fresh store (then ``access_token_lifetime`` and ``clients`` are the store's own
    business).
    """
    address = _loopback_address(host)
    store = store or SigninStore(clients, access_token_lifetime=access_token_lifetime)
    app = create_signin_app(store)
    server = make_server(address, port, app, threaded=True, request_handler=_PathOnlyRequestHandler)
    shown_host = f"[{address}]" if ":" in address else address
    url = f"http://{shown_host}:{server.server_port}"
    app.extensions["devsignin"].base_url = url
    thread = threading.Thread(target=server.serve_forever, name=f"devsignin-{server.server_port}", daemon=True)
    thread.start()
    return RunningSigninServer(server, thread, store, url)


def _loopback_address(host: str) -> str:
    # "localhost" is taken as 127.0.0.1 rather than resolved.
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"the sign-in server binds a loopback IP address only, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the sign-in server is a development tool: it binds loopback only, not {host}")
    return str(address)
