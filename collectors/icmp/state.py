"""The pure part of probing: outstanding echoes, sliding windows and their statistics (time passed in)."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowStats:
    """RTT (min/avg/max), loss ratio and jitter over the resolved probes of a window."""

    probes: int
    replies: int
    loss_ratio: float
    rtt_min: float | None
    rtt_avg: float | None
    rtt_max: float | None
    jitter: float | None  # mean |difference| of consecutive RTTs (RFC 3550 style, unsmoothed)


class ProbeWindow:
    """The last `size` resolved probes of one target: an RTT in seconds, or None when lost."""

    def __init__(self, size: int) -> None:
        self._results: deque[float | None] = deque(maxlen=size)
        self.sent_total = 0
        self.lost_total = 0

    def add(self, rtt: float | None) -> None:
        """Record one resolved probe."""
        self._results.append(rtt)
        self.sent_total += 1
        if rtt is None:
            self.lost_total += 1

    def recent(self, n: int) -> list[float | None]:
        """The last `n` resolved probes, oldest first."""
        return list(self._results)[-n:] if n > 0 else []

    def stats(self) -> WindowStats:
        """Statistics of the window as it is now."""
        results = list(self._results)
        rtts = [r for r in results if r is not None]
        n = len(results)
        loss = (n - len(rtts)) / n if n else 0.0
        if not rtts:
            return WindowStats(n, 0, loss, None, None, None, None)
        diffs = [abs(b - a) for a, b in itertools.pairwise(rtts)]
        jitter = sum(diffs) / len(diffs) if diffs else 0.0
        return WindowStats(n, len(rtts), loss, min(rtts), sum(rtts) / len(rtts), max(rtts), jitter)


@dataclass(slots=True)
class Outstanding:
    """An echo sent and not yet answered."""

    target: str
    sent_at: float
    round_id: int


class ProbeBook:
    """Matches replies to echoes by sequence number and expires the unanswered ones."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._pending: dict[int, Outstanding] = {}
        self.late_or_unknown = 0  # replies matching nothing pending (late, duplicated or foreign)

    def sent(self, seq: int, target: str, now: float, round_id: int) -> Outstanding | None:
        """Remember an echo; returns a still pending echo it displaces (same wrapped sequence): lost."""
        displaced = self._pending.get(seq)
        self._pending[seq] = Outstanding(target, now, round_id)
        return displaced

    def replied(self, seq: int, source: str, now: float) -> tuple[str, float] | None:
        """The target and RTT of a matching reply, or None (late, duplicate, wrong source)."""
        out = self._pending.get(seq)
        if out is None or out.target != source or now - out.sent_at > self.timeout:
            self.late_or_unknown += 1
            return None
        del self._pending[seq]
        return out.target, max(0.0, now - out.sent_at)

    def expire(self, now: float) -> list[Outstanding]:
        """Echoes older than the timeout: lost."""
        gone = [seq for seq, out in self._pending.items() if now - out.sent_at > self.timeout]
        return [self._pending.pop(seq) for seq in gone]

    def next_deadline(self) -> float | None:
        """When the oldest pending echo times out (None when nothing is pending)."""
        if not self._pending:
            return None
        return min(out.sent_at for out in self._pending.values()) + self.timeout

    def pending(self) -> int:
        """How many echoes wait for a reply."""
        return len(self._pending)
