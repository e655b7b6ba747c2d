"""Provider keys as contracted: the catalogue's keys, the three diagnostic
commands (contract keys plus the aliases outlook and other, output in
contract keys only) and the migration that rewrites stored rows."""
from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import text

from wizard.catalogue import load_catalogue
from wizard.db import make_engine, schema

from conftest import SMTP_PASSWORD, SMTP_USERNAME
from dns_server import DnsTestServer
from smtp_servers import start_test_server

CONTRACT = ["gmail", "microsoft365", "zoho", "sendgrid", "mailgun", "ses", "brevo", "custom"]
ALIASES = {"outlook": "microsoft365", "other": "custom"}
EVERY_INPUT = [(key, key) for key in CONTRACT] + list(ALIASES.items())


def test_the_catalogue_has_exactly_the_contract_keys_plus_local():
    catalogue = load_catalogue()
    assert list(catalogue.providers) == CONTRACT + ["local"]
    for alias, key in ALIASES.items():
        assert catalogue.resolve_key(alias) == key
    for case in catalogue.choose:  # "help me choose" names only real keys
        assert set(case.providers) <= set(CONTRACT)


@pytest.fixture
def wrong_password_server(certs):
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0],
                           key=certs[1]) as server:
        yield server


@pytest.mark.parametrize(("given", "key"), EVERY_INPUT)
def test_smtp_test_takes_every_key_and_alias(given, key, app, wrong_password_server, certs, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "not-the-password")
    result = app.test_cli_runner().invoke(args=[
        "smtp-test", "--host", "localhost", "--port", str(wrong_password_server.port), "--security", "starttls",
        "--username", SMTP_USERNAME, "--sender-email", SMTP_USERNAME, "--provider", given,
        "--ca-file", str(certs[0]), "--timeout", "3", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["category"] == "auth_failed"
    # The hint is the one written for the contract key the input stands for.
    from wizard.smtp.diagnosis import diagnosis_data

    expected = diagnosis_data()["category"]["auth_failed"].get("providers", {}).get(key)
    if expected:
        assert data["hint"].startswith(expected.split("{")[0][:40])
    assert "outlook\"" not in result.output and "\"other\"" not in result.output


@pytest.mark.parametrize("bad", ["local", "hotmail", "Office365", ""])
def test_smtp_test_refuses_anything_else(bad, app, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "x")
    result = app.test_cli_runner().invoke(args=[
        "smtp-test", "--host", "localhost", "--port", "587", "--security", "starttls", "--username", "u",
        "--sender-email", SMTP_USERNAME, "--provider", bad, "--json"])
    assert result.exit_code == 2
    assert "microsoft365" in result.output and "custom" in result.output


@pytest.mark.parametrize(("given", "key"), EVERY_INPUT)
def test_dns_check_takes_every_key_and_alias_and_prints_the_contract_key(given, key, app):
    zone = {"bluefern.test": {"TXT": ["v=spf1 -all"]}, "_dmarc.bluefern.test": {"TXT": ["v=DMARC1; p=none"]}}
    with DnsTestServer(zone) as dns:
        result = app.test_cli_runner().invoke(args=[
            "dns-check", "--domain", "bluefern.test", "--provider", given, "--nameserver", dns.nameserver,
            "--timeout", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["provider"] == key


def test_dns_check_refuses_local(app):
    result = app.test_cli_runner().invoke(args=["dns-check", "--domain", "bluefern.test", "--provider", "local"])
    assert result.exit_code == 2 and "unknown provider 'local'" in result.output


@pytest.mark.parametrize(("given", "key"), EVERY_INPUT)
def test_smtp_detect_takes_every_key_and_alias_and_prints_the_contract_key(given, key, app, starttls_server):
    result = app.test_cli_runner().invoke(args=[
        "smtp-detect", "--host", "127.0.0.1", "--ports", str(starttls_server.port), "--provider", given,
        "--timeout", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["provider"] == key
    assert {c["port"] for c in data["candidates"]} == {starttls_server.port}


def test_smtp_detect_guesses_microsoft365_not_outlook(app, starttls_server):
    # A Microsoft 365 host is recognised under the contract's key.
    with DnsTestServer({"smtp.office365.com": {"A": ["127.0.0.1"]}}) as dns:
        result = app.test_cli_runner().invoke(args=[
            "smtp-detect", "--host", "smtp.office365.com", "--ports", str(starttls_server.port),
            "--nameserver", dns.nameserver, "--timeout", "3", "--json"])
    assert json.loads(result.output)["provider"] == "microsoft365"


def test_smtp_detect_refuses_an_unknown_provider(app):
    result = app.test_cli_runner().invoke(args=["smtp-detect", "--host", "127.0.0.1", "--provider", "hotmail"])
    assert result.exit_code == 2 and "microsoft365" in result.output


def test_the_migration_rewrites_every_stored_provider_key(app, database_url):
    engine = make_engine(database_url)
    with engine.begin() as connection:
        config = schema.alembic_config(connection)
        command.downgrade(config, "d2c8e39b1db4")
        connection.execute(text("INSERT INTO store (id, name, slug, created_at, prechat_enabled, "
                                "prechat_email_required, prechat_name_mode, prechat_intro, provider, "
                                "send_limit_per_minute) VALUES (1, 'A', 'a', CURRENT_TIMESTAMP, false, true, "
                                "'optional', 'x', 'outlook', 30), (2, 'B', 'b', CURRENT_TIMESTAMP, false, true, "
                                "'optional', 'x', 'other', 30), (3, 'C', 'c', CURRENT_TIMESTAMP, false, true, "
                                "'optional', 'x', 'gmail', 30)"))
        connection.execute(text("INSERT INTO smtpdraft (store_id, provider, host, port, security, sender_name, "
                                "sender_email, username, updated_at) VALUES (1, 'outlook', 'h', '587', 'starttls', "
                                "'n', 'e', 'u', CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO member (id, email, password_hash, store_id, role, created_at, "
                                "failed_sign_ins) VALUES (1, 'agent@x.test', 'h', NULL, 'support', "
                                "CURRENT_TIMESTAMP, 0)"))
        connection.execute(text("INSERT INTO sharelink (store_id, created_by, created_at, expires_at, target, "
                                "prefill, note) VALUES (2, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'smtp', "
                                "'{\"provider\": \"other\", \"port\": \"465\"}', '')"))
        command.upgrade(config, "head")
        stores = dict(connection.execute(text("SELECT id, provider FROM store ORDER BY id")).all())
        draft = connection.execute(text("SELECT provider FROM smtpdraft")).scalar()
        prefill = connection.execute(text("SELECT prefill FROM sharelink")).scalar()
    engine.dispose()
    assert stores == {1: "microsoft365", 2: "custom", 3: "gmail"}
    assert draft == "microsoft365"
    prefill = json.loads(prefill) if isinstance(prefill, str) else prefill
    assert prefill == {"provider": "custom", "port": "465"}
