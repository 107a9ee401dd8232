"""The unit of measurement every collector emits and every exporter consumes."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Literal, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")

MetricType = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one metric series at one time (unix seconds, UTC).

    `metric` is the full Prometheus name (`govnet_if_in_octets_total`); `labels`
    always include the device labels (device, site, role, vendor) for device series.
    """

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp: float
    type: MetricType = "gauge"
    help: str = field(default="", compare=False)

    @property
    def label_dict(self) -> dict[str, str]:
        """The labels as a dict (a copy)."""
        return dict(self.labels)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping, as printed by `govnet poll-once --json`."""
        return {
            "metric": self.metric,
            "labels": dict(self.labels),
            "value": self.value,
            "timestamp": self.timestamp,
            "type": self.type,
        }


def labels_of(**kv: str) -> tuple[tuple[str, str], ...]:
    """Build a canonical (sorted) label tuple."""
    return tuple(sorted(kv.items()))


Labels = tuple[tuple[str, str], ...]
# What a family's series share: its name, type and HELP text.
Head = tuple[str, MetricType, str]


class BoundedTable(dict[K, V]):
    """A table of shared or cached values by key, at most `limit` of them (emptied when full)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key: K, value: V) -> V:
        """Keep `value` under `key` (the table is emptied first when full: sharing restarts); returns it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


# Label pairs shared by every series and device that has them (the same interface names, roles, sites
# on thousands of devices): one tuple and one string each.
_PAIRS: BoundedTable[tuple[str, str], tuple[str, str]] = BoundedTable(1 << 20)


def intern_pair(name: str, value: str) -> tuple[str, str]:
    """The shared (name, value) tuple equal to the given one."""
    key = (name, value)
    got = _PAIRS.get(key)
    if got is None:
        got = _PAIRS.keep(key, (sys.intern(name), sys.intern(value)))
    return got


# Label tuples shared the same way (a row's labels before the device's: the same interface names on
# every switch of a model); each is already made of shared pairs.
_LABELS: BoundedTable[Labels, Labels] = BoundedTable(1 << 18)


def intern_labels(labels: Labels) -> Labels:
    """The shared label tuple equal to the given one (whose pairs come from intern_pair)."""
    got = _LABELS.get(labels)
    if got is None:
        got = _LABELS.keep(labels, labels)
    return got


# Heads shared the same way: a layout that arrives unpickled brings its own copy of every name and
# HELP text (~6 kB per device); equal heads are one tuple for every device.
_HEADS: BoundedTable[Head, Head] = BoundedTable(1 << 16)


def intern_head(head: Head) -> Head:
    """The shared head tuple equal to the given one."""
    got = _HEADS.get(head)
    if got is None:
        got = _HEADS.keep(head, (sys.intern(head[0]), head[1], sys.intern(head[2])))
    return got


class Layout:
    """The series of one sample set without their values: what stays the same from poll to poll.

    Per series it keeps only an index into the few distinct (metric, type, help) heads and a reference
    to its (shared) label tuple, so a device's layout is built once and reused by every poll whose
    series are unchanged; only the values are new. Identity is equality for caching (`same_as`
    compares contents).
    """

    __slots__ = ("__weakref__", "head_of", "heads", "labels")

    def __init__(self, heads: tuple[Head, ...], head_of: array[int], labels: tuple[Labels, ...]) -> None:
        if len(head_of) != len(labels):
            raise ValueError("one head index and one label tuple per series")
        self.heads = heads
        self.head_of = head_of
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def same_as(self, other: Layout | None) -> bool:
        """True if `other` describes exactly the same series (by content)."""
        if other is None:
            return False
        if other is self:
            return True
        return self.heads == other.heads and self.head_of == other.head_of and self.labels == other.labels

    def __reduce__(self) -> tuple[type[Layout], tuple[tuple[Head, ...], array[int], tuple[Labels, ...]]]:
        return Layout, (self.heads, self.head_of, self.labels)

    @staticmethod
    def build(heads: Sequence[Head], labels: Sequence[Labels]) -> Layout:
        """A layout from one head and one label tuple per series (heads deduplicated here)."""
        index: dict[Head, int] = {}
        head_of = [index.setdefault(h, len(index)) for h in heads]
        return Layout(tuple(index), _index_array(head_of, len(index)), tuple(labels))

    def interned(self) -> Layout:
        """The same layout with its label pairs and heads shared (intern_pair, intern_head); label tuples
        that were one object stay one object. For layouts that arrive unpickled, each with its own
        copies of every string."""
        memo: dict[int, Labels] = {}
        labels = []
        for labs in self.labels:
            got = memo.get(id(labs))
            if got is None:
                got = memo[id(labs)] = tuple([intern_pair(k, v) for k, v in labs])
            labels.append(got)
        return Layout(tuple(map(intern_head, self.heads)), self.head_of, tuple(labels))

    def concat(self, other: Layout) -> Layout:
        """This layout's series followed by `other`'s."""
        heads = list(self.heads)
        where = {h: i for i, h in enumerate(heads)}
        remap = []
        for h in other.heads:
            if h not in where:
                where[h] = len(heads)
                heads.append(h)
            remap.append(where[h])
        head_of = list(self.head_of) + [remap[i] for i in other.head_of]
        return Layout(tuple(heads), _index_array(head_of, len(heads)), self.labels + other.labels)


def _index_array(indexes: list[int], distinct: int) -> array[int]:
    return array("H" if distinct < 65536 else "I", indexes)


class SampleSet(Sequence[Sample]):
    """One device's poll as a compact, immutable sequence of Samples: a shared Layout, the values in an
    `array('d')` and one timestamp (or one per series). Samples are made only when read.

    A Sample object costs ~180 bytes (object, two floats, its share of the label tuples); a series here
    costs 8 bytes of value plus ~10 bytes of layout, shared with the previous poll when unchanged.
    """

    __slots__ = ("layout", "stamps", "values")

    def __init__(self, layout: Layout, values: array[float], stamps: float | array[float]) -> None:
        if len(values) != len(layout) or (isinstance(stamps, array) and len(stamps) != len(values)):
            raise ValueError("one value (and timestamp) per series of the layout")
        self.layout = layout
        self.values = values
        self.stamps = stamps

    @staticmethod
    def of(samples: Iterable[Sample], like: Layout | None = None) -> SampleSet:
        """A SampleSet of `samples` (in order); reuses `like` when it describes the same series."""
        items = samples if isinstance(samples, list | tuple) else list(samples)
        layout = Layout.build([(s.metric, s.type, s.help) for s in items], [s.labels for s in items])
        layout = like if like is not None and layout.same_as(like) else layout.interned()
        stamps: float | array[float] = items[0].timestamp if items else 0.0
        if any(s.timestamp != stamps for s in items):
            stamps = array("d", [s.timestamp for s in items])
        return SampleSet(layout, array("d", [s.value for s in items]), stamps)

    def __len__(self) -> int:
        return len(self.values)

    def timestamps(self) -> Iterable[float]:
        """Each series' timestamp."""
        st = self.stamps
        return st if isinstance(st, array) else repeat(st, len(self.values))

    def __iter__(self) -> Iterator[Sample]:
        lay = self.layout
        heads = lay.heads
        for h, labels, value, ts in zip(
            map(heads.__getitem__, lay.head_of), lay.labels, self.values, self.timestamps(), strict=True
        ):
            yield Sample(h[0], labels, value, ts, h[1], h[2])

    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> list[Sample]: ...

    def __getitem__(self, i: int | slice) -> Sample | list[Sample]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        lay = self.layout
        h = lay.heads[lay.head_of[i]]
        st = self.stamps
        ts = st[i] if isinstance(st, array) else st
        return Sample(h[0], lay.labels[i], self.values[i], ts, h[1], h[2])

    def metrics(self) -> set[str]:
        """The metric names in the set (from the layout, no Samples made)."""
        return {h[0] for h in self.layout.heads}

    def __repr__(self) -> str:
        return f"SampleSet({len(self)} samples)"
