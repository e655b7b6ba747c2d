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
