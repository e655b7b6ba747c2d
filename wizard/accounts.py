"""Sign-in throttling per account: repeated wrong passwords slow it down.

After ``FREE_ATTEMPTS`` failures in a row, each further failure blocks the
account's sign-in for twice as long as the previous one (30 s, 60 s, …, at
most 15 minutes); a correct password resets the count. While blocked, the
password is not even checked, so guessing gains nothing.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from wizard.models import Member

FREE_ATTEMPTS = 5
FIRST_BLOCK = timedelta(seconds=30)
LONGEST_BLOCK = timedelta(minutes=15)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def seconds_blocked(member: Member, now: datetime) -> int:
    """How many seconds this account must wait before the next attempt (0: none)."""
    if member.sign_in_blocked_until is None:
        return 0
    return max(0, math.ceil((_aware(member.sign_in_blocked_until) - now).total_seconds()))


def record_failure(member: Member, now: datetime) -> None:
    member.failed_sign_ins += 1
    extra = member.failed_sign_ins - FREE_ATTEMPTS
    if extra >= 0:
        member.sign_in_blocked_until = now + min(FIRST_BLOCK * (2 ** extra), LONGEST_BLOCK)


def record_success(member: Member) -> None:
    member.failed_sign_ins = 0
    member.sign_in_blocked_until = None
