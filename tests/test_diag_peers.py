"""Peers for the diag tests: certificates made with ``cryptography`` for each
way a certificate can be wrong, and an SMTP peer that hangs up at a chosen
stage (after TLS too). Real sockets on 127.0.0.1."""
from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wizard.devmailbox.certs import server_tls_context

NOW = dt.datetime.now(dt.UTC)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{common} Org"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def make_ca(folder: Path, common: str = "Diag Test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=30)).not_valid_after(NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path, _ = _write(folder, common.replace(" ", "-"), cert, key)
    return cert, key, path


def make_leaf(folder: Path, stem: str, ca=None, *, names=("localhost",), not_before=None, not_after=None):
    """A server certificate for ``names``, signed by ``ca`` (``(cert, key, path)``) or self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_cert, issuer_key = (ca[0], ca[1]) if ca else (None, key)
    subject = _name(names[0])
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(issuer_cert.subject if issuer_cert else subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - dt.timedelta(days=1))
            .not_valid_after(not_after or NOW + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(issuer_key, hashes.SHA256()))
    return _write(folder, stem, cert, key)


@contextlib.contextmanager
def hang_up_peer(close_at: str, tls_files: tuple[Path, Path] | None = None):
    """An SMTP peer that closes the connection at ``close_at``: "greeting"
    (right after accepting), a verb ("EHLO", "STARTTLS", "AUTH", "MAIL"), or
    "handshake" (agrees to STARTTLS, then closes instead of TLS)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    stopping = threading.Event()
    context = server_tls_context(*tls_files) if tls_files else None

    def serve(conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(OSError), conn:
            if close_at == "greeting":
                return
            conn.sendall(b"220 hangup.example ESMTP\r\n")
            stream = conn
            reader = stream.makefile("rb")
            tls = False
            while not stopping.is_set():
                line = reader.readline()
                if not line:
                    return
                verb = line.decode("ascii", "replace").split(" ")[0].strip().upper()
                if verb == close_at:
                    stream.close()
                    return
                if verb == "EHLO":
                    features = "250-hangup.example\r\n" + ("250 AUTH PLAIN LOGIN\r\n" if tls else "250 STARTTLS\r\n")
                    stream.sendall(features.encode())
                elif verb == "STARTTLS":
                    stream.sendall(b"220 go ahead\r\n")
                    if close_at == "handshake":
                        stream.close()
                        return
                    stream = context.wrap_socket(conn, server_side=True)
                    reader = stream.makefile("rb")
                    tls = True
                elif verb == "AUTH":
                    stream.sendall(b"235 2.7.0 ok\r\n")
                elif verb == "QUIT":
                    stream.sendall(b"221 bye\r\n")
                    return
                else:
                    stream.sendall(b"250 ok\r\n")

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        thread.join(timeout=2)
        listener.close()
