"""Why a server's certificate was not trusted, in plain words.

When verification fails, the probe only knows OpenSSL's reason code. To say
*which* case it is — expired (and since when), not yet valid, self-signed or
from an unknown authority, issued for other names (and which) — the SMTP
session (``wizard.smtp.session``) opens one more connection to the same
address and reads the certificate the server presents (without trusting it
and without sending anything but EHLO/STARTTLS); this module describes it.
No credentials ever go over that connection.
"""
from __future__ import annotations

import ssl
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from wizard.catalogue.hints import LenientValues
from wizard.smtp.diagnosis_data import diagnosis_data

# OpenSSL's verification result codes (X509_V_ERR_*).
NOT_YET_VALID, EXPIRED = 9, 10
SELF_SIGNED, SELF_SIGNED_IN_CHAIN = 18, 19
NO_ISSUER_LOCALLY, CANNOT_VERIFY_LEAF, NO_ISSUER = 20, 21, 2
HOSTNAME_MISMATCH, IP_MISMATCH = 62, 64


def _texts() -> dict:
    return diagnosis_data()["certificate"]


def names_of(cert: x509.Certificate) -> list[str]:
    """The names a certificate covers (subjectAltName, else its common name)."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = san.get_values_for_type(x509.DNSName) + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return [str(n) for n in names]


def _issuer(cert: x509.Certificate) -> str:
    parts = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) or \
        cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(parts[0].value) if parts else cert.issuer.rfc4514_string()


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%d %B %Y, %H:%M UTC").lstrip("0")


def describe(code: int | None, reason: str, host: str, cert: x509.Certificate | None) -> str:
    """The plain-words explanation for verification result ``code``."""
    texts = _texts()
    values = {"host": host, "reason": reason}
    now = datetime.now(UTC)
    if cert is not None:
        values.update(not_after=_day(cert.not_valid_after_utc), not_before=_day(cert.not_valid_before_utc),
                      names=", ".join(names_of(cert)) or "no name at all", issuer=_issuer(cert))
    if code == EXPIRED or (cert is not None and code is None and cert.not_valid_after_utc < now):
        case = "expired"
    elif code == NOT_YET_VALID:
        case = "not_yet_valid"
    elif code in (SELF_SIGNED, SELF_SIGNED_IN_CHAIN) or (
            cert is not None and code in (NO_ISSUER_LOCALLY, CANNOT_VERIFY_LEAF) and cert.issuer == cert.subject):
        case = "self_signed"
    elif code in (NO_ISSUER_LOCALLY, CANNOT_VERIFY_LEAF, NO_ISSUER):
        case = "unknown_authority"
        values.setdefault("issuer", "an authority it does not know")
    elif code in (HOSTNAME_MISMATCH, IP_MISMATCH):
        case = "wrong_name"
        values.setdefault("names", "other names")
    else:
        case = "other"
    if case in {"expired", "not_yet_valid"} and cert is None:
        case = "other"
    return texts[case].format_map(LenientValues(values))


def explain_verification_error(exc: ssl.SSLCertVerificationError, target) -> str:
    """What ``exc`` means for ``target``, after a look at the certificate itself
    (``peer_certificate``, DER, fetched by ``wizard.smtp.session``)."""
    der = getattr(exc, "peer_certificate", None)
    cert = x509.load_der_x509_certificate(der) if der else None
    return describe(getattr(exc, "verify_code", None), exc.verify_message or str(exc), target.host, cert)
