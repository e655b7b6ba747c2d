"""A real Dovecot IMAP server on 127.0.0.1 for the tests, from a config file of our own.

``start_dovecot`` writes a configuration into a temporary folder and runs
``dovecot -c CONF`` (as root: Dovecot drops to its own users). It listens on
two free ports: ``imaps`` (implicit TLS) and ``imap`` (STARTTLS, no
plaintext login before it), both with the tests' self-signed certificate.
Users come from a passwd-file with ``{PLAIN}`` passwords; mail is kept as
Maildir under ``DIR/home/<user>``.

Two traps, both real on Debian's 2.3: the folder must be traversable by the
``dovecot`` user (mode 0755, where ``mkdtemp`` gives 0700 and logins fail
with "Temporary authentication failure"), and ``first_valid_uid`` must let
the ``dovecot`` user's uid through, or the login works but mail access fails.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Dovecot:
    folder: Path
    config: Path
    imaps_port: int
    imap_port: int
    users: dict[str, str]
    ca_file: Path

    host = "127.0.0.1"

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def mailbox(self, user: str):
        """An IMAPClient logged in as ``user`` over TLS (the tests' own client, for APPEND and checks)."""
        import ssl

        from imapclient import IMAPClient

        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = IMAPClient(self.host, port=self.imaps_port, ssl=True, ssl_context=context, timeout=10)
        client.login(user, self.users[user])
        return client


def _wait_for_port(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.02)
    return False


@contextlib.contextmanager
def start_dovecot(cert: Path, key: Path, users: dict[str, str]):
    """Run Dovecot for the ``with`` block; ``users``: name -> password."""
    folder = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
    folder.chmod(0o755)
    for part in ("run", "state", "home"):
        (folder / part).mkdir(mode=0o755)
    shutil.chown(folder / "home", "dovecot", "dovecot")
    (folder / "users").write_text("".join(f"{name}:{{PLAIN}}{password}\n" for name, password in users.items()))
    (folder / "users").chmod(0o644)
    # Dovecot reads the key as root before dropping privileges; a private copy keeps the tests' one untouched.
    shutil.copy(cert, folder / "cert.pem")
    shutil.copy(key, folder / "key.pem")
    (folder / "key.pem").chmod(0o600)
    imaps_port, imap_port = free_port(), free_port()
    config = folder / "dovecot.conf"
    config.write_text(CONFIG.format(base=folder, cert=folder / "cert.pem", key=folder / "key.pem",
                                    imaps_port=imaps_port, imap_port=imap_port))
    server = Dovecot(folder, config, imaps_port, imap_port, dict(users), Path(cert))
    # The daemon's children keep inherited pipes open: its output goes to a file, never a pipe.
    with open(folder / "start.log", "wb") as output:
        subprocess.run([DOVECOT, "-c", str(config)], check=True, stdin=subprocess.DEVNULL, stdout=output,
                       stderr=subprocess.STDOUT, timeout=30)
    try:
        deadline = time.monotonic() + 10
        if not (_wait_for_port(imaps_port, deadline) and _wait_for_port(imap_port, deadline)):
            raise RuntimeError("Dovecot did not start listening:\n" + server.log())
        yield server
    finally:
        subprocess.run([DOVECOT, "-c", str(config), "stop"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        _wait_for_exit(folder / "run" / "master.pid")
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_exit(pid_file: Path, seconds: float = 10.0) -> None:
    """Until the master process named in ``pid_file`` is gone (it removes the file itself)."""
    deadline = time.monotonic() + seconds
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


# -- the pytest fixture ----------------------------------------------------------------------

import pytest  # noqa: E402

from failure_peers import SMTP_PASSWORD, SMTP_USERNAME  # noqa: E402

# A second mailbox, for the store-isolation tests.
OTHER_USERNAME, OTHER_PASSWORD = "owner@greenleaf.example.com", "Other-mailbox-secret-0815"


@pytest.fixture(scope="module")
def dovecot(certs):
    """A real Dovecot for the module: the merchant's mailbox (the SMTP test login) and another one."""
    if DOVECOT is None or os.geteuid() != 0:
        from conftest import skip_or_fail

        skip_or_fail("Dovecot is not installed or the tests do not run as root (apt-get install -y dovecot-imapd)")
    with start_dovecot(certs[0], certs[1], {SMTP_USERNAME: SMTP_PASSWORD, OTHER_USERNAME: OTHER_PASSWORD}) as server:
        yield server


def empty_mailbox(server: Dovecot, user: str) -> None:
    """Delete every message of ``user``'s INBOX (the tests' own client, never HeiChat's)."""
    client = server.mailbox(user)
    try:
        client.select_folder("INBOX")
        uids = client.search(["ALL"])
        if uids:
            client.delete_messages(uids)
            client.expunge()
    finally:
        client.logout()
