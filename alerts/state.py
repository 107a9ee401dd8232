"""The pending -> firing -> resolved state machine of one alert, with Icinga-style flap detection."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

State = Literal["inactive", "pending", "firing", "resolved"]

FLAP_WINDOW = 21  # Icinga/Naemon: the last 21 checks (20 possible changes)
FLAP_HIGH = 30.0  # % state change above which flapping starts
FLAP_LOW = 25.0  # % below which it stops


def percent_state_change(history: deque[bool]) -> float:
    """Weighted % of state changes over the history; newer changes weigh more (0.8 .. 1.2), as in Icinga."""
    states = list(history)
    if len(states) < 2:
        return 0.0
    total = 0.0
    n = FLAP_WINDOW - 1
    offset = n - (len(states) - 1)  # a short history is aligned with the newest end
    for i in range(1, len(states)):
        if states[i] != states[i - 1]:
            position = offset + i - 1
            total += 0.8 + 0.4 * position / (n - 1)
    return 100.0 * total / n


@dataclass
class AlertState:
    """One alert instance (rule + label set) and everything the state machine remembers about it."""

    rule: str
    labels: tuple[tuple[str, str], ...]
    state: State = "inactive"
    value: float = 0.0
    active_since: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    last_active: float | None = None
    history: deque[bool] = field(default_factory=lambda: deque(maxlen=FLAP_WINDOW))
    flapping: bool = False
    flap_percent: float = 0.0

    @property
    def label_dict(self) -> dict[str, str]:
        """Labels as a dict (a copy)."""
        return dict(self.labels)

    def step(self, active: bool, now: float, for_seconds: float, keep_seconds: float) -> State | None:
        """Advance to `now` given whether the condition holds; returns the new state on a transition."""
        self.history.append(active)
        pct = percent_state_change(self.history)
        self.flap_percent = pct
        if not self.flapping and pct > FLAP_HIGH:
            self.flapping = True
        elif self.flapping and pct < FLAP_LOW:
            self.flapping = False
        before = self.state
        if active:
            self.last_active = now
            if self.state in ("inactive", "resolved"):
                self.state, self.active_since, self.resolved_at = "pending", now, None
            if (
                self.state == "pending"
                and self.active_since is not None
                and now - self.active_since >= for_seconds
            ):
                self.state, self.fired_at = "firing", now
        elif self.state == "pending":
            self.state, self.active_since = "inactive", None
        elif self.state == "firing":
            held = self.last_active is not None and now - self.last_active < keep_seconds
            if not held:
                self.state, self.resolved_at = "resolved", now
        return self.state if self.state != before else None
