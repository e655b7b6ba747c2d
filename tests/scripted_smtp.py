"""A scripted SMTP peer for replies aiosmtpd will not give: a 421 or 554
banner, a server that hangs up after EHLO, one that never answers EHLO, or
one that agrees to STARTTLS and then speaks plain text.

A real socket server on 127.0.0.1 in a thread; each command's reply comes
from a script ``{"EHLO": "250 ok" | "close" | "silent" | "tls-garbage"}``.
"""
from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

DEFAULT_REPLIES = {
    "EHLO": "250-scripted.example\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN",
    "HELO": "250 scripted.example",
    "QUIT": "221 bye",
    "RSET": "250 ok",
    "NOOP": "250 ok",
}


@contextlib.contextmanager
def scripted_server(banner: str | None = "220 scripted.example ESMTP", replies: dict | None = None) -> Iterator[int]:
    """Yield the port of a server that follows ``replies`` (merged over the defaults)."""
    script = dict(DEFAULT_REPLIES, **(replies or {}))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    stopping = threading.Event()
    open_connections: list[socket.socket] = []

    def serve(connection: socket.socket) -> None:
        connection.settimeout(5)
        with contextlib.suppress(OSError):
            if banner is not None:
                connection.sendall(banner.encode() + b"\r\n")
            reader = connection.makefile("rb")
            while not stopping.is_set():
                line = reader.readline()
                if not line:
                    return
                verb = line.decode("ascii", "replace").strip().split(" ")[0].upper()
                action = script.get(verb, "502 5.5.2 command not recognised")
                if action == "close":
                    connection.close()
                    return
                if action == "silent":
                    stopping.wait(10)
                    return
                if action == "tls-garbage":
                    connection.sendall(b"220 go ahead\r\n")
                    connection.sendall(b"this is not a TLS handshake\r\n" * 4)
                    continue
                connection.sendall(action.encode() + b"\r\n")

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            open_connections.append(connection)
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        thread.join(timeout=2)
        listener.close()
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.close()
