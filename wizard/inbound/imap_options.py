"""From configuration to the IMAP side's limits: timeouts, CA file, nameserver, address policy, IDLE and polling.

IMAP obeys the same outbound address policy as SMTP (no private, loopback
or link-local addresses unless ``SMTP_ALLOWED_NETWORKS`` allows them) with a
port list of its own, ``IMAP_ALLOWED_PORTS`` ("993,143"; "" = any). Plain
functions of a config mapping (no Flask): the web page, the commands and
the embedded fetcher all call ``imap_options_from_config``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wizard.smtp.address_policy import AddressPolicy

__all__ = ["ImapOptions", "imap_options_from_config", "DEFAULT_PORTS", "DEFAULT_IDLE_SECONDS",
           "DEFAULT_POLL_SECONDS"]

DEFAULT_PORTS = "993,143"
# RFC 2177: a client should re-issue IDLE at least every 29 minutes.
DEFAULT_IDLE_SECONDS = 29 * 60.0
DEFAULT_POLL_SECONDS = 60.0


@dataclass(frozen=True)
class ImapOptions:
    timeout: float
    greeting_timeout: float
    ca_file: str | None
    nameserver: str | None
    address_policy: AddressPolicy | None
    idle_seconds: float = DEFAULT_IDLE_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS


def imap_options_from_config(config: Mapping) -> ImapOptions:
    """``ImapOptions`` from app configuration (``IMAP_*``, falling back to the SMTP settings)."""
    return ImapOptions(
        timeout=float(config.get("IMAP_TIMEOUT") or config.get("SMTP_TIMEOUT") or 15.0),
        greeting_timeout=float(config.get("SMTP_GREETING_TIMEOUT") or 5.0),
        ca_file=config.get("SMTP_EXTRA_CA_FILE") or None,
        nameserver=config.get("DNS_NAMESERVER") or None,
        address_policy=AddressPolicy.from_config(config.get("IMAP_ALLOWED_PORTS", DEFAULT_PORTS),
                                                 config.get("SMTP_ALLOWED_NETWORKS", "")),
        idle_seconds=float(config.get("IMAP_IDLE_SECONDS") or DEFAULT_IDLE_SECONDS),
        poll_seconds=float(config.get("IMAP_POLL_SECONDS") or DEFAULT_POLL_SECONDS),
    )
