"""Rendering hint texts from ``hints.toml`` for a provider."""
from __future__ import annotations


class LenientValues(dict):
    """format_map helper: a missing value renders empty instead of failing."""

    def __missing__(self, key: str) -> str:
        return ""


def render_hint(hints: dict, code: str, preset, params: dict) -> tuple[str, str]:
    """Return ``(level, text)`` for ``code``, worded for ``preset`` if it has its own text."""
    entry = hints[code]
    text = entry["text"]
    if preset is not None:
        text = entry.get("kinds", {}).get(preset.kind, text)
        text = entry.get("providers", {}).get(preset.key, text)
    return entry["level"], text.format_map(LenientValues(params))


def render_fix(hints: dict, code: str, params: dict) -> tuple[str, str, str] | None:
    """``(field, value, button label)`` of the one-click fix ``code`` offers, or None.

    A fix whose value would come out empty (its parameter is unknown) is no fix."""
    fix = hints[code].get("fix")
    if fix is None:
        return None
    values = LenientValues(params)
    value = fix["value"].format_map(values)
    return (fix["field"], value, fix["label"].format_map(values)) if value else None
