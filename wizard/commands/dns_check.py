"""``flask --app wizard dns-check``: will mail from a domain land in spam?

    flask --app wizard dns-check --domain yourstore.com [--provider gmail]
        [--nameserver 127.0.0.1:5353] [--timeout 3] [--json]

Checks SPF, DMARC and DKIM with :func:`wizard.dns.deliverability.check_domain`.
``--json`` prints exactly one JSON object (that function's contract); without
it, a readable report. Exit status 0 whenever the check ran, whatever it
found; 2 for bad arguments (unknown provider, malformed domain or
nameserver, a timeout that is not a positive number), with the reason on
stderr.

DNS failures do not stop the command: a look-up that times out or fails
(SERVFAIL) leaves its area undecided — SPF and DMARC report ``invalid``
with a null record or policy, DKIM ``unknown`` — and ``advice`` names the
failed look-up. The exit status stays 0 because the check did run; the
answer is "could not tell", which the report says.
"""
from __future__ import annotations

import json
import math

import click
from flask import Flask

from wizard.catalogue import load_catalogue
from wizard.commands import resolve_provider
from wizard.dns.deliverability import check_domain, normalise_domain
from wizard.dns.resolver import DEFAULT_TIMEOUT, DnsResolver, parse_nameserver


@click.command("dns-check")
@click.option("--domain", required=True, help="The sender's domain, e.g. yourstore.com.")
@click.option("--provider", default=None, help="The sending provider: gmail, microsoft365, zoho, sendgrid, mailgun, "
                                                 "ses, brevo or custom (outlook and other also work).")
@click.option("--nameserver", default=None, help="Ask this DNS server (HOST, HOST:PORT or [IPv6]:PORT) "
                                                 "instead of the system's.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds to wait for each DNS answer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a report.")
def dns_check_command(domain: str, provider: str | None, nameserver: str | None, timeout: float,
                      as_json: bool):
    """Check SPF, DMARC and DKIM of a sender domain and say what to fix."""
    catalogue = load_catalogue()
    try:
        domain = normalise_domain(domain)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--domain") from None
    provider, problem = resolve_provider(provider, catalogue)
    if problem:
        raise click.BadParameter(problem.replace("unknown --provider", "unknown provider") + ".", param_hint="--provider")
    if not (math.isfinite(timeout) and timeout > 0):
        raise click.BadParameter("must be a positive number of seconds.", param_hint="--timeout")
    if nameserver is not None:
        try:
            parse_nameserver(nameserver)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--nameserver") from None
    resolver = DnsResolver(nameserver, timeout=timeout)
    result = check_domain(domain, provider, resolver, catalogue)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(format_report(result, catalogue))


def format_report(result: dict, catalogue=None) -> str:
    """The check as a few readable lines for a terminal."""
    catalogue = catalogue or load_catalogue()
    preset = catalogue.get(result["provider"])
    via = f" (sending through {preset.name})" if preset else ""
    spf, dmarc, dkim = result["spf"], result["dmarc"], result["dkim"]
    lines = [
        f"Deliverability check for {result['domain']}{via}",
        f"  SPF:   {spf['status']}" + (f" — {spf['record']}" if spf["record"] else ""),
        f"  DMARC: {dmarc['status']}" + (f" (policy {dmarc['policy']})" if dmarc["policy"] else ""),
        f"  DKIM:  {dkim['status']}" + (f" (selector {dkim['selector']})" if dkim["selector"] else ""),
    ]
    if result["advice"]:
        lines.append("What to do:")
        lines.extend(f"  - {sentence}" for sentence in result["advice"])
    elif dkim["status"] == "unknown":
        lines.append("Nothing to fix in SPF and DMARC. DKIM cannot be checked from here (its selector "
                     "cannot be guessed); your provider's dashboard shows whether it is on.")
    else:
        lines.append("Nothing to fix: SPF, DMARC and DKIM look right.")
    return "\n".join(lines)


def register(app: Flask) -> None:
    """Add the command to ``app``'s CLI (it is also a Flask CLI plugin)."""
    app.cli.add_command(dns_check_command)
