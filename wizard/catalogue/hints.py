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
