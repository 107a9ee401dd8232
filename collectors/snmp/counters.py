"""Turn raw SNMP counter readings into monotonic exported `_total` counters.

32-bit counters are unwrapped (delta mod 2^32) when the agent did not restart and the wrapped delta is
plausible; a restart (sysUpTime went backwards) or an implausible drop is a counter reset: the export
continues from its previous total plus the new raw value, so rates are never negative.
Time and uptime are passed in, so this is tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from operator import ge, sub

# A wrapped 32-bit delta above this is more likely a reset than a wrap (half the counter range).
MAX_WRAP_DELTA_32 = 2**31


@dataclass(slots=True)
class _Series:
    raws: tuple[int, ...]
    source: str
    total: float
    seen: float


class CounterTracker:
    """Per-device counter state: call begin() once per poll, then value() for each counter series."""

    def __init__(self, forget_after_s: float = 3600.0) -> None:
        self._series: dict[Hashable, _Series] = {}
        self._uptime: float | None = None
        self._now: float | None = None
        self._rebooted = False
        self.resets = 0
        self.wraps = 0
        self._forget_after = forget_after_s
        self._swept = float("-inf")

    @property
    def rebooted(self) -> bool:
        """Whether the current poll saw the agent restart."""
        return self._rebooted

    def begin(self, uptime_s: float | None, now: float) -> None:
        """Start a poll: detect an agent restart from sysUpTime going backwards."""
        self._rebooted = uptime_s is not None and self._uptime is not None and uptime_s < self._uptime
        if uptime_s is not None:
            self._uptime = uptime_s
        self._now = now
        # Series unseen for forget_after are dropped here now and then (for memory); value() treats
        # one that old as new anyway, so the result does not depend on when the sweep runs.
        if now - self._swept > self._forget_after / 4 or now < self._swept:
            self._swept = now
            stale = [k for k, s in self._series.items() if now - s.seen > self._forget_after]
            for k in stale:
                del self._series[k]

    def value(self, key: Hashable, raws: tuple[int, ...], bits: int, source: str = "") -> float:
        """The exported monotonic total for a series given its raw component readings."""
        now = self._now if self._now is not None else 0.0
        prev = self._series.get(key)
        if prev is None or now - prev.seen > self._forget_after:
            s = _Series(raws, source, float(sum(raws)), now)
            self._series[key] = s
            return s.total
        if prev.source != source or len(prev.raws) != len(raws):
            # The agent switched between 64- and 32-bit columns: re-baseline, add nothing.
            prev.raws, prev.source, prev.seen = raws, source, now
            return prev.total
        delta = 0
        for old, new in zip(prev.raws, raws, strict=True):
            delta += self._delta(old, new, bits)
        prev.total += delta
        prev.raws, prev.seen = raws, now
        return prev.total

    def values(
        self,
        metric: str,
        labels: Sequence[Hashable],
        raws: Sequence[tuple[int, ...]],
        bits: Sequence[int],
        sources: Sequence[str],
    ) -> list[float]:
        """value() for each series of one metric (keys `(metric, labels[i])`), in one call."""
        now = self._now if self._now is not None else 0.0
        series = self._series
        forget = self._forget_after
        rebooted = self._rebooted
        out: list[float] = []
        for lab, r, b, src in zip(labels, raws, bits, sources, strict=True):
            prev = series.get((metric, lab))
            # The common case inline: same source, no restart, every reading up (no wrap, no reset).
            if prev is not None and not rebooted and prev.source == src and now - prev.seen <= forget:
                old = prev.raws
                if len(r) == 1 and len(old) == 1 and r[0] >= old[0]:
                    prev.total += r[0] - old[0]
                    prev.raws, prev.seen = r, now
                    out.append(prev.total)
                    continue
                if len(r) == len(old) and all(map(ge, r, old)):
                    prev.total += sum(map(sub, r, old))
                    prev.raws, prev.seen = r, now
                    out.append(prev.total)
                    continue
            out.append(self.value((metric, lab), r, b, src))
        return out

    def _delta(self, old: int, new: int, bits: int) -> int:
        if self._rebooted:
            # Counters restarted from zero with the agent: everything counted since is new.
            self.resets += 1
            return new
        if new >= old:
            return new - old
        if bits == 32:
            wrapped = new + 2**32 - old
            if wrapped <= MAX_WRAP_DELTA_32:
                self.wraps += 1
                return wrapped
        self.resets += 1
        return new
