"""The clock and stage records shared by the SMTP and the IMAP sessions.

Both open a connection stage by stage (connect, TLS, login, …) within one
deadline for the whole test: each stage gets what is left of it (or less,
``cap``), and each finished stage becomes a ``StageRecord`` that the pages
show and that ``on_stage`` streams as it happens.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from wizard.smtp.types import Reply, StageRecord


class StageClock:
    """The deadline and the stages of one session; ``timeout`` is its whole budget without a deadline."""

    def __init__(self, timeout: float, on_stage: Callable[[StageRecord], None] | None, deadline: float | None):
        self.timeout = timeout
        self.on_stage = on_stage
        self.deadline = deadline
        self.started = time.monotonic()
        self.stages: list[StageRecord] = []

    def remaining(self) -> float:
        if self.deadline is None:
            return self.timeout
        return self.deadline - time.monotonic()

    def budget(self, cap: float | None = None) -> float:
        """How long the next step may take."""
        remaining = self.remaining()
        if remaining <= 0:
            raise TimeoutError("the test ran out of time")
        return min(remaining, cap) if cap else remaining

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def record(self, name: str, began: float, ok: bool, reply: Reply | None = None, detail: str = "") -> None:
        stage = StageRecord(name, ok, int((time.monotonic() - began) * 1000), reply, detail)
        self.stages.append(stage)
        if self.on_stage:
            self.on_stage(stage)
