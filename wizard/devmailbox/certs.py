"""Self-signed TLS material for the local development mailbox.

The dev mailbox speaks STARTTLS so the wizard exercises the same code path it
uses against real providers, with certificate verification left ON.  The
certificate made here is its own trust anchor: clients pass it as ``cafile``
to ``ssl.create_default_context`` and verification succeeds for ``localhost``,
``127.0.0.1`` and ``::1``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ensure_self_signed_cert", "server_tls_context"]

VALIDITY = dt.timedelta(days=825)
# Regenerate a little before expiry so a long-running dev box never presents
# a certificate that lapses mid-session.
RENEW_BEFORE = dt.timedelta(days=7)
# Backdating absorbs clock skew between the machine that made the cert and a
# client (e.g. a container with a slightly different clock).
BACKDATE = dt.timedelta(days=1)


def ensure_self_signed_cert(directory: Path, name: str = "dev-mailbox") -> tuple[Path, Path]:
    """Return ``(cert_path, key_path)``, creating or renewing them as needed.

    Existing files are reused when they load, belong together and the
    certificate is valid for at least another week; otherwise a new key and
    certificate replace them.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}-cert.pem"
    key_path = directory / f"{name}-key.pem"

    if _is_reusable(cert_path, key_path):
        return cert_path, key_path

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_certificate(key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Key first: a crash between the two writes then leaves a cert/key pair
    # that fails the match check and is regenerated next time.
    _write_atomically(key_path, key_pem, mode=0o600)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Build a server-side TLS context from a PEM certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # TLS 1.2 is the floor every mail provider enforces; matching it keeps the
    # dev mailbox from accepting clients that would fail in production.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return context


def _is_reusable(cert_path: Path, key_path: Path) -> bool:
    """True when both files exist, match, and the cert is not near expiry."""
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError):
        # Corrupt, truncated or password-protected files: start over rather
        # than fail the dev server's start-up.
        return False
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return False
    now = dt.datetime.now(dt.UTC)
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


def _build_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        # CA=True (critical) lets the very same certificate be the trust
        # anchor passed as cafile; OpenSSL's strict mode also wants
        # keyCertSign and the key identifiers on such a certificate.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` via a sibling temp file created with ``mode``.

    Creating the file with its final mode (rather than chmod afterwards)
    means the private key is never readable by others, not even briefly;
    the rename means readers never see a half-written PEM.
    """
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp_path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
