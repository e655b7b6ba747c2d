#!/usr/bin/env python3
"""How fast is every failure diagnosed? (issue 3's benchmark)

For each failure category a real peer on 127.0.0.1 produces it (the same
peers as tests/test_categories.py); this runs
``flask --app wizard smtp-test --timeout 5 --json`` against it as a separate
process (what an operator waits for, interpreter start included) and the
probe in-process, and prints each time, the worst case and its ratio to the
timeout. The goal: every failure within timeout + 1 s, a healthy server
within 1 s.

Then, against one loopback aiosmtpd server in the same run, a healthy Test
Connection in-process (``probe_smtp``) against raw smtplib doing the same
stages (connect, EHLO, STARTTLS, EHLO, AUTH, MAIL FROM, RSET, QUIT with one
TLS context built beforehand), alternating, medians of ``--rounds``; the
goal is a ratio ≤ 1.2.

    .venv/bin/python bench/diagnose.py [--timeout 5] [--rounds 15]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import smtplib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from wizard.devmailbox.certs import ensure_self_signed_cert  # noqa: E402
from wizard.smtp.message import build_test_email  # noqa: E402
from wizard.smtp.probe import probe_smtp  # noqa: E402
from wizard.smtp.types import SmtpTarget  # noqa: E402

from dns_server import DnsTestServer  # noqa: E402
from failure_peers import SCENARIOS, SMTP_PASSWORD, SMTP_USERNAME, aiosmtpd  # noqa: E402

RECIPIENT = "customer@example.com"


def run_cli(args: list[str], env: dict) -> tuple[float, dict]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wizard", "smtp-test", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    took = time.monotonic() - began
    return took, json.loads(done.stdout)


def run_probe(target: SmtpTarget, send: bool) -> float:
    message = None
    if send:
        message = build_test_email(sender_name="Bench", sender_email=SMTP_USERNAME, recipient=RECIPIENT,
                                   store_name="Bench", provider_name="Other")
    began = time.monotonic()
    probe_smtp(target, message=message, recipients=[RECIPIENT] if send else None)
    return time.monotonic() - began


def raw_smtplib(port: int, context: ssl.SSLContext) -> float:
    """The same stages as a healthy Test Connection, with plain smtplib."""
    began = time.monotonic()
    client = smtplib.SMTP("localhost", port, local_hostname="heichat-wizard.localdomain", timeout=5)
    client.ehlo()
    client.starttls(context=context)
    client.ehlo()
    client.login(SMTP_USERNAME, SMTP_PASSWORD)
    client.mail(SMTP_USERNAME)
    client.rset()
    client.quit()
    return time.monotonic() - began


def compare_with_smtplib(certs, rounds: int) -> tuple[float, float]:
    """Medians (seconds) of a healthy probe and of raw smtplib, same server, alternating."""
    context = ssl.create_default_context(cafile=str(certs[0]))
    probes, raws = [], []
    with aiosmtpd(certs) as peer:
        target = SmtpTarget(host="localhost", port=peer["port"], security="starttls", username=SMTP_USERNAME,
                            password=SMTP_PASSWORD, sender_email=SMTP_USERNAME, timeout=5.0, greeting_timeout=5.0,
                            ca_file=str(certs[0]))
        run_probe(target, False)  # warm-up: imports, the cached TLS context
        raw_smtplib(peer["port"], context)
        for _ in range(rounds):
            probes.append(run_probe(target, False))
            raws.append(raw_smtplib(peer["port"], context))
    return statistics.median(probes), statistics.median(raws)


def main() -> int:
    # The peers log every refused handshake (on purpose here); keep the table readable.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-diagnose-"))
    certs = ensure_self_signed_cert(work, "bench")
    env = dict(os.environ, SMTP_PASSWORD=SMTP_PASSWORD, WIZARD_INSTANCE_PATH=str(work / "instance"),
               WIZARD_SMTP_GREETING_TIMEOUT="5")
    rows = []
    for category, (factory, extra) in sorted(SCENARIOS.items()):
        with factory(certs) as peer:
            security = extra.get("security", peer["security"])
            password = extra.get("password", SMTP_PASSWORD)
            args = ["--host", "localhost", "--port", str(peer["port"]), "--security", security,
                    "--username", SMTP_USERNAME, "--sender-email", SMTP_USERNAME, "--ca-file", str(certs[0]),
                    "--timeout", str(options.timeout), "--json"]
            if extra.get("send"):
                args += ["--send-to", RECIPIENT]
            cli_seconds, answer = run_cli(args, dict(env, SMTP_PASSWORD=password))
            target = SmtpTarget(host="localhost", port=peer["port"], security=security, username=SMTP_USERNAME,
                                password=password, sender_email=SMTP_USERNAME, timeout=options.timeout,
                                greeting_timeout=5.0, ca_file=str(certs[0]))
            probe_seconds = run_probe(target, bool(extra.get("send")))
        rows.append((category, answer["category"], cli_seconds, probe_seconds))
    with DnsTestServer({"example.com": {"A": ["192.0.2.1"]}}) as dns:
        dns_env = dict(env, WIZARD_DNS_NAMESERVER=dns.nameserver)
        cli_seconds, answer = run_cli(["--host", "smtp.missing.example.com", "--port", "587", "--security", "starttls",
                                       "--username", "u", "--sender-email", SMTP_USERNAME,
                                       "--timeout", str(options.timeout), "--json"], dns_env)
        target = SmtpTarget(host="smtp.missing.example.com", port=587, security="starttls", username="u",
                            password="p", timeout=options.timeout, nameserver=dns.nameserver)
        rows.append(("dns_not_found", answer["category"], cli_seconds, run_probe(target, False)))

    print(f"{'category':<24}{'diagnosed as':<24}{'CLI s':>8}{'probe s':>9}")
    for category, answered, cli_seconds, probe_seconds in rows:
        flag = "" if category == answered else "  MISMATCH"
        print(f"{category:<24}{answered:<24}{cli_seconds:>8.2f}{probe_seconds:>9.3f}{flag}")
    failures = [r for r in rows if r[0] != "ok"]
    worst = max(failures, key=lambda r: r[2])
    healthy = next(r for r in rows if r[0] == "ok")
    print()
    print(f"timeout {options.timeout:g} s · worst failure: {worst[0]} answered in {worst[2]:.2f} s by the CLI "
          f"({worst[2] / options.timeout:.2f} × timeout; goal ≤ {(options.timeout + 1) / options.timeout:.2f}), "
          f"{max(r[3] for r in failures):.2f} s in-process")
    print(f"healthy loopback server: {healthy[2]:.2f} s by the CLI, {healthy[3] * 1000:.0f} ms in-process (goal < 1 s)")
    probe_median, raw_median = compare_with_smtplib(certs, options.rounds)
    ratio = probe_median / raw_median
    print(f"healthy Test Connection vs raw smtplib (same server, medians of {options.rounds}): "
          f"{probe_median * 1000:.1f} ms vs {raw_median * 1000:.1f} ms, ratio {ratio:.2f} (goal ≤ 1.2)")
    mismatches = [r for r in rows if r[0] != r[1]]
    late = [r for r in failures if r[2] > options.timeout + 1]
    slow = healthy[2] > 1.0 or ratio > 1.2
    return 1 if mismatches or late or slow else 0


if __name__ == "__main__":
    sys.exit(main())
