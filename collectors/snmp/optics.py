"""The 7-day baseline of each transceiver's receive power, so an alert can see a fibre degrade.

A dirty connector or a bent fibre lowers the received power by a few dB long before the link fails,
and a fixed threshold cannot tell that from a long span that always ran low. The baseline is the
median of one reading per hour over the trailing week (168 values per port, kept in memory): a
sudden drop moves the median little, so `rx - baseline <= -3 dB` catches the degradation.
Time is passed in; nothing here does I/O.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable

from core.samples import Sample

RX_METRIC = "govnet_optic_rx_power_dbm"
BASELINE_METRIC = "govnet_optic_rx_power_baseline_dbm"
Labels = tuple[tuple[str, str], ...]


class RxBaseline:
    """Median receive power per series over a trailing window, from one reading per bucket."""

    def __init__(
        self, window_s: float = 7 * 86400.0, bucket_s: float = 3600.0, min_buckets: int = 24
    ) -> None:
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.min_buckets = min_buckets  # no baseline before a day of history: absent, not wrong
        self._hist: dict[Labels, deque[tuple[int, float]]] = {}

    def observe(self, samples: Iterable[Sample], now: float) -> list[Sample]:
        """Record this poll's receive powers; return a baseline sample per series that has one."""
        bucket = int(now // self.bucket_s)
        oldest = bucket - int(self.window_s // self.bucket_s)
        out: list[Sample] = []
        seen: set[Labels] = set()
        for s in samples:
            if s.metric != RX_METRIC:
                continue
            seen.add(s.labels)
            hist = self._hist.setdefault(s.labels, deque())
            if not hist or hist[-1][0] < bucket:
                hist.append((bucket, s.value))  # the first reading of each hour stands for it
            while hist and hist[0][0] <= oldest:
                hist.popleft()
            if len(hist) >= self.min_buckets:
                median = statistics.median(v for _, v in hist)
                out.append(
                    Sample(
                        BASELINE_METRIC,
                        s.labels,
                        median,
                        now,
                        help="Median receive power over the last 7 days (one reading per hour).",
                    )
                )
        for gone in set(self._hist) - seen:
            # A port whose transceiver vanished (or was swapped) starts a new history.
            del self._hist[gone]
        return out
