"""``smtp-test --auth xoauth2``: the connection test with a sign-in token (issue 11).

The token comes from ``SMTP_ACCESS_TOKEN`` only; the JSON contract is the
old one plus ``"auth"``. Real aiosmtpd servers on 127.0.0.1 that speak XOAUTH2.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from smtp_servers import Xoauth2Attempt, Xoauth2Offer, start_test_server

USERNAME = "owner@bluefern.example.com"
TOKEN = "ya29.a0AfB-cli-Token-3e8b1c6d9f2a7054b1e8c3d6a9f2"
PASSWORD = "merchant-Password-5521"
CONTRACT = {"ok", "category", "stage", "hint", "suggestion", "reply", "elapsed_ms", "transcript", "auth"}


@pytest.fixture
def token_server(certs):
    with start_test_server("starttls", username=USERNAME, password=PASSWORD, cert=certs[0], key=certs[1],
                           xoauth2=Xoauth2Offer({USERNAME: TOKEN})) as server:
        yield server


def smtp_test(app, port, certs, *extra, env):
    args = ["smtp-test", "--host", "127.0.0.1", "--port", str(port), "--security", "starttls",
            "--username", USERNAME, "--sender-email", USERNAME, "--ca-file", str(certs[0]), "--timeout", "5", *extra]
    # None removes a variable the outer environment may hold.
    return app.test_cli_runner().invoke(args=args, env={"SMTP_PASSWORD": None, "SMTP_ACCESS_TOKEN": None, **env})


def attempts(server):
    with server.lock:
        return list(server.xoauth2_attempts), list(server.auth_attempts)


def test_xoauth2_signs_in_with_the_token_from_the_environment(app, token_server, certs):
    # A password in the environment too: with --auth xoauth2 it is never sent.
    result = smtp_test(app, token_server.port, certs, "--auth", "xoauth2", "--json",
                       env={"SMTP_ACCESS_TOKEN": TOKEN, "SMTP_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == CONTRACT
    assert (data["ok"], data["category"], data["stage"], data["auth"]) == (True, "ok", "done", "xoauth2")
    assert "C: AUTH XOAUTH2 [redacted]" in data["transcript"]
    assert attempts(token_server) == ([Xoauth2Attempt(USERNAME, TOKEN, None)], [("XOAUTH2", USERNAME)])
    assert TOKEN not in result.stdout + result.stderr and PASSWORD not in result.stdout + result.stderr


def test_a_refused_token_tells_the_merchant_to_sign_in_again(app, token_server, certs):
    refused = "ya29.expired-cli-token-77" + "1" * 20
    result = smtp_test(app, token_server.port, certs, "--auth", "xoauth2", "--json", env={"SMTP_ACCESS_TOKEN": refused})
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["category"], data["stage"], data["auth"]) == ("auth_failed", "auth", "xoauth2")
    assert data["reply"]["code"] == 535 and data["reply"]["enhanced"] == "5.7.8"
    assert "Sign in again" in data["hint"] and "app password" not in data["hint"].lower()
    assert refused not in result.stdout + result.stderr


def test_the_human_report_names_the_refused_sign_in(app, token_server, certs):
    refused = "ya29.expired-cli-token-88" + "2" * 20
    result = smtp_test(app, token_server.port, certs, "--auth", "xoauth2", env={"SMTP_ACCESS_TOKEN": refused})
    assert result.exit_code == 1
    assert result.stdout.startswith("FAILED: The sign-in was not accepted (auth_failed, ")
    assert "What to check: " in result.stdout and "Sign in again" in result.stdout
    assert "  C: AUTH XOAUTH2 [redacted]" in result.stdout
    assert refused not in result.stdout + result.stderr


def test_a_missing_token_is_a_bad_argument(app, token_server, certs):
    # The password is set, but a token run needs the token.
    result = smtp_test(app, token_server.port, certs, "--auth", "xoauth2", "--json", env={"SMTP_PASSWORD": PASSWORD})
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "SMTP_ACCESS_TOKEN" in result.stderr and "never on the command line" in result.stderr
    assert attempts(token_server) == ([], [])  # nothing was tried


@pytest.mark.parametrize("unusable", ["  \n", "ya29.two words", "ya29.tok\x7fen"])
def test_an_unusable_token_is_a_bad_argument_and_is_not_echoed(app, token_server, certs, unusable):
    result = smtp_test(app, token_server.port, certs, "--auth", "xoauth2", "--json", env={"SMTP_ACCESS_TOKEN": unusable})
    assert result.exit_code == 2
    assert result.stdout == "" and "SMTP_ACCESS_TOKEN" in result.stderr
    if unusable.strip():
        assert unusable.strip() not in result.stderr
    assert attempts(token_server) == ([], [])


def test_default_auth_is_password_and_ignores_the_token(app, token_server, certs):
    result = smtp_test(app, token_server.port, certs, "--json", env={"SMTP_PASSWORD": PASSWORD, "SMTP_ACCESS_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == CONTRACT
    assert (data["ok"], data["auth"]) == (True, "password")
    assert attempts(token_server) == ([], [("PLAIN", USERNAME)])
    assert "C: AUTH PLAIN [redacted]" in data["transcript"]


def test_default_auth_still_needs_the_password(app, token_server, certs):
    result = smtp_test(app, token_server.port, certs, "--json", env={"SMTP_ACCESS_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert "SMTP_PASSWORD" in result.stderr and result.stdout == ""


def test_an_unknown_auth_method_exits_2_from_a_real_process(tmp_path):
    env = dict(os.environ, SMTP_PASSWORD="x", SMTP_ACCESS_TOKEN=TOKEN, WIZARD_INSTANCE_PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wizard", "smtp-test", "--host", "127.0.0.1",
                           "--port", "587", "--security", "starttls", "--username", "u", "--sender-email", "a@example.com",
                           "--auth", "bogus", "--json"], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--auth" in done.stderr and "bogus" in done.stderr and "xoauth2" in done.stderr
    assert TOKEN not in done.stderr
