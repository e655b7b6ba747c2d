"""Every failure category, produced by a real peer on 127.0.0.1 and diagnosed
the same way by the probe, the ``smtp-test --json`` CLI and the wizard."""
from __future__ import annotations

import json

import pytest

from wizard.smtp.diagnosis import CATEGORIES
from wizard.smtp.probe import probe_smtp
from wizard.smtp.types import SmtpTarget

from conftest import SMTP_PASSWORD, SMTP_USERNAME, run_connection_test
from failure_peers import SCENARIOS, UNCOVERED_HERE
from helpers import prepare

TIMEOUT = 2.0
RECIPIENT = "customer@example.com"


def test_every_category_has_a_scenario():
    assert set(SCENARIOS) | UNCOVERED_HERE == set(CATEGORIES)


@pytest.mark.parametrize("category", sorted(SCENARIOS))
def test_probe_diagnoses(category, certs):
    factory, extra = SCENARIOS[category]
    with factory(certs) as peer:
        target = SmtpTarget(host="localhost", port=peer["port"], security=extra.get("security", peer["security"]),
                            username=SMTP_USERNAME, password=extra.get("password", SMTP_PASSWORD),
                            sender_email=SMTP_USERNAME, timeout=TIMEOUT, greeting_timeout=1.0, ca_file=str(certs[0]))
        message = None
        if extra.get("send"):
            from wizard.smtp.message import build_test_email

            message = build_test_email(sender_name="Blue Fern", sender_email=SMTP_USERNAME, recipient=RECIPIENT,
                                       store_name="Blue Fern", provider_name="Other")
        result = probe_smtp(target, message=message, recipients=[RECIPIENT] if message else None)
    assert result.category == category, (result.stage, result.detail, result.reply)
    assert result.ok == (category == "ok")
    assert result.elapsed_ms < (TIMEOUT + 1) * 1000


@pytest.mark.parametrize("category", sorted(SCENARIOS))
def test_cli_json_diagnoses(category, certs, app, monkeypatch):
    factory, extra = SCENARIOS[category]
    monkeypatch.setenv("SMTP_PASSWORD", extra.get("password", SMTP_PASSWORD))
    runner = app.test_cli_runner()
    with factory(certs) as peer:
        args = ["smtp-test", "--host", "localhost", "--port", str(peer["port"]),
                "--security", extra.get("security", peer["security"]), "--username", SMTP_USERNAME,
                "--sender-email", SMTP_USERNAME, "--ca-file", str(certs[0]), "--timeout", str(TIMEOUT), "--json"]
        if extra.get("send"):
            args += ["--send-to", RECIPIENT]
        result = runner.invoke(args=args)
    data = json.loads(result.output)
    assert set(data) == {"ok", "category", "stage", "hint", "suggestion", "reply", "elapsed_ms", "transcript", "auth"}
    assert data["auth"] == "password"
    assert data["category"] == category
    assert result.exit_code == (0 if category == "ok" else 1)
    assert data["hint"]
    assert SMTP_PASSWORD not in result.output


@pytest.mark.parametrize("category", sorted(SCENARIOS))
def test_wizard_shows_the_diagnosis(category, certs, app, merchant):
    factory, extra = SCENARIOS[category]
    app.config["SMTP_TIMEOUT"] = TIMEOUT
    with factory(certs) as peer:
        overrides = {"port": str(peer["port"]), "security": extra.get("security", peer["security"])}
        if "password" in extra:
            overrides["password"] = extra["password"]
        server = type("Peer", (), {"port": peer["port"], "mode": overrides["security"]})
        prepare(merchant, server, **overrides)
        if extra.get("send"):
            run_connection_test(merchant)
            merchant.post("/wizard/save", {"confirm_untested": "yes"})
            response = merchant.post("/wizard/send", {"recipient": RECIPIENT}, htmx=True)
            page = merchant.get(json.loads(response.headers["HX-Location"])["path"], htmx=True).get_data(as_text=True)
        else:
            page = run_connection_test(merchant, htmx=True).get_data(as_text=True)
    assert f'data-category="{category}"' in page
    if category != "ok":
        assert "What to check next:" in page and "Stopped at:" in page
    # The troubleshooting page shows the same diagnosis for the latest test or send.
    assert f'data-category="{category}"' in merchant.get("/troubleshooting").get_data(as_text=True)
