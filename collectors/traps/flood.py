"""Trap flood control: token buckets per inventory source and one for everyone else, plus a queue cap."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass
class TrapGate:
    """Decides, before decoding, whether a datagram is processed; counts what it drops and why.

    Each inventory address has its own bucket (`rate` per second, `burst` at once), so a flood from
    one sender or from addresses outside the inventory cannot use up a device's share: legitimate
    traps keep arriving and are counted. All other senders share one bucket (`unknown_rate`), so
    spoofed random sources cannot create state. `max_pending` caps datagrams waiting for the decoder.
    """

    known: frozenset[str]
    rate: float = 100.0
    burst: float = 200.0
    unknown_rate: float = 200.0
    max_pending: int = 1000
    pending: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> datagrams
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def admit(self, source: str, now: float) -> bool:
        """True if the datagram from `source` may be decoded now (then call `done()` after it)."""
        if self.pending >= self.max_pending:
            self._drop("queue")
            return False
        key = source if source in self.known else ""
        rate = self.rate if key else self.unknown_rate
        burst = self.burst if key else 2 * self.unknown_rate
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            self._drop("source_rate" if key else "unknown_rate")
            return False
        bucket.tokens -= 1.0
        self.pending += 1
        return True

    def done(self) -> None:
        """One admitted datagram was decoded (or failed)."""
        self.pending -= 1

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
