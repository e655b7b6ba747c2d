"""Troubleshooting topics (``help.toml``): stable anchors support can link to."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HELP_FILE = Path(__file__).resolve().parent / "help.toml"


@dataclass(frozen=True)
class HelpTopic:
    anchor: str
    title: str
    intro: str
    items: tuple[str, ...]
    categories: tuple[str, ...]


@lru_cache(maxsize=1)
def help_topics() -> tuple[HelpTopic, ...]:
    with open(HELP_FILE, "rb") as handle:
        raw = tomllib.load(handle)
    return tuple(
        HelpTopic(t["anchor"], t["title"], t["intro"], tuple(t.get("items", ())), tuple(t.get("categories", ())))
        for t in raw["topic"]
    )


def topic_for_category(category: str) -> str:
    """The anchor of the topic that explains ``category`` (the general one otherwise)."""
    for topic in help_topics():
        if category in topic.categories:
            return topic.anchor
    return "test-connection-fails"
