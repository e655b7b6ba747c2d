"""Which passwords are refused, and why, in words a merchant understands.

Strength is estimated with ``zxcvbn`` (common passwords, names, dictionary
words, keyboard patterns, repeats, dates), with the account's own email and
store name as words an attacker would try first. Sign-up, the password change
and ``create-support-agent`` all ask this module.
"""
from __future__ import annotations

import re

from zxcvbn import zxcvbn

MIN_LENGTH = 8
MAX_LENGTH = 200
# zxcvbn's scale is 0–4; 3 means "safely unguessable" for an online attack and
# resists a slowed-down offline one.
MIN_SCORE = 3
# zxcvbn refuses longer input (and would be slow): the start is what is estimated.
ESTIMATED_LENGTH = 72

_WORDS = re.compile(r"[^a-z0-9]+")


def _plain(text: str) -> str:
    return _WORDS.sub("", text.lower())


def _personal_words(email: str, store_name: str) -> list[str]:
    """The email, its parts and the store name's words: what a stranger knows."""
    words = [email, store_name]
    local, _, domain = email.partition("@")
    words += [local, domain, *re.split(r"[.\-_+]", local), *domain.split(".")[:-1], *store_name.split()]
    return [word for word in {w.strip().lower() for w in words} if len(word) >= 3]


def _derived_from(password: str, email: str, store_name: str) -> str | None:
    """Which personal value the password only decorates (same letters and digits,
    give or take a few digits or symbols), if any."""
    core = _plain(password)
    stripped = core.strip("0123456789")
    local = email.partition("@")[0]
    for label, value in (("your email address", email), ("your email address", local), ("your store's name", store_name)):
        plain = _plain(value)
        if len(plain) >= 3 and plain in (core, stripped):
            return label
    return None


def weakness(password: str, email: str = "", store_name: str = "") -> str | None:
    """Why ``password`` is refused, or None when it is good enough."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"Use {MIN_LENGTH} to {MAX_LENGTH} characters."
    derived = _derived_from(password, email, store_name)
    if derived:
        return f"This password is made from {derived}, which anyone can guess. Choose something unrelated to it."
    result = zxcvbn(password[:ESTIMATED_LENGTH], user_inputs=_personal_words(email, store_name))
    if result["score"] >= MIN_SCORE:
        return None
    reasons = []
    if any(match.get("dictionary_name") == "user_inputs" for match in result["sequence"]):
        reasons.append("It contains your email address or your store's name.")
    warning = result["feedback"].get("warning")
    if warning:
        reasons.append(warning if warning.endswith(".") else warning + ".")
    reasons += result["feedback"].get("suggestions") or []
    if not reasons:
        reasons.append("Make it longer, or add a few uncommon words.")
    return (f"This password is too easy to guess (strength {result['score']} of 4; at least {MIN_SCORE} is needed). "
            + " ".join(reasons))
