"""Issue 9, item 14: files created private, no caching of signed-in pages, HSTS
behind https, and several processes creating a fresh database at once."""
from __future__ import annotations

import multiprocessing
import os
import stat

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from wizard import create_app
from wizard.db import make_engine

from conftest import BACKENDS, fresh_database, sign_up


def make_app(tmp_path, database_url, **config):
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url,
                       "SECRET_KEY": "k", "ENCRYPTION_KEYS": Fernet.generate_key().decode(), "DEV_MAILBOX": False,
                       **config})


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_instance_folder_and_sqlite_files_are_private(tmp_path):
    old_umask = os.umask(0o022)  # the usual default: without care, files come out world-readable
    try:
        app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DEV_MAILBOX": False})
    finally:
        os.umask(old_umask)
    try:
        merchant = sign_up(app.test_client())  # writes: the -wal file exists now
        assert merchant.get("/wizard").status_code in (200, 302)
        instance = tmp_path / "instance"
        assert mode(instance) == 0o700
        database = instance / "wizard.sqlite"
        assert mode(database) == 0o600
        for extra in ("wizard.sqlite-wal", "wizard.sqlite-shm", "secret_key", "encryption.key"):
            if (instance / extra).exists():
                assert mode(instance / extra) & 0o077 == 0, extra
    finally:
        app.extensions["db_engine"].dispose()


def test_signed_in_pages_are_not_cached(tmp_path, database_url):
    app = make_app(tmp_path, database_url)
    try:
        anonymous = app.test_client()
        assert "no-store" not in anonymous.get("/signin").headers.get("Cache-Control", "")
        merchant = sign_up(app.test_client())
        for url in ("/wizard/pre-chat-form", "/inbox", "/troubleshooting", "/contacts"):
            response = merchant.get(url)
            assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store", url
        assert "Strict-Transport-Security" not in merchant.get("/inbox").headers
    finally:
        app.extensions["db_engine"].dispose()


def test_hsts_when_the_public_site_is_https(tmp_path, database_url):
    app = make_app(tmp_path, database_url, PUBLIC_URL="https://chat.heichat.example")
    try:
        for response in (app.test_client().get("/signin"), app.test_client().get("/")):
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        app.extensions["db_engine"].dispose()
    plain = make_app(tmp_path / "plain", database_url, PUBLIC_URL="http://chat.heichat.example")
    try:
        assert "Strict-Transport-Security" not in plain.test_client().get("/signin").headers
    finally:
        plain.extensions["db_engine"].dispose()


def _bootstrap(url: str, barrier, results) -> None:
    from wizard.db import schema

    engine = make_engine(url)
    barrier.wait()
    try:
        schema.upgrade(engine)
        results.put("ok")
    except Exception as exc:  # reported to the test, which fails with it
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_schema_bootstraps_on_a_fresh_database(tmp_path, backend):
    processes_count = 6
    with fresh_database(backend, tmp_path) as url:
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(processes_count), context.Queue()
        processes = [context.Process(target=_bootstrap, args=(url, barrier, results)) for _ in range(processes_count)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(30)
        assert outcomes == ["ok"] * processes_count
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
                assert connection.execute(text("SELECT count(*) FROM store")).scalar() == 0
        finally:
            engine.dispose()


# -- gunicorn -w 2 on a fresh instance folder ------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answer(port: int) -> int:
    """GET /signin on a new connection; the status code (0 when nothing answered)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/signin")
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


def test_gunicorn_with_two_workers_boots_on_a_fresh_sqlite_database(tmp_path):
    """Both workers build the app (and the schema) at the same moment; both must answer."""
    import re
    import shutil
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn, "gunicorn is part of the test extra (pip install -e '.[test]')"
    port = _free_port()
    instance = tmp_path / "instance"  # does not exist yet: a first start
    log = tmp_path / "gunicorn.log"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("FLASK_", "WIZARD_")) and key != "DATABASE_URL"}
    env.update(WIZARD_INSTANCE_PATH=str(instance), SECRET_KEY="gunicorn-test-secret",
               WIZARD_ENCRYPTION_KEY=Fernet.generate_key().decode(), WIZARD_PUBLIC_URL="https://chat.heichat.example")
    command = [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--access-logfile", "-",
               "--access-logformat", "pid=%(p)s status=%(s)s", "wizard:create_app()"]
    project = Path(__file__).resolve().parent.parent
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        pids: set[str] = set()
        deadline = time.monotonic() + 90
        while len(pids) < 2 and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()  # gunicorn halts when a worker fails to boot
            if _answer(port) != 200:
                time.sleep(0.1)  # poll interval while the workers start
                continue
            # A connection that has sent nothing keeps one sync worker busy reading it,
            # so the request after it is answered by the other worker.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
                _answer(port)
                held.sendall(b"GET /signin HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                held.recv(1)
            pids = set(re.findall(r"pid=<(\d+)> status=200", log.read_text()))
        assert len(pids) == 2, log.read_text()
        assert "Worker failed to boot" not in log.read_text()
        assert mode(instance) == 0o700 and mode(instance / "wizard.sqlite") == 0o600
    finally:
        server.terminate()
        server.wait(30)
