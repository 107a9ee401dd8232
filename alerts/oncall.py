"""On-call rota and escalation policy: who is told first and who next when nobody acknowledges."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from alerts.levels import Level


@dataclass(frozen=True)
class Rota:
    """People taking turns, `shift_seconds` each from `start`; escalation goes to the next people in order."""

    people: tuple[str, ...]
    shift_seconds: float = 7 * 86400.0
    start: float = 0.0

    def person(self, now: float, step: int = 0) -> str:
        """Who is on call at `now` (step 0), or `step` places further down the rota."""
        if not self.people:
            raise ValueError("empty rota")
        shift = math.floor((now - self.start) / self.shift_seconds)
        return self.people[(shift + step) % len(self.people)]


@dataclass(frozen=True)
class EscalationPolicy:
    """Escalate an unacknowledged incident every `after[level]` seconds, at most `max_steps` times."""

    rota: Rota
    after: dict[Level, float] = field(
        default_factory=lambda: {Level.I: 300.0, Level.II: 600.0, Level.III: 900.0, Level.IV: 1800.0}
    )
    max_steps: int = 3

    def step_at(self, level: Level, opened_at: float, now: float) -> int:
        """How many escalation steps are due by `now` for an incident opened at `opened_at`."""
        interval = self.after.get(level)
        if not interval:
            return 0
        return min(self.max_steps, len(self.rota.people) - 1, int((now - opened_at) // interval))
