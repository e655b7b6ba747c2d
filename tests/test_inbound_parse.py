"""Reading inbound mail: replies from many clients and languages, auto-replies, bounces,
and the ``inbound-parse`` command.

Each ``tests/samples/inbound/NAME.eml`` (written for these tests, after the
documented formats of each client and MTA) sits beside ``NAME.json``, the
exact ``inbound-parse --json`` object the operator and the matching code get.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.inbound.parse import NotAnEmail, parse_message

SAMPLES = Path(__file__).resolve().parent / "samples" / "inbound"
SAMPLE_NAMES = sorted(path.stem for path in SAMPLES.glob("*.eml"))
CONTRACT_KEYS = ["kind", "from", "subject", "in_reply_to", "reply_token", "text", "bounce"]
BOUNCE_KEYS = ["recipient", "status", "action", "permanent", "original_message_id"]
OUR_MESSAGE_ID = "hc.20260303101200.a1b2c3@heichat.example"
FLASK = Path(sys.executable).with_name("flask")


def expected(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def test_there_are_many_samples():
    assert len(SAMPLE_NAMES) >= 40
    assert all((SAMPLES / f"{name}.json").is_file() for name in SAMPLE_NAMES)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_gives_the_exact_contract(name):
    parsed = parse_message((SAMPLES / f"{name}.eml").read_bytes())
    assert parsed.as_contract() == expected(name)


@pytest.mark.parametrize("name", [name for name in SAMPLE_NAMES if expected(name)["kind"] == "message"])
def test_reply_text_never_holds_the_quoted_history(name):
    # Our own words (from the answered email) must not come back as the visitor's.
    text = parse_message((SAMPLES / f"{name}.eml").read_bytes()).text
    for ours in ("Lakeside Ceramics <hello@", "wrote:", "schrieb", "a écrit", "escribió", "Original Message",
                 "Ursprüngliche Nachricht", "Sent from my", "\n>", "Betreff:", "Subject:"):
        assert ours not in text
    assert not text.startswith((">", "\n", " \n")) and not text.endswith("\n")
    assert "\r" not in text


@pytest.mark.parametrize("name, kind", [
    ("ooo_exchange", "auto_reply"), ("ooo_gmail_vacation", "auto_reply"), ("ooo_de_subject_only", "auto_reply"),
    ("auto_submitted_no", "message"), ("dsn_delivered_notice", "auto_reply"), ("not_a_bounce_quoted_wording", "message"),
])
def test_kind_decides_whether_the_merchant_sees_a_reply(name, kind):
    assert parse_message((SAMPLES / f"{name}.eml").read_bytes()).kind == kind


@pytest.mark.parametrize("name, recipient, status, permanent", [
    ("dsn_postfix", "anna.berg@example.org", "5.1.1", True),
    ("dsn_gmail", "zoe.k@example.com", "5.1.1", True),
    ("dsn_exchange_online", "orders@contoso-shop.example", "5.1.10", True),
    ("dsn_amazon_ses", "noone@nowhere-shop.example", "5.1.1", True),
    ("dsn_postfix_delayed", "orders@slow-mx.example.net", "4.4.1", False),
    ("dsn_two_recipients", "box-full@example.net", "5.2.2", True),
    ("bounce_exim_text", "old-address@exim-host.example", "5.1.1", True),
    ("bounce_qmail_text", "gone@qmail-host.example", "5.1.1", True),
])
def test_bounce_names_the_recipient_and_our_message(name, recipient, status, permanent):
    bounce = parse_message((SAMPLES / f"{name}.eml").read_bytes()).bounce
    assert (bounce.recipient, bounce.status, bounce.permanent) == (recipient, status, permanent)
    assert bounce.original_message_id == OUR_MESSAGE_ID


def test_message_id_and_raw_html_are_kept_for_storage():
    parsed = parse_message((SAMPLES / "gmail_reply_plain_html.eml").read_bytes())
    assert parsed.message_id == "CAB+x9kq3Vd_example1@mail.gmail.example"
    assert 'class="gmail_quote' in parsed.html  # as sent: sanitizing is the viewer's job
    assert parse_message((SAMPLES / "iphone_sent_from.eml").read_bytes()).html is None


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty"),
    (b"\r\n\r\n  \n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
    (b"From: a@b.example\x00\x01\x02: junk\n\nbody", "binary"),
    (b'{"kind": "message", "from": "a@b.example"}\n', "header block"),
    (b'{\n  "from": "a@b.example"\n}\n', "header block"),
    (b"Hello, this is just a note.\nNo headers here.\n", "header block"),
    (b"Name: value\nOther: thing\n\nA key-value file, not an email.\n", "no email headers"),
])
def test_input_that_is_not_an_email_is_refused(raw, reason):
    with pytest.raises(NotAnEmail, match=reason):
        parse_message(raw)


def run_command(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    # As an operator runs it: a separate process, the command loaded as a Flask CLI plugin.
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([str(FLASK), "--app", "wizard", "inbound-parse", *args], input=stdin, capture_output=True,
                          timeout=60, env=env, check=False)


def test_command_json_from_a_file_is_exactly_the_contract():
    result = run_command(str(SAMPLES / "de_gmail_qp.eml"), "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode("utf-8").splitlines()
    assert len(lines) == 1  # one object on one line
    data = json.loads(lines[0])
    assert list(data) == CONTRACT_KEYS
    assert data == expected("de_gmail_qp")
    assert "Schüssel" in lines[0]  # ensure_ascii=False: readable as printed


def test_command_json_from_stdin_reads_a_bounce():
    result = run_command("-", "--json", stdin=(SAMPLES / "dsn_exchange_online.eml").read_bytes())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == CONTRACT_KEYS and list(data["bounce"]) == BOUNCE_KEYS
    assert data == expected("dsn_exchange_online")


def test_command_summary_shows_kind_sender_ids_and_text():
    result = run_command(str(SAMPLES / "inline_answers.eml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode("utf-8")
    assert "Kind: message" in out and "From: ada@quinn.example" in out
    assert OUR_MESSAGE_ID in out and "Reply token: k7q2m9x4" in out
    assert "  Medium, please." in out and "  Sea green." in out
    assert "Which size" not in out


def test_command_refuses_what_is_not_an_email(tmp_path):
    junk = tmp_path / "export.json"
    junk.write_text('{"kind": "message"}\n')
    result = run_command(str(junk), "--json")
    assert result.returncode == 2
    assert result.stdout == b""
    assert "not an email" in result.stderr.decode()


def test_command_refuses_an_unreadable_file(tmp_path):
    result = run_command(str(tmp_path / "missing.eml"), "--json")
    assert result.returncode == 2
    assert result.stdout == b""
    assert "missing.eml" in result.stderr.decode()


def test_command_is_registered_on_the_app(app):
    result = app.test_cli_runner().invoke(args=["inbound-parse", str(SAMPLES / "ooo_exchange.eml"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["kind"] == "auto_reply"
