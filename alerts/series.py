"""The engine's view of the samples: latest set per device plus a short history for rates."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from alerts.regex import compile_linear
from core.samples import Sample

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


def matches(labels: Labels, match: dict[str, str]) -> bool:
    """True if every `match` value is a full regex match of that label (missing label = empty string)."""
    if not match:
        return True
    got = dict(labels)
    return all(_regex(v).fullmatch(got.get(k, "")) is not None for k, v in match.items())


def _regex(pattern: str) -> Any:
    # Linear time (RE2): a rule's match pattern cannot stall the engine whatever the label text.
    return compile_linear(pattern)


class SeriesStore:
    """Keeps each device's complete latest sample set (a series missing from a poll vanishes) and history."""

    def __init__(self, history_seconds: float = 900.0) -> None:
        self.history_seconds = history_seconds
        self._current: dict[str, set[SeriesKey]] = {}
        self._history: dict[SeriesKey, deque[tuple[float, float]]] = {}
        self._by_metric: dict[str, set[Labels]] = {}  # every rule looks series up by metric name

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Replace `device`'s current series with this poll's samples (Sink protocol)."""
        keys: set[SeriesKey] = set()
        for s in samples:
            key = (s.metric, tuple(sorted(s.labels)))
            keys.add(key)
            hist = self._history.setdefault(key, deque())
            if hist and s.timestamp <= hist[-1][0]:
                continue  # out of order or repeated: keep the first value seen for a timestamp
            hist.append((s.timestamp, s.value))
            while hist and hist[0][0] < s.timestamp - self.history_seconds:
                hist.popleft()
        old = self._current.get(device, set())
        for gone in old - keys:
            # A vanished series starts afresh if it comes back: no rate across the gap.
            self._history.pop(gone, None)
            self._by_metric.get(gone[0], set()).discard(gone[1])
        for name, labels in keys - old:
            self._by_metric.setdefault(name, set()).add(labels)
        self._current[device] = keys

    def forget(self, device: str) -> None:
        """Drop a device entirely (removed from the inventory)."""
        for key in self._current.pop(device, set()):
            self._history.pop(key, None)
            self._by_metric.get(key[0], set()).discard(key[1])

    def devices(self) -> Iterable[str]:
        """Devices that have published at least once (internal sources, keyed from NUL, excluded)."""
        return [d for d in self._current if not d.startswith("\x00")]

    def series(self, metric: str, match: dict[str, str]) -> list[tuple[Labels, deque[tuple[float, float]]]]:
        """Current series of `metric` whose labels include `match`, with their history."""
        return [
            (labels, self._history[(metric, labels)])
            for labels in self._by_metric.get(metric, ())
            if matches(labels, match)
        ]

    def latest(self, metric: str, labels: Labels) -> float | None:
        """Latest value of one current series, if present."""
        hist = self._history.get((metric, labels))
        return hist[-1][1] if hist else None

    def device_labels(self, device: str) -> Labels:
        """The device labels (device, site, role, vendor) seen on the device's govnet_up series."""
        for name, labels in self._current.get(device, set()):
            if name == "govnet_up":
                keep = {"device", "site", "role", "vendor"}
                return tuple((k, v) for k, v in labels if k in keep)
        return (("device", device),)
