"""Abuse limits on the expensive or sensitive actions, per store and per address.

The numbers live in the ``RATE_LIMITS`` setting; this module only says which
action counts against which limit, keyed by the store (so one store cannot
hammer a mail server) and by the client address (so one client cannot
hammer many stores).
"""
from __future__ import annotations

import math
import time

from flask import current_app
from flask_limiter.util import get_remote_address
from flask_login import current_user

from wizard.extensions import limiter


def _per_store() -> str:
    return f"store:{getattr(current_user, 'store_id', None) or 'none'}"


def _per_address() -> str:
    return f"address:{get_remote_address()}"


def _limit_for(action: str):
    return lambda: current_app.config["RATE_LIMITS"][action]


def limited(action: str, per_store: bool = True, on_breach=None):
    """Decorate a view: its POSTs count against ``action``'s limit. ``on_breach``
    may answer a refused request itself (a form with the wait, say)."""
    message = "Too many attempts in a short time."

    def decorate(view):
        view = limiter.limit(_limit_for(action), key_func=_per_address, methods=["POST"], scope=f"{action}:address",
                             error_message=message, on_breach=on_breach)(view)
        if per_store:
            view = limiter.limit(_limit_for(action), key_func=_per_store, methods=["POST"], scope=f"{action}:store",
                                 error_message=message)(view)
        return view

    return decorate


def seconds_until_reset() -> int:
    """How long until the limit just hit lets requests through again."""
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.reset_at - time.time()))


def wait_before(action: str, **keys: str) -> int | None:
    """Count one ``action`` against its limits, or say how long to wait.

    For pages that answer a breach in their own words (the public chat keeps
    the visitor's text and says "slow down" in place) instead of the generic
    429 page. ``keys`` name what is counted, e.g. ``address=…, store=…``; each
    has its own limit, ``RATE_LIMITS[f"{action}_{name}"]`` (falling back to
    ``RATE_LIMITS[action]``). Nothing is counted when one limit is already
    reached, so waiting is enough to get through again. Returns None when the
    action may go ahead (and has been counted), otherwise the seconds to wait.
    """
    from limits import parse_many

    configured = current_app.config["RATE_LIMITS"]
    checks = [(item, f"{action}:{name}", value)
              for name, value in keys.items()
              for item in parse_many(configured.get(f"{action}_{name}", configured[action]))]
    strategy = limiter.limiter
    blocked = [(item, scope, value) for item, scope, value in checks if not strategy.test(item, scope, value)]
    if not blocked:
        blocked = [(item, scope, value) for item, scope, value in checks if not strategy.hit(item, scope, value)]
    if not blocked:
        return None
    reset = max(strategy.get_window_stats(item, scope, value).reset_time for item, scope, value in blocked)
    return max(1, math.ceil(reset - time.time()))


def client_address() -> str:
    """The client's address as the limits see it."""
    return get_remote_address()
