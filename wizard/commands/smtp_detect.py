"""``flask --app wizard smtp-detect``: find which host, port and security answer.

No credentials are sent. ``--json`` prints exactly one object
(``{"provider", "candidates", "recommended", "elapsed_ms"}``); exit 0 when
the command ran, 2 for bad arguments.
"""
from __future__ import annotations

import json
import sys

import click
from flask import Flask

from wizard.catalogue import SECURITY_LABELS, load_catalogue
from wizard.commands import budget_left, command_config, resolve_provider
from wizard.dns.resolver import DnsResolver, parse_nameserver
from wizard.smtp.detect import DEFAULT_PORTS, detect_settings
from wizard.smtp.validation import CONTROL_CHARACTERS


def bad_argument(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def parse_ports(text: str) -> list[int]:
    ports = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            bad_argument(f"--ports must be a comma-separated list of ports (1-65535), not {text!r}")
        if int(part) not in ports:
            ports.append(int(part))
    if not ports or len(ports) > 10:
        bad_argument("--ports takes 1 to 10 ports")
    return ports


@click.command("smtp-detect")
@click.option("--email", default=None, help="Sender address: the provider is guessed from its domain and MX.")
@click.option("--host", default=None, help="SMTP host to try (instead of guessing from --email).")
@click.option("--ports", default=",".join(map(str, DEFAULT_PORTS)), show_default=True, help="Ports to try.")
@click.option("--timeout", default=5.0, show_default=True, type=float, help="Seconds for the whole detection.")
@click.option("--ca-file", default=None, help="Extra PEM CA bundle to trust.")
@click.option("--nameserver", default=None, help="DNS server HOST:PORT to ask instead of the system's.")
@click.option("--provider", default=None, help="Skip the guess: try this provider's hosts (gmail, microsoft365, zoho, "
                                                "sendgrid, mailgun, ses, brevo or custom; outlook and other also work).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def smtp_detect_command(email, host, ports, timeout, ca_file, nameserver, provider, as_json):
    """Find the SMTP settings that answer, without sending credentials."""
    if bool(email) == bool(host):
        bad_argument("give exactly one of --email or --host")
    value = email or host
    if CONTROL_CHARACTERS.search(value) or " " in value.strip():
        bad_argument("the address or host contains spaces or control characters")
    if email and "@" not in email:
        bad_argument("--email must be an email address")
    if not 0 < timeout <= 120:
        bad_argument("--timeout must be between 0 and 120 seconds")
    provider, problem = resolve_provider(provider, load_catalogue())
    if problem:
        bad_argument(problem)
    port_list = parse_ports(ports)
    nameserver = nameserver or command_config().get("DNS_NAMESERVER") or None
    if nameserver:
        try:
            parse_nameserver(nameserver)
        except ValueError as exc:
            bad_argument(f"--nameserver: {exc}")
    resolver = DnsResolver(nameserver, timeout=min(2.0, timeout / 3))
    try:
        result = detect_settings(email=email, host=host, ports=port_list, timeout=budget_left(timeout),
                                 ca_file=ca_file or command_config().get("SMTP_EXTRA_CA_FILE") or None,
                                 nameserver=nameserver, resolver=resolver, catalogue=load_catalogue(),
                                 provider=provider)
    except ValueError as exc:
        bad_argument(str(exc))
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"Provider: {load_catalogue().get(result['provider']).name if result['provider'] else 'unknown'}")
    for c in result["candidates"]:
        mark = "answers" if c["ok"] else c["category"]
        click.echo(f"  {c['host']}:{c['port']} {SECURITY_LABELS[c['security']]:<8} {mark}")
    best = result["recommended"]
    click.echo(f"Recommended: {best['host']} port {best['port']} with {SECURITY_LABELS[best['security']]}"
               if best else "Nothing answered; check the host, or whether your network blocks mail ports.")
    click.echo(f"({result['elapsed_ms']} ms)")


def register(app: Flask) -> None:
    """Add the command to ``app``'s CLI (it is also a Flask CLI plugin)."""
    app.cli.add_command(smtp_detect_command)
