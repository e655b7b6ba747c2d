"""The words of the email-health summary (``health.toml``): one entry per
connection state and the next steps in the order they are considered."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HEALTH_FILE = Path(__file__).resolve().parent / "health.toml"


@dataclass(frozen=True)
class StateText:
    title: str
    text: str


@dataclass(frozen=True)
class NextStep:
    key: str
    text: str
    action: str
    endpoint: str


@dataclass(frozen=True)
class HealthTexts:
    states: dict[str, StateText]
    next_steps: tuple[NextStep, ...]

    def next_step(self, key: str) -> NextStep:
        return next(step for step in self.next_steps if step.key == key)


@lru_cache(maxsize=1)
def health_texts() -> HealthTexts:
    with open(HEALTH_FILE, "rb") as handle:
        raw = tomllib.load(handle)
    return HealthTexts(
        states={key: StateText(entry["title"], entry["text"]) for key, entry in raw["state"].items()},
        next_steps=tuple(NextStep(n["key"], n["text"], n["action"], n["endpoint"]) for n in raw["next"]),
    )
