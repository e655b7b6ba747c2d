"""Tests for the dev mailbox (certs, Maildir store, SMTP server) and the test SMTP peers.

Everything talks over real sockets on loopback with certificate
verification on: the self-signed certificate is the client's only CA.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import smtplib
import socket
import ssl
import stat
import threading
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from wizard.devmailbox import certs, store
from wizard.devmailbox.server import DevMailbox, find_free_port, run_forever

from conftest import skip_or_fail
from smtp_servers import silent_listener, start_test_server

TIMEOUT = 5


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return certs.ensure_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def client_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    cert, _ = tls_files
    return ssl.create_default_context(cafile=str(cert))


@pytest.fixture()
def dev_mailbox(tmp_path: Path, tls_files: tuple[Path, Path]):
    cert, key = tls_files
    with DevMailbox(tmp_path / "maildir", cert, key, port=0) as server:
        yield server


def make_message(subject: str = "Your HeiChat test email") -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Shop <shop@example.test>"
    message["To"] = "merchant@example.test"
    message["Message-ID"] = "<test-1@example.test>"
    message.set_content("Plain body ✓")
    message.add_alternative("<p>HTML body</p>", subtype="html")
    return message


def login_with(client: smtplib.SMTP, mechanism: str, user: str, password: str):
    """Run one AUTH mechanism and return (code, text) instead of raising.

    smtplib.login() tries several mechanisms and hides the first reply;
    choosing one keeps the server's real answer.
    """
    client.user, client.password = user, password
    authobject = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login}[mechanism]
    try:
        return client.auth(mechanism, authobject)
    except smtplib.SMTPAuthenticationError as error:
        return error.smtp_code, error.smtp_error


# --- certificates ---------------------------------------------------------


def test_cert_files_are_created_private_and_reused(tmp_path: Path) -> None:
    cert, key = certs.ensure_self_signed_cert(tmp_path / "tls", name="box")
    assert (cert.name, key.name) == ("box-cert.pem", "box-key.pem")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = cert.read_bytes()

    loaded = x509.load_pem_x509_certificate(first)
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert loaded.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = loaded.not_valid_after_utc - loaded.not_valid_before_utc
    assert lifetime == dt.timedelta(days=826)

    assert certs.ensure_self_signed_cert(tmp_path / "tls", name="box") == (cert, key)
    assert cert.read_bytes() == first


def test_cert_is_regenerated_when_expiring_soon(tmp_path: Path) -> None:
    cert, key = certs.ensure_self_signed_cert(tmp_path)
    private_key = serialization.load_pem_private_key(key.read_bytes(), password=None)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    expiring = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3))
        .sign(private_key, hashes.SHA256())
    )
    cert.write_bytes(expiring.public_bytes(serialization.Encoding.PEM))

    certs.ensure_self_signed_cert(tmp_path)
    renewed = x509.load_pem_x509_certificate(cert.read_bytes())
    assert renewed.not_valid_after_utc - now > dt.timedelta(days=800)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_corrupt_cert_is_replaced(tmp_path: Path) -> None:
    cert, key = certs.ensure_self_signed_cert(tmp_path)
    cert.write_text("not a certificate")
    certs.ensure_self_signed_cert(tmp_path)
    x509.load_pem_x509_certificate(cert.read_bytes())


# --- DevMailbox over real SMTP --------------------------------------------


def test_dev_mailbox_accepts_mail_after_starttls_and_login(
    dev_mailbox: DevMailbox, client_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mail.log")
    with smtplib.SMTP(dev_mailbox.host, dev_mailbox.port, timeout=TIMEOUT) as client:
        code, banner = client.ehlo()
        assert code == 250 and banner.startswith(b"heichat-dev-mailbox")
        client.starttls(context=client_context)
        client.ehlo()
        assert login_with(client, "PLAIN", "shop@example.test", "any-password")[0] == 235
        client.mail("shop@example.test")
        client.rcpt("merchant@example.test")
        client.rcpt("hidden-bcc@example.test")
        code, reply = client.data(make_message().as_bytes())

    assert code == 250
    text = reply.decode()
    assert text.startswith("2.0.0 Ok: queued as ")
    key = text.rsplit(" ", 1)[1]

    [listed] = store.list_messages(dev_mailbox.maildir)
    assert listed.key == key
    assert listed.subject == "Your HeiChat test email"
    assert listed.envelope_from == "shop@example.test"
    assert listed.envelope_to == ["merchant@example.test", "hidden-bcc@example.test"]
    assert listed.message_id == "<test-1@example.test>"
    assert listed.text_body == "Plain body ✓\n"
    assert listed.html_body == "<p>HTML body</p>\n"
    assert all(not name.lower().startswith("x-dev-mailbox") for name, _ in listed.headers)
    assert ("To", "merchant@example.test") in listed.headers
    assert listed.received_at.tzinfo is dt.UTC

    assert store.get_message(dev_mailbox.maildir, key) == listed
    # aiosmtpd's own login_data deprecation notice is filtered out.
    assert not [r for r in caplog.records if "login_data" in r.getMessage()]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_dev_mailbox_rejects_the_wrong_password_on_purpose(
    dev_mailbox: DevMailbox, client_context: ssl.SSLContext, mechanism: str
) -> None:
    with smtplib.SMTP(dev_mailbox.host, dev_mailbox.port, timeout=TIMEOUT) as client:
        client.starttls(context=client_context)
        client.ehlo()
        code, text = login_with(client, mechanism, "shop@example.test", "wrong-password")
    assert code == 535
    assert text.startswith(b"5.7.8 ")
    assert store.list_messages(dev_mailbox.maildir) == []


def test_dev_mailbox_refuses_auth_and_mail_before_starttls(dev_mailbox: DevMailbox) -> None:
    with smtplib.SMTP(dev_mailbox.host, dev_mailbox.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        blob = base64.b64encode(b"\0shop@example.test\0any-password").decode()
        assert client.docmd("AUTH", f"PLAIN {blob}")[0] == 530
        assert client.docmd("MAIL", "FROM:<shop@example.test>")[0] == 530


def test_dev_mailbox_requires_auth_after_starttls(
    dev_mailbox: DevMailbox, client_context: ssl.SSLContext
) -> None:
    with smtplib.SMTP(dev_mailbox.host, dev_mailbox.port, timeout=TIMEOUT) as client:
        client.starttls(context=client_context)
        client.ehlo()
        assert client.docmd("MAIL", "FROM:<shop@example.test>")[0] == 530


def test_dev_mailbox_answers_451_when_it_cannot_store(
    dev_mailbox: DevMailbox, client_context: ssl.SSLContext
) -> None:
    # A file where the Maildir's tmp/ folder should be makes delivery fail.
    (dev_mailbox.maildir / "tmp").rmdir()
    (dev_mailbox.maildir / "tmp").write_text("")
    with smtplib.SMTP(dev_mailbox.host, dev_mailbox.port, timeout=TIMEOUT) as client:
        client.starttls(context=client_context)
        client.login("shop@example.test", "pw")
        with pytest.raises(smtplib.SMTPDataError) as raised:
            client.send_message(make_message())
    assert raised.value.smtp_code == 451


def test_dev_mailbox_certificate_is_verified(dev_mailbox: DevMailbox) -> None:
    # Without the dev certificate as CA, a verifying client must refuse.
    with smtplib.SMTP(dev_mailbox.host, dev_mailbox.port, timeout=TIMEOUT) as client:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())


def test_dev_mailbox_on_ipv6_loopback(
    tmp_path: Path, tls_files: tuple[Path, Path], client_context: ssl.SSLContext
) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        skip_or_fail("no IPv6 loopback here")
    cert, key = tls_files
    with DevMailbox(tmp_path / "maildir", cert, key, host="::1", port=0) as server:
        with smtplib.SMTP("::1", server.port, timeout=TIMEOUT) as client:
            client.starttls(context=client_context)  # checks SAN IP ::1
            client.ehlo()
            assert login_with(client, "LOGIN", "a@example.test", "x")[0] == 235


def test_dev_mailbox_refuses_non_loopback_and_busy_port(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    with pytest.raises(ValueError, match="loopback"):
        DevMailbox(tmp_path, cert, key, host="0.0.0.0")
    with DevMailbox(tmp_path / "a", cert, key, port=0) as first:
        second = DevMailbox(tmp_path / "b", cert, key, port=first.port)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            second.start()
        assert not second.running


def test_run_forever_serves_until_stopped(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    lines: list[str] = []
    stop = threading.Event()
    free_port = find_free_port()
    runner = threading.Thread(
        target=run_forever,
        args=(tmp_path / "maildir", cert, key),
        kwargs={"port": free_port, "announce": lines.append, "stop_event": stop},
    )
    runner.start()
    try:
        for _ in range(100):
            if lines:
                break
            threading.Event().wait(0.02)
        assert lines and f"127.0.0.1:{free_port}" in lines[0]
        with smtplib.SMTP("127.0.0.1", free_port, timeout=TIMEOUT) as client:
            assert client.noop()[0] == 250
    finally:
        stop.set()
        runner.join(TIMEOUT)
    assert lines[-1] == "Dev mailbox stopped."


# --- store ----------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["../x", "..", ".", "", "a/b", "/etc/passwd", "new/x", "x:2,S", "..%2Fx", "\\x"]
)
def test_get_message_rejects_keys_that_could_escape(tmp_path: Path, key: str) -> None:
    maildir = tmp_path / "maildir"
    store.save_message(maildir, "a@example.test", ["b@example.test"], b"Subject: hi\r\n\r\nx")
    (maildir / "x").write_bytes(b"Subject: outside\r\n\r\nsecret")
    assert store.get_message(maildir, key) is None


def test_get_message_unknown_key_and_missing_maildir(tmp_path: Path) -> None:
    assert store.get_message(tmp_path / "nowhere", "1.M1P1Q1.host") is None
    assert store.list_messages(tmp_path / "nowhere") == []
    store.ensure_maildir(tmp_path / "box")
    assert store.get_message(tmp_path / "box", "1.M1P1Q1.host") is None


def test_list_is_newest_first_with_limit_and_clear(tmp_path: Path) -> None:
    maildir = tmp_path / "maildir"
    keys = []
    for number in range(3):
        data = f"Subject: message {number}\r\n\r\nbody {number}\r\n".encode()
        keys.append(store.save_message(maildir, "a@example.test", ["b@example.test"], data))
        # Distinct mtimes even on coarse filesystems.
        path = next((maildir / "new").glob(keys[-1]))
        os.utime(path, (1_700_000_000 + number, 1_700_000_000 + number))

    listed = store.list_messages(maildir)
    assert [m.subject for m in listed] == ["message 2", "message 1", "message 0"]
    assert [m.key for m in store.list_messages(maildir, limit=2)] == keys[:0:-1]
    assert listed[0].received_at == dt.datetime.fromtimestamp(1_700_000_002, dt.UTC)

    store.clear(maildir)
    assert store.list_messages(maildir) == []


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"no headers at all, just text",
        b"\xff\xfe\x00binary\x00junk",
        b"Subject: =?bogus-charset?q?x?=\r\nContent-Type: text/plain; charset=no-such-charset"
        b"\r\n\r\nbody \xe9",
        b"Subject: b64\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nbroken",
        b"Date: yesterday-ish\r\nFrom: <<<\r\nTo: ,,,@\r\nMessage-ID: <\r\n\r\nhi",
        b"Subject: \xe9\xe8 raw 8bit\r\n\r\nhello",
    ],
)
def test_malformed_messages_do_not_crash(tmp_path: Path, data: bytes) -> None:
    key = store.save_message(tmp_path, "", [], data)
    [message] = store.list_messages(tmp_path)
    assert message.key == key
    assert store.get_message(tmp_path, key) == message
    assert message.envelope_to == []
    assert message.text_body is not None or message.html_body is not None or (
        "multipart" in data.decode("latin-1")
    )


def test_malformed_headers_are_shown_as_sent(tmp_path: Path) -> None:
    # The default email policy would "repair" these into "<>"; a debugging
    # inbox must show what the sender really wrote.
    data = b"From: <<<\r\nDate: yesterday-ish\r\nSubject: =?utf-8?q?H=C3=A9llo?=\r\n\r\nhi"
    message = store.get_message(tmp_path, store.save_message(tmp_path, "a@x.test", [], data))
    assert message is not None
    assert (message.from_header, message.date_header) == ("<<<", "yesterday-ish")
    assert message.subject == "Héllo"


def test_envelope_values_cannot_inject_headers(tmp_path: Path) -> None:
    key = store.save_message(
        tmp_path, "a@example.test\r\nBcc: evil@example.test", ["b@example.test"], b"\r\nbody"
    )
    message = store.get_message(tmp_path, key)
    assert message is not None
    assert message.envelope_from == "a@example.test Bcc: evil@example.test"
    assert message.headers == []


# --- test SMTP peers (tests/smtp_servers.py) ------------------------------


def test_starttls_test_server_login_and_send(
    tls_files: tuple[Path, Path], client_context: ssl.SSLContext
) -> None:
    cert, key = tls_files
    with start_test_server("starttls", password="app-pass", cert=cert, key=key) as server:
        with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT) as client:
            client.ehlo()
            assert not client.has_extn("auth")
            client.starttls(context=client_context)
            client.login("merchant@example.test", "app-pass")
            client.send_message(make_message(), to_addrs=["customer@example.test"])
    [received] = server.messages
    assert received.envelope_from == "shop@example.test"
    assert received.envelope_to == ["customer@example.test"]
    assert received.message["Subject"] == "Your HeiChat test email"
    assert received.data.startswith(b"Subject: ")
    assert server.auth_attempts and server.auth_attempts[-1][1] == "merchant@example.test"
    assert all("app-pass" not in repr(attempt) for attempt in server.auth_attempts)


def test_ssl_test_server_login_and_send(
    tls_files: tuple[Path, Path], client_context: ssl.SSLContext
) -> None:
    cert, key = tls_files
    with start_test_server("ssl", password="app-pass", cert=cert, key=key) as server:
        with smtplib.SMTP_SSL(
            server.host, server.port, timeout=TIMEOUT, context=client_context
        ) as client:
            client.ehlo()
            assert client.has_extn("auth")
            assert not client.has_extn("starttls")
            client.login("merchant@example.test", "app-pass")
            client.send_message(make_message("over implicit TLS"))
    assert [m.message["Subject"] for m in server.messages] == ["over implicit TLS"]


def test_plain_test_server_offers_neither_starttls_nor_auth(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with start_test_server("plain", cert=cert, key=key) as server:
        with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
            assert not client.has_extn("auth")
            client.send_message(make_message("relayed"))
    assert [m.message["Subject"] for m in server.messages] == ["relayed"]


@pytest.mark.parametrize(
    ("mode", "auth_reply", "expected_code", "expected_text"),
    [
        ("starttls", None, 535, b"5.7.8 Username and Password not accepted"),
        (
            "starttls",
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
            535,
            b"5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
        ),
        ("ssl", "534 5.7.9 Application-specific password required", 534, b"5.7.9 Application"),
    ],
)
def test_test_server_wrong_credentials_get_configured_reply(
    tls_files: tuple[Path, Path],
    client_context: ssl.SSLContext,
    mode: str,
    auth_reply: str | None,
    expected_code: int,
    expected_text: bytes,
) -> None:
    cert, key = tls_files
    with start_test_server(
        mode, password="right", cert=cert, key=key, auth_reply=auth_reply
    ) as server:
        if mode == "ssl":
            client = smtplib.SMTP_SSL(
                server.host, server.port, timeout=TIMEOUT, context=client_context
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
            client.starttls(context=client_context)
        with client:
            client.ehlo()
            code, text = login_with(client, "PLAIN", "merchant@example.test", "wrong")
            assert (code, text[: len(expected_text)]) == (expected_code, expected_text)
            # Right password, wrong user is refused too: both must match.
            code, _ = login_with(client, "LOGIN", "someone@example.test", "right")
            assert code == expected_code
    assert server.auth_attempts == [
        ("PLAIN", "merchant@example.test"),
        ("LOGIN", "someone@example.test"),
    ]


def test_test_server_data_reply_rejects_after_data(
    tls_files: tuple[Path, Path], client_context: ssl.SSLContext
) -> None:
    cert, key = tls_files
    reply = "550 5.7.1 Sender address is not a verified identity"
    with start_test_server("starttls", password="p", cert=cert, key=key, data_reply=reply) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=TIMEOUT) as client:
            client.starttls(context=client_context)
            client.login("merchant@example.test", "p")
            with pytest.raises(smtplib.SMTPDataError) as raised:
                client.send_message(make_message())
    assert raised.value.smtp_code == 550
    assert srv.messages == []


def test_starttls_client_on_implicit_tls_port_times_out() -> None:
    with silent_listener() as port:
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            smtplib.SMTP("127.0.0.1", port, timeout=0.2)


def test_unknown_mode_is_refused(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with pytest.raises(ValueError, match="mode"):
        start_test_server("tls", cert=cert, key=key)
