"""Turn raw SNMP counter readings into monotonic exported `_total` counters.

32-bit counters are unwrapped (delta mod 2^32) when the agent did not restart and the wrapped delta is
plausible; a restart (sysUpTime went backwards) or an implausible drop is a counter reset: the export
continues from its previous total plus the new raw value, so rates are never negative.
Time and uptime are passed in, so this is tested without sleeping.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from operator import ge, is_, sub

# A wrapped 32-bit delta above this is more likely a reset than a wrap (half the counter range).
MAX_WRAP_DELTA_32 = 2**31


@dataclass(slots=True)
class _Series:
    raws: tuple[int, ...]
    source: str
    total: float
    seen: float


@dataclass(slots=True)
class _Block:
    """One metric's counter series as of the poll that last saw them all, by position."""

    labels: tuple[Hashable, ...]
    k: int  # readings per series
    raws: array[float]  # k per series
    totals: array[float]
    sources: list[str] | str  # per series, or the one source of every series (the usual case)
    seen: float


class CounterTracker:
    """Per-device counter state: call begin() once per poll, then value() for each counter series."""

    def __init__(self, forget_after_s: float = 3600.0) -> None:
        self._series: dict[Hashable, _Series] = {}
        self._blocks: dict[str, _Block] = {}  # values(): per metric, its series by position
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
            for metric in [m for m, b in self._blocks.items() if now - b.seen > self._forget_after]:
                del self._blocks[metric]

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
        """value() for each series of one metric (keys `(metric, labels[i])`), in one call.

        While a metric's series are the previous poll's (the same label objects, in the same order)
        their state is a compact block (readings and totals in arrays, ~40 bytes a series instead of
        ~290 for dict entries of _Series) updated by position; any other case goes through value()
        series by series, so the results are value()'s in every case.
        """
        now = self._now if self._now is not None else 0.0
        blk = self._blocks.get(metric)
        n = len(labels)
        k = len(raws[0]) if n else 1
        if (
            blk is not None
            and not self._rebooted
            and blk.k == k
            and now - blk.seen <= self._forget_after
            and len(blk.labels) == n
            and all(map(is_, labels, blk.labels))
        ):
            return self._block_values(blk, raws, bits, sources, now)
        if blk is not None:
            self._retire(metric, blk)
        out = [
            self.value((metric, lab), r, b, src)
            for lab, r, b, src in zip(labels, raws, bits, sources, strict=True)
        ]
        if n and all(len(r) == k for r in raws) and len(set(labels)) == n:
            # Move the series into a block for the next poll.
            series = [self._series.pop((metric, lab)) for lab in labels]
            srcs = [st.source for st in series]
            # Built at their final size; one source string when all agree (~1 kB less per metric).
            self._blocks[metric] = _Block(
                tuple(labels),
                k,
                array("d", [x for st in series for x in st.raws]),
                array("d", [st.total for st in series]),
                srcs[0] if srcs.count(srcs[0]) == len(srcs) else srcs,
                now,
            )
        else:
            self._blocks.pop(metric, None)
        return out

    def _block_values(
        self,
        blk: _Block,
        raws: Sequence[tuple[int, ...]],
        bits: Sequence[int],
        sources: Sequence[str],
        now: float,
    ) -> list[float]:
        # value()'s arithmetic by position: old readings are floats made from ints (exact), totals floats.
        k, old_raws, totals = blk.k, blk.raws, blk.totals
        old_sources: list[str] | None
        if isinstance(blk.sources, str):
            one = blk.sources
            # Every series still from that one source: nothing to compare, series by series.
            old_sources = None if sources.count(one) == len(sources) else [one] * len(sources)
            if old_sources is not None:
                blk.sources = old_sources
        else:
            old_sources = blk.sources
        out: list[float] = []
        for i, (r, src) in enumerate(zip(raws, sources, strict=True)):
            total = totals[i]
            if old_sources is not None and old_sources[i] != src:
                # The agent switched between 64- and 32-bit columns: re-baseline, add nothing.
                old_sources[i] = src
            elif k == 1:
                old, new = int(old_raws[i]), r[0]
                total += new - old if new >= old else self._delta(old, new, bits[i])
            else:
                old_t = list(map(int, old_raws[i * k : (i + 1) * k]))
                if all(map(ge, r, old_t)):
                    total += sum(map(sub, r, old_t))
                else:
                    delta = 0
                    for o, nw in zip(old_t, r, strict=True):
                        delta += self._delta(o, nw, bits[i])
                    total += delta
            totals[i] = total
            out.append(total)
        if k == 1:
            old_raws[:] = array("d", [r[0] for r in raws])
        else:
            old_raws[:] = array("d", [x for r in raws for x in r])
        blk.seen = now
        return out

    def _retire(self, metric: str, blk: _Block) -> None:
        # A block's series back into the per-series dict (where value() finds them).
        k = blk.k
        for i, lab in enumerate(blk.labels):
            raws = tuple(map(int, blk.raws[i * k : (i + 1) * k]))
            src = blk.sources if isinstance(blk.sources, str) else blk.sources[i]
            self._series[(metric, lab)] = _Series(raws, src, blk.totals[i], blk.seen)
        del self._blocks[metric]

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
