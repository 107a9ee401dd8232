"""The engine's view of the samples: latest set per device plus a short history for rates."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from alerts.regex import compile_linear
from core.samples import BoundedTable, Layout, Sample, SampleSet

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]
Points = Sequence[tuple[float, float]]  # one series' (timestamp, value) points, oldest first


def matches(labels: Labels, match: dict[str, str]) -> bool:
    """True if every `match` value is a full regex match of that label (missing label = empty string)."""
    if not match:
        return True
    got = dict(labels)
    return all(_regex(v).fullmatch(got.get(k, "")) is not None for k, v in match.items())


def _regex(pattern: str) -> Any:
    # Linear time (RE2): a rule's match pattern cannot stall the engine whatever the label text.
    return compile_linear(pattern)


@dataclass(slots=True)
class _Shape:
    """Which series of one layout structure the store keeps: shared by every device polled alike."""

    wpos: array[int]  # layout positions of the series with a history (windowed metrics), in order
    vpos: array[int]  # layout positions of the series kept as their latest point only
    by_metric: dict[str, tuple[bool, array[int]]]  # metric -> (windowed?, its columns in wpos/vpos)
    horizon: float  # the longest history any windowed column keeps


@dataclass(slots=True)
class _Dev:
    """One publisher's kept series: the latest point of each value column, a ring of windowed columns."""

    layout: Layout
    shape: _Shape
    labels: dict[int, Labels] | None  # positions whose labels were not sorted: their sorted copy
    skip: frozenset[int] | None  # positions repeating an earlier (metric, labels) of the set
    vt: array[float]  # per value column: timestamp of its latest accepted point
    vv: array[float]  # per value column: its value
    ring: deque[tuple[float | array[float], array[float]]]  # per publish: stamps, windowed values
    since: array[int]  # per windowed column: the ring entry (absolute number) where its run began
    base: int  # absolute number of ring[0]
    mono: bool = True  # every ring entry has one stamp, each later than the one before (the usual case)


_MAX_SHAPES = 4096  # distinct layout structures remembered (devices polled alike share one)


class SeriesStore:
    """Keeps each device's complete latest sample set (a series missing from a poll vanishes) and history.

    Memory is per device, in columns: `keep` names the metrics the rules read and how many seconds of
    history each needs (0: the latest point only); other metrics are not kept (None keeps every metric
    with `history_seconds` of history). A device's columns are positions in its layout (shared with
    the latest store): a poll whose series are the previous poll's costs one array of its kept values,
    ~8 bytes a series, instead of per-series deques of (time, value) tuples (~2 kB a series).

    Per series the points are what a per-series history gave: a point is taken only when newer than
    the series' last one (the first value seen for a timestamp stays), a series absent from a
    publish starts afresh if it comes back, points older than its newest minus its history go.
    A (metric, labels) repeated within one set keeps its first occurrence.
    """

    def __init__(self, history_seconds: float = 900.0, keep: Mapping[str, float] | None = None) -> None:
        self.history_seconds = history_seconds
        self.keep = dict(keep) if keep is not None else None
        self._devs: dict[str, _Dev] = {}
        self._by_label: dict[str, set[str]] = {}  # `device` label value -> publishers with such series
        self._index: tuple[str, str, dict[Labels, int]] | None = None  # latest(): one device's lookup
        self._shapes: BoundedTable[tuple[tuple[Any, ...], bytes], _Shape] = BoundedTable(_MAX_SHAPES)

    # -- input ---------------------------------------------------------------------------------

    def _horizon(self, metric: str) -> float | None:
        if self.keep is None:
            return self.history_seconds
        return self.keep.get(metric)

    def _shape(self, layout: Layout) -> _Shape:
        key = (layout.heads, layout.head_of.tobytes())
        shape = self._shapes.get(key)
        if shape is not None:
            return shape
        horizons = [self._horizon(h[0]) for h in layout.heads]
        wpos: list[int] = []
        vpos: list[int] = []
        cols: dict[str, tuple[bool, list[int]]] = {}
        for pos, hi in enumerate(layout.head_of):
            h = horizons[hi]
            if h is None:
                continue
            windowed = h > 0
            group = wpos if windowed else vpos
            cols.setdefault(layout.heads[hi][0], (windowed, []))[1].append(len(group))
            group.append(pos)
        horizon = max((h for h in horizons if h), default=0.0)
        shape = _Shape(
            array("I", wpos),
            array("I", vpos),
            {m: (w, array("I", c)) for m, (w, c) in cols.items()},
            horizon,
        )
        return self._shapes.keep(key, shape)

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Replace `device`'s current series with this poll's samples (Sink protocol)."""
        dev = self._devs.get(device)
        if not isinstance(samples, SampleSet):
            samples = SampleSet.of(samples, like=dev.layout if dev is not None else None)
        self._index = None
        if dev is not None and samples.layout is dev.layout:
            self._update(dev, samples)
        else:
            self._replace(device, dev, samples)

    def _update(self, dev: _Dev, samples: SampleSet) -> None:
        # The same series as the previous publish: columns stay, values move.
        shape, values, st = dev.shape, samples.values, _stamps(samples)
        if shape.vpos:
            new = _gather(values, shape.vpos)
            if isinstance(st, float) and st > max(dev.vt):
                dev.vv, dev.vt = new, array("d", [st]) * len(new)
            else:
                stamps = _gather(st, shape.vpos) if isinstance(st, array) else [st] * len(new)
                for c, (t, v) in enumerate(zip(stamps, new, strict=True)):
                    if t > dev.vt[c]:
                        dev.vt[c], dev.vv[c] = t, v
        if shape.wpos:
            wst: float | array[float] = st if isinstance(st, float) else _gather(st, shape.wpos)
            if dev.ring and not _advances(dev, wst):
                return  # no column takes a point from this publish
            _append(dev, wst, _gather(values, shape.wpos))
            _prune(dev)

    def _replace(self, device: str, old: _Dev | None, samples: SampleSet) -> None:
        # New series (first publish, or a different layout): columns rebuilt, runs carried by key.
        layout = samples.layout
        shape = self._shape(layout)
        fixed, skip = _canonical(layout, shape)
        values, st = samples.values, _stamps(samples)
        nv, nw = len(shape.vpos), len(shape.wpos)
        vt = array("d", [st]) * nv if isinstance(st, float) else _gather(st, shape.vpos)
        vv = _gather(values, shape.vpos)
        wst: float | array[float] = st if isinstance(st, float) else _gather(st, shape.wpos)
        ring: deque[tuple[float | array[float], array[float]]] = deque()
        base = old.base + len(old.ring) if old is not None else 0
        since = array("q", [base]) * nw
        carried: list[tuple[int, int]] = []  # (new windowed column, old windowed column)
        if old is not None and (old.shape.vpos or old.shape.wpos):
            before = _columns(old)
            for windowed, positions in ((False, shape.vpos), (True, shape.wpos)):
                for c, pos in enumerate(positions):
                    key = (layout.heads[layout.head_of[pos]][0], _labels_at(layout, fixed, pos))
                    got = before.get(key)
                    if got is None or got[0] != windowed or (skip is not None and pos in skip):
                        continue
                    if windowed:
                        carried.append((c, got[1]))
                    elif old.vt[got[1]] >= vt[c]:
                        vt[c], vv[c] = old.vt[got[1]], old.vv[got[1]]  # not newer: the old point stays
            if carried:
                # The ring in the new column order; columns without a past are never read there.
                ring = deque((_pick(s, carried, nw), _pick(v, carried, nw)) for s, v in old.ring)
                base = old.base
                for c, oc in carried:
                    since[c] = old.since[oc]
        dev = _Dev(
            layout, shape, fixed, skip, vt, vv, ring, since, base, old.mono if carried and old else True
        )
        if nw and (not ring or _advances(dev, wst)):
            _append(dev, wst, _gather(values, shape.wpos))
            _prune(dev)
        self._unlabel(device, old)
        self._devs[device] = dev
        for name in _device_labels_of(dev):
            self._by_label.setdefault(name, set()).add(device)

    def forget(self, device: str) -> None:
        """Drop a device entirely (removed from the inventory)."""
        self._index = None
        self._unlabel(device, self._devs.pop(device, None))

    def _unlabel(self, device: str, dev: _Dev | None) -> None:
        if dev is None:
            return
        for name in _device_labels_of(dev):
            pubs = self._by_label.get(name)
            if pubs is not None:
                pubs.discard(device)
                if not pubs:
                    del self._by_label[name]

    # -- queries -------------------------------------------------------------------------------

    def devices(self) -> Iterable[str]:
        """Devices that have published at least once (internal sources, keyed from NUL, excluded)."""
        return [d for d in self._devs if not d.startswith("\x00")]

    def series(self, metric: str, match: dict[str, str]) -> list[tuple[Labels, Points]]:
        """Current series of `metric` whose labels include `match`, with their points (oldest first)."""
        return [found for chunk in self.series_by_device(metric, match) for found in chunk]

    def series_by_device(self, metric: str, match: dict[str, str]) -> Iterator[list[tuple[Labels, Points]]]:
        """`series`, one device's at a time: a caller may hand the event loop back between devices (the
        devices are those published when the walk began; samples published meanwhile may show)."""
        horizon = self._horizon(metric) or 0.0
        for dev in list(self._devs.values()):
            got = dev.shape.by_metric.get(metric)
            if got is None:
                continue
            out: list[tuple[Labels, Points]] = []
            windowed, cols = got
            positions = dev.shape.wpos if windowed else dev.shape.vpos
            lab, fixed, skip = dev.layout.labels, dev.labels, dev.skip
            run = _Run(dev, horizon) if windowed and dev.mono else None
            for c in cols:
                pos = positions[c]
                if skip is not None and pos in skip:
                    continue
                labels = lab[pos] if fixed is None else _labels_at(dev.layout, fixed, pos)
                if match and not matches(labels, match):
                    continue
                if not windowed:
                    out.append((labels, ((dev.vt[c], dev.vv[c]),)))
                else:
                    out.append((labels, run.points(c) if run is not None else _points(dev, c, horizon)))
            yield out

    def latest(self, metric: str, labels: Labels) -> float | None:
        """Latest value of one current series, if present."""
        name = next((v for k, v in labels if k == "device"), "")
        for device in (device for device in self._by_label.get(name, ()) if device in self._devs):
            dev = self._devs[device]
            got = dev.shape.by_metric.get(metric)
            if got is None:
                continue
            index = self._index
            if index is None or index[0] != device or index[1] != metric:
                # Rules look up series device after device: one device's lookup kept at a time.
                windowed, cols = got
                positions = dev.shape.wpos if windowed else dev.shape.vpos
                found: dict[Labels, int] = {}
                for c in cols:
                    pos = positions[c]
                    if dev.skip is None or pos not in dev.skip:
                        found.setdefault(_labels_at(dev.layout, dev.labels, pos), c)
                index = self._index = (device, metric, found)
            col = index[2].get(labels)
            if col is None:
                continue
            if got[0]:
                pts = _points(dev, col, self._horizon(metric) or 0.0)
                return pts[-1][1] if pts else None
            return dev.vv[col]
        return None

    def device_labels(self, device: str) -> Labels:
        """The device labels (device, site, role, vendor) seen on the device's govnet_up series."""
        dev = self._devs.get(device)
        got = dev.shape.by_metric.get("govnet_up") if dev is not None else None
        if dev is not None and got is not None:
            positions = dev.shape.wpos if got[0] else dev.shape.vpos
            for c in got[1]:
                keep = {"device", "site", "role", "vendor"}
                labels = _labels_at(dev.layout, dev.labels, positions[c])
                return tuple((k, v) for k, v in labels if k in keep)
        return (("device", device),)


def _stamps(samples: SampleSet) -> float | array[float]:
    st = samples.stamps
    return st if isinstance(st, array) else float(st)


def _gather(values: array[float], positions: array[int]) -> array[float]:
    if len(positions) <= 1:
        return array("d", [values[p] for p in positions])
    return array("d", itemgetter(*positions)(values))


def _pick(data: float | array[float], carried: list[tuple[int, int]], n: int) -> Any:
    # An old ring entry's stamps or values in the new column order (0.0 where a column has no past).
    if isinstance(data, float):
        return data
    out = array("d", [0.0]) * n
    for c, oc in carried:
        out[c] = data[oc]
    return out


def _labels_at(layout: Layout, fixed: dict[int, Labels] | None, pos: int) -> Labels:
    if fixed is not None:
        got = fixed.get(pos)
        if got is not None:
            return got
    return layout.labels[pos]


def _canonical(layout: Layout, shape: _Shape) -> tuple[dict[int, Labels] | None, frozenset[int] | None]:
    # The kept positions' labels sorted (copies only where they were not), and repeated keys.
    fixed: dict[int, Labels] = {}
    checked: dict[int, Labels | None] = {}
    seen: set[SeriesKey] = set()
    skip: set[int] = set()
    for pos in (*shape.vpos, *shape.wpos):
        labs = layout.labels[pos]
        got = checked.get(id(labs), labs)
        if got is labs:
            ordered = tuple(sorted(labs))
            got = checked[id(labs)] = None if ordered == labs else ordered
        if got is not None:
            fixed[pos] = got
        key = (layout.heads[layout.head_of[pos]][0], got if got is not None else labs)
        if key in seen:
            skip.add(pos)
        seen.add(key)
    return (fixed or None), (frozenset(skip) or None)


def _columns(dev: _Dev) -> dict[SeriesKey, tuple[bool, int]]:
    # Each kept series of a device by key: (windowed?, its column).
    out: dict[SeriesKey, tuple[bool, int]] = {}
    layout = dev.layout
    for windowed, positions in ((False, dev.shape.vpos), (True, dev.shape.wpos)):
        for c, pos in enumerate(positions):
            if dev.skip is None or pos not in dev.skip:
                metric = layout.heads[layout.head_of[pos]][0]
                out[(metric, _labels_at(layout, dev.labels, pos))] = (windowed, c)
    return out


def _device_labels_of(dev: _Dev) -> set[str]:
    out: set[str] = set()
    seen: set[int] = set()
    for pos in (*dev.shape.vpos, *dev.shape.wpos):
        labs = dev.layout.labels[pos]
        if id(labs) not in seen:
            seen.add(id(labs))
            out.add(next((v for k, v in labs if k == "device"), ""))
    return out


def _stamp(st: float | array[float], c: int) -> float:
    return st if isinstance(st, float) else st[c]


def _points(dev: _Dev, c: int, horizon: float) -> list[tuple[float, float]]:
    # Column c's run: the points newer than the one before, then the last `horizon` seconds of them.
    pts: list[tuple[float, float]] = []
    start = max(0, dev.since[c] - dev.base)
    for i in range(start, len(dev.ring)):
        st, values = dev.ring[i]
        t = _stamp(st, c)
        if pts and t <= pts[-1][0]:
            continue
        pts.append((t, values[c]))
    if pts:
        limit = pts[-1][0] - horizon
        first = 0
        while pts[first][0] < limit:
            first += 1
        del pts[:first]
    return pts


def _append(dev: _Dev, st: float | array[float], values: array[float]) -> None:
    ring = dev.ring
    if dev.mono and not (isinstance(st, float) and (not ring or st > ring[-1][0])):  # type: ignore[operator]
        dev.mono = False
    ring.append((st, values))


class _Run:
    """A device's ring read for many columns at once, when its stamps are single and increasing: a
    column's points are then every entry of its run within the horizon (none is skipped)."""

    def __init__(self, dev: _Dev, horizon: float) -> None:
        self.dev = dev
        self.stamps: list[float] = [st for st, _ in dev.ring]  # type: ignore[misc]
        self.values = [v for _, v in dev.ring]
        # The newest point of every column is the last entry's: the horizon starts at the same place.
        self.first = bisect_left(self.stamps, self.stamps[-1] - horizon) if self.stamps else 0

    def points(self, c: int) -> list[tuple[float, float]]:
        start = max(self.first, self.dev.since[c] - self.dev.base)
        return list(zip(self.stamps[start:], map(itemgetter(c), self.values[start:]), strict=True))


def _advances(dev: _Dev, st: float | array[float]) -> bool:
    # Whether a publish with these stamps can give some windowed column a point (else it is not kept:
    # a source repeating its timestamps must not grow the ring). A later single stamp is kept at once
    # (if no column takes it after all, reading skips it, as a per-series history would have).
    ring = dev.ring
    last = ring[-1][0]
    if isinstance(st, float) and isinstance(last, float) and st > last:
        return True
    top = dev.base + len(ring) - 1
    for c in range(len(dev.since)):
        if dev.since[c] > top:
            return True
        pts = _points(dev, c, float("inf"))
        if not pts or _stamp(st, c) > pts[-1][0]:
            return True
    return False


def _prune(dev: _Dev) -> None:
    # Drop ring entries older than any column's history: every stamp of theirs is below the oldest
    # stamp of the newest entry minus the longest history (a column's newest point is at least that).
    ring, horizon = dev.ring, dev.shape.horizon
    newest = ring[-1][0]
    floor = (newest if isinstance(newest, float) else min(newest, default=0.0)) - horizon
    while len(ring) > 1:
        st = ring[0][0]
        if (st if isinstance(st, float) else max(st, default=0.0)) >= floor:
            break
        ring.popleft()
        dev.base += 1
