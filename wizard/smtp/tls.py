"""One TLS client context per CA configuration, shared by every SMTP client.

``ssl.create_default_context()`` reads the whole system CA store each time
(tens of milliseconds); Test Connection, the test email and the outbox
sender all take their context from :func:`tls_context`, which builds it once
per configuration (system CAs plus an optional extra PEM bundle) and reuses
it. An ``SSLContext`` may be shared between threads for ``wrap_socket``.
Verification is always on: hostname checked, CERT_REQUIRED.
"""
from __future__ import annotations

import os
import socket
import ssl
import threading

_contexts: dict[tuple, ssl.SSLContext] = {}
_lock = threading.Lock()


def _bundle_key(ca_file: str | None) -> tuple:
    if not ca_file:
        return (None,)
    path = os.path.abspath(ca_file)
    try:
        stat = os.stat(path)
    except OSError:
        # Let load_verify_locations raise its own clear error, uncached.
        return (path, None)
    # A bundle replaced on disk gets a fresh context.
    return (path, stat.st_mtime_ns, stat.st_size)


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """System CAs (plus the PEM bundle ``ca_file``), hostname checked: never unverified TLS."""
    key = _bundle_key(ca_file)
    context = _contexts.get(key)
    if context is not None:
        return context
    with _lock:
        context = _contexts.get(key)
        if context is None:
            context = ssl.create_default_context()
            if ca_file:
                context.load_verify_locations(cafile=ca_file)
            if key != (None,) and key[1] is None:
                return context  # a bundle that could not be read: not worth keeping
            _contexts[key] = context
    return context


def presented_certificate(sock: socket.socket, host: str) -> bytes | None:
    """The certificate (DER) the peer on ``sock`` presents, read without verifying it.

    Only to explain why verification failed: the connection is closed right
    after the handshake and nothing is sent over it.
    """
    inspect = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    inspect.check_hostname = False
    inspect.verify_mode = ssl.CERT_NONE
    with inspect.wrap_socket(sock, server_hostname=host) as wrapped:
        return wrapped.getpeercert(binary_form=True)


def wrap_verified(sock: socket.socket, host: str, ca_file: str | None) -> ssl.SSLSocket:
    """``sock`` wrapped in verified TLS for ``host``.

    A certificate that fails verification carries the peer's address
    (``peer_address``) so the session can look at what the server presented.
    """
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
    try:
        return tls_context(ca_file).wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        exc.peer_address = peer
        raise
