"""The engine's columnar series store answers exactly as the per-series store it replaced.

`_Reference` is the previous SeriesStore (a deque of (time, value) per series, every metric kept).
Random publish sequences (same layout reused, series vanishing and coming back, failed polls as plain
Sample lists, clocks going backwards, repeated timestamps, per-series timestamps, unsorted labels,
repeated series (at one timestamp), devices forgotten) go to both; after each step every query must
agree: with every metric kept, the same points; with `keep`, the latest point of value metrics and
the points within each windowed metric's history (what a rule can read).
"""

from __future__ import annotations

import random
from array import array
from collections import deque
from collections.abc import Sequence

import pytest

from alerts.engine import Engine, kept_metrics
from alerts.rules import load_rules
from alerts.series import SeriesStore
from core.samples import Head, Layout, Sample, SampleSet

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


class _Reference:
    """The previous SeriesStore, verbatim in what it answers."""

    def __init__(self, history_seconds: float = 900.0) -> None:
        self.history_seconds = history_seconds
        self._current: dict[str, set[SeriesKey]] = {}
        self._history: dict[SeriesKey, deque[tuple[float, float]]] = {}
        self._by_metric: dict[str, set[Labels]] = {}

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        keys: set[SeriesKey] = set()
        for s in samples:
            key = (s.metric, tuple(sorted(s.labels)))
            keys.add(key)
            hist = self._history.setdefault(key, deque())
            if hist and s.timestamp <= hist[-1][0]:
                continue
            hist.append((s.timestamp, s.value))
            while hist and hist[0][0] < s.timestamp - self.history_seconds:
                hist.popleft()
        old = self._current.get(device, set())
        for gone in old - keys:
            self._history.pop(gone, None)
            self._by_metric.get(gone[0], set()).discard(gone[1])
        for name, labels in keys - old:
            self._by_metric.setdefault(name, set()).add(labels)
        self._current[device] = keys

    def forget(self, device: str) -> None:
        for key in self._current.pop(device, set()):
            self._history.pop(key, None)
            self._by_metric.get(key[0], set()).discard(key[1])

    def devices(self) -> list[str]:
        return [d for d in self._current if not d.startswith("\x00")]

    def series(self, metric: str) -> dict[Labels, list[tuple[float, float]]]:
        return {labels: list(self._history[(metric, labels)]) for labels in self._by_metric.get(metric, ())}

    def latest(self, metric: str, labels: Labels) -> float | None:
        hist = self._history.get((metric, labels))
        return hist[-1][1] if hist else None

    def device_labels(self, device: str) -> Labels:
        for name, labels in self._current.get(device, set()):
            if name == "govnet_up":
                keep = {"device", "site", "role", "vendor"}
                return tuple((k, v) for k, v in labels if k in keep)
        return (("device", device),)


METRICS = ["govnet_up", "m_rate", "m_value", "m_other", "m_slow"]
KEEP = {"govnet_up": 0.0, "m_rate": 150.0, "m_value": 0.0, "m_slow": 400.0}


class _Device:
    """A random device: its series (some unsorted labels, sometimes a repeated one) and its layout."""

    def __init__(self, rng: random.Random, name: str, publisher: str) -> None:
        self.rng, self.name, self.publisher = rng, name, publisher
        self.layout: Layout | None = None
        self.repeated = False
        self.reshape()

    def reshape(self) -> None:
        rng = self.rng
        ports = rng.sample(range(8), rng.randint(0, 6))
        base = (("device", self.name), ("site", "s1"))
        heads: list[Head] = [("govnet_up", "gauge", "")]
        labels: list[Labels] = [base]
        for p in ports:
            lab: Labels = (*base, ("ifname", f"p{p}"))
            if rng.random() < 0.2:
                lab = tuple(reversed(lab))  # not sorted: the store sorts as before
            for metric in rng.sample(METRICS[1:], rng.randint(1, 4)):
                heads.append((metric, "gauge", ""))
                labels.append(lab)
        self.repeated = len(labels) > 1 and rng.random() < 0.1
        if self.repeated:
            heads.append(heads[-1])  # a repeated series: the first one counts (same timestamp)
            labels.append(labels[-1])
        self.layout = Layout.build(heads, labels)

    def publish(self, now: float) -> Sequence[Sample]:
        rng = self.rng
        if rng.random() < 0.15:
            self.reshape()
        assert self.layout is not None
        n = len(self.layout)
        values = array("d", [float(rng.randint(0, 5)) for _ in range(n)])
        stamps: float | array[float] = now
        if not self.repeated and rng.random() < 0.1:
            stamps = array("d", [now - rng.choice([0.0, 0.0, 30.0, 90.0]) for _ in range(n)])
        if rng.random() < 0.15:  # a failed poll or an internal source: plain Samples
            return [s for s in SampleSet(self.layout, values, stamps) if rng.random() < 0.7]
        return SampleSet(self.layout, values, stamps)


def _run(seed: int, keep: dict[str, float] | None) -> None:
    rng = random.Random(seed)
    ref = _Reference(history_seconds=500.0)
    store = SeriesStore(history_seconds=500.0, keep=keep)
    devs = [_Device(rng, f"d{i}", f"d{i}") for i in range(4)] + [_Device(rng, "d9", "\x00i/d9")]
    now = 1000.0
    for _step in range(300):
        dev = rng.choice(devs)
        if rng.random() < 0.03:
            ref.forget(dev.publisher)
            store.forget(dev.publisher)
            continue
        now += rng.choice([30.0, 60.0, 60.0, 0.0, -45.0])  # repeats and clock steps back too
        samples = dev.publish(now)
        ref.publish(dev.publisher, samples)
        store.publish(dev.publisher, samples)
        _compare(ref, store, keep)


def _compare(ref: _Reference, store: SeriesStore, keep: dict[str, float] | None) -> None:
    assert list(store.devices()) == ref.devices()
    for metric in METRICS:
        want = ref.series(metric)
        got = {labels: list(points) for labels, points in store.series(metric, {})}
        if keep is not None:
            if metric not in keep:
                assert got == {}
                continue
            if keep[metric] == 0:
                want = {k: v[-1:] for k, v in want.items()}
            else:
                want = {k: [p for p in v if p[0] >= v[-1][0] - keep[metric]] for k, v in want.items()}
        assert got == want, metric
        for labels in want:
            assert store.latest(metric, labels) == ref.latest(metric, labels)
        assert store.latest(metric, (("device", "d1"), ("ifname", "nowhere"))) is None
    for d in ("d0", "d1", "d2", "d3", "d9", "absent"):
        assert store.device_labels(d) == ref.device_labels(d)
    assert store.series("m_value", {"ifname": "p[0-3]"}) == [
        (labels, points) for labels, points in store.series("m_value", {}) if dict(labels)["ifname"] < "p4"
    ]


@pytest.mark.parametrize("seed", range(12))
def test_every_metric_kept_gives_the_same_points(seed: int) -> None:
    _run(seed, None)


@pytest.mark.parametrize("seed", range(12))
def test_kept_metrics_give_what_rules_can_read(seed: int) -> None:
    _run(seed, KEEP)


def test_engine_keeps_what_its_rules_and_itself_read() -> None:
    from alerts.rules import DEFAULT_RULES

    rules = load_rules(DEFAULT_RULES)
    keep = kept_metrics(rules)
    assert keep["govnet_if_in_octets_total"] == 300.0 + 60.0  # rate over 5m
    assert keep["govnet_if_speed_bps"] == 0.0  # `per`: the latest point
    assert keep["govnet_optic_rx_power_threshold_dbm"] == 0.0  # `against`
    assert keep["govnet_ha_role"] == 600.0 + 60.0  # changes over 10m, and split-brain reads it
    assert keep["govnet_up"] == 0.0 and keep["govnet_device_info"] == 0.0
    assert "govnet_if_in_packets_total" not in keep and "govnet_module_info" not in keep
    engine = Engine(rules)
    assert engine.store.keep == keep
