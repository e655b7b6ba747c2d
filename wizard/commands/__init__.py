"""``flask --app wizard …`` commands for support staff and operators, one module each.

The diagnostic commands (smtp-test, smtp-detect, dns-check) are also Flask
CLI plugins (entry points in pyproject.toml), so they run without building
the app — no database, no blueprints — and answer quickly. Inside an app
(tests, ``app.cli``) they read the app's configuration; on their own, the
defaults and the environment.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import current_app, has_app_context


def command_config():
    """The configuration a command should use."""
    if has_app_context():
        return current_app.config
    from wizard.config import from_environment

    return from_environment()


def seconds_since_process_start() -> float:
    """How long this process has been running (Linux; 0 elsewhere)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def budget_left(timeout: float) -> float:
    """What is left of ``--timeout`` for the network work.

    The timeout bounds what the operator waits for, so interpreter start-up
    and imports count against it. A process older than the timeout is a
    long-lived one (tests, an embedding program), not a fresh command, and
    gets the whole timeout.
    """
    spent = seconds_since_process_start()
    if spent >= timeout:
        spent = 0.0
    return max(timeout * 0.5, timeout - spent)


def provider_keys(catalogue) -> list[str]:
    """The keys ``--provider`` takes (the contract's; the local test mailbox is not one)."""
    return [p.key for p in catalogue.visible(include_local=False)]


def resolve_provider(value: str | None, catalogue) -> tuple[str | None, str | None]:
    """``(key, error)`` for a ``--provider`` value: a contract key or an old alias.

    Whatever was typed, only the contract's key is used (and printed) from here on.
    """
    if value is None:
        return None, None
    key = catalogue.resolve_key(value)
    if key is None or key not in provider_keys(catalogue):
        aliases = ", ".join(f"{a} ({p.key})" for p in catalogue.visible(include_local=False) for a in p.aliases)
        return None, (f"unknown --provider {value!r}; use one of: {', '.join(provider_keys(catalogue))}"
                      + (f" (also accepted: {aliases})" if aliases else ""))
    return key, None
