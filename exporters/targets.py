"""Per-target exposition: one device's (or one shard's) series per scrape, and the http_sd listing.

Like snmp_exporter, Prometheus scrapes `/metrics?device=NAME` once per device (or
`/metrics?shard=I&shards=N` once per shard), with the target list from `/sd` (http_sd_configs), so no
single scrape carries every device. A device's text is rendered from its SampleSet with a plan made
once per layout (names and label text formatted once; only values per poll), and the last
CACHE_SIZE texts are reused by repeated scrapes until the device's next poll (the set is the key).
"""

from __future__ import annotations

import math
import operator
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from core.latest import LatestStore
from core.ring import HashRing
from core.samples import Layout, Sample, SampleSet

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_SHARDS = 1024
CACHE_SIZE = 256  # rendered device texts kept for repeated scrapes


def go_float(d: float) -> str:
    """A value as Go (and prometheus_client) writes it: +Inf, -Inf, NaN, exponent past 1e6."""
    if -1e15 < d < 1e6:  # the common case (false for NaN and the infinities): repr() is Go's text
        return repr(float(d))
    if math.isinf(d):
        return "+Inf" if d > 0 else "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(float(d))
    dot = s.find(".")
    if d > 0 and dot > 6:
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _escape_value(v: str) -> str:
    if "\\" not in v and "\n" not in v and '"' not in v:
        return v
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _family_head(s: Sample) -> str:
    return _head_text(s.metric, s.type, s.help)


@lru_cache(maxsize=4096)
def _head_text(metric: str, type_: str, help_text: str) -> str:
    # The same HELP/TYPE lines as the whole-node /metrics (prometheus_client's text format). Cached:
    # one string shared by every device's plan (a plan is kept per device layout).
    help_ = _escape_help(help_text or metric)
    kind = "gauge"
    if type_ == "counter":
        kind = "counter" if metric.endswith("_total") else "untyped"
    return f"# HELP {metric} {help_}\n# TYPE {metric} {kind}\n"


# Per layout (one device's series, shared by its polls while unchanged): the families in order, each
# with its HELP/TYPE text, its name, the series kept (valid, first of duplicates: a range when they are
# contiguous, as they are from the collectors) and each one's `{labels} ` text, shared by the series of
# one label set. ~10 bytes per series: kept for every device scraped per target.
_Family = tuple[str, str, "range | array[int]", tuple[str, ...]]
# The families, the series left out, and each family's position by name (the whole-node page takes
# one family from every device in turn).
_Plan = tuple[list[_Family], int, dict[str, int]]
# The plans of the layouts rendered last (~20-27 kB each for a 48-port switch). Bounded: keeping every
# device's plan cost ~135 MB at 5 000 devices, more than its render CPU is worth there (a plan is
# remade in ~0.5 ms); a whole-node page holds its own list of plans while it is written.
PLAN_CACHE_SIZE = 1024
_plans: OrderedDict[Layout, _Plan] = OrderedDict()
_plans_lock = threading.Lock()


def _plan(layout: Layout) -> _Plan:
    """What render() decides for each series, decided once per layout (the same rules)."""
    families: dict[str, tuple[str, list[int], list[str]]] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    label_text: dict[tuple[tuple[str, str], ...], str | None] = {}
    good_names: set[str] = set()
    invalid = 0
    heads = layout.heads
    for i, (hi, labs) in enumerate(zip(layout.head_of, layout.labels, strict=True)):
        metric, type_, help_ = heads[hi]
        labels = label_text.get(labs, "?")
        if labels == "?":
            ok = all(_LABEL.match(k) for k, _ in labs)
            text = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(labs))
            labels = label_text[labs] = ((("{" + text + "}") if text else "") + " ") if ok else None
        if metric not in good_names:
            if not _NAME.match(metric):
                invalid += 1
                continue
            good_names.add(metric)
        key = (metric, labs)
        if labels is None or key in seen:
            invalid += 1
            continue
        seen.add(key)
        fam = families.get(metric)
        if fam is None:
            fam = families[metric] = (_head_text(metric, type_, help_), [], [])
        fam[1].append(i)
        fam[2].append(labels)
    out: list[_Family] = []
    for metric, (head, idxs, texts) in families.items():
        rows: range | array[int] = range(idxs[0], idxs[-1] + 1)
        if len(rows) != len(idxs):
            rows = array("I", idxs)
        out.append((head, metric, rows, tuple(texts)))
    return out, invalid, {fam[1]: i for i, fam in enumerate(out)}


def plan_of(layout: Layout) -> _Plan:
    """The layout's plan, made on first use and kept among the last PLAN_CACHE_SIZE layouts used."""
    with _plans_lock:
        plan = _plans.get(layout)
        if plan is not None:
            _plans.move_to_end(layout)
            return plan
    plan = _plan(layout)
    with _plans_lock:
        _plans[layout] = plan
        while len(_plans) > PLAN_CACHE_SIZE:
            _plans.popitem(last=False)
    return plan


def family_lines(family: _Family, values: array[float]) -> str:
    """One planned family's sample lines (no HELP/TYPE) with these values."""
    _head, metric, rows, texts = family
    vals = values[rows.start : rows.stop] if type(rows) is range else map(values.__getitem__, rows)
    # metric + "{labels} " + value, one line each: the name comes in through the join separator.
    return metric + ("\n" + metric).join(map(operator.add, texts, map(go_float, vals))) + "\n"


def render_set(samples: SampleSet) -> tuple[bytes, int]:
    """render() of a SampleSet: the per-series text comes from its layout's cached plan; only the
    values are formatted per poll."""
    families, invalid, _index = plan_of(samples.layout)
    values = samples.values
    parts: list[str] = []
    for family in families:
        parts += (family[0], family_lines(family, values))
    return "".join(parts).encode("utf-8"), invalid


def render(samples: Iterable[Sample]) -> tuple[bytes, int]:
    """Prometheus text format of `samples`, grouped by family; (text, samples left out as invalid)."""
    if isinstance(samples, SampleSet):
        return render_set(samples)
    families: dict[str, list[str]] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    # An interface's labels are shared by its ~10 metrics: format each label set once.
    label_text: dict[tuple[tuple[str, str], ...], str | None] = {}
    good_names: set[str] = set()
    invalid = 0
    for s in samples:
        key = (s.metric, s.labels)
        labels = label_text.get(s.labels, "?")  # "?" = not formatted yet (a label text is "" or "{...}")
        if labels == "?":
            ok = all(_LABEL.match(k) for k, _ in s.labels)
            text = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(s.labels))
            labels = label_text[s.labels] = (("{" + text + "}") if text else "") if ok else None
        if s.metric not in good_names:
            if not _NAME.match(s.metric):
                invalid += 1
                continue
            good_names.add(s.metric)
        if labels is None or key in seen:
            invalid += 1
            continue
        seen.add(key)
        lines = families.get(s.metric)
        if lines is None:
            lines = families[s.metric] = [_family_head(s)]
        lines.append(f"{s.metric}{labels} {go_float(s.value)}\n")
    return "".join(line for lines in families.values() for line in lines).encode("utf-8"), invalid


@lru_cache(maxsize=16)
def _ring(shards: int) -> HashRing:
    return HashRing([str(i) for i in range(shards)])


def shard_of(device: str, shards: int) -> int:
    """The shard (0..shards-1) a device belongs to: the consistent-hash ring, stable as shards change."""
    owner = _ring(shards).owner(device)
    return int(owner) if owner is not None else 0


class TargetExposition:
    """Renders one device's or one shard's samples, caching each device's text until its next poll."""

    def __init__(self, store: LatestStore, targets: Callable[[], Sequence[str]] | None = None) -> None:
        self.store = store
        self._targets = targets or store.devices
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[Sequence[Sample], bytes]] = OrderedDict()
        self.cache_size = CACHE_SIZE
        self.invalid_total = 0
        self.renders_total = 0

    def targets(self) -> list[str]:
        """The device names Prometheus should scrape (polled here now, or already in the store)."""
        return sorted(set(self._targets()) | set(self.store.devices()))

    def device(self, name: str) -> bytes | None:
        """The device's text (empty before its first poll); None for a device this node does not know."""
        samples = self.store.of(name)
        if samples is None:
            return b"" if name in set(self._targets()) else None
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] is samples:
                self._cache.move_to_end(name)
                return hit[1]
        text, invalid = render(samples)
        with self._lock:
            self._cache[name] = (samples, text)
            self._cache.move_to_end(name)
            self.invalid_total += invalid
            self.renders_total += 1
            # Only the recently scraped texts (an HA pair of Prometheus scrapes each device twice per
            # poll): caching every device's ~75 kB would cost more memory than all its series.
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return text

    def shard(self, shard: int, shards: int) -> bytes:
        """All series of the devices in shard `shard` of `shards`, one block per family."""
        names = [n for n in self.store.devices() if shard_of(n, shards) == shard]
        samples: list[Sample] = []
        for n in names:
            samples.extend(self.store.of(n) or ())
        text, invalid = render(samples)
        with self._lock:
            self.invalid_total += invalid
        return text

    def sd(self, address: str, shards: int | None, node: bool = True) -> list[dict[str, object]]:
        """The http_sd_configs listing: one target per device (or per shard), plus the node's own metrics.

        `instance` is set to the device (or `shard-I-of-N`) so each target's `up` series is its own.
        """
        out: list[dict[str, object]] = []
        if shards is None:
            for name in self.targets():
                out.append({"targets": [address], "labels": {"__param_device": name, "instance": name}})
        else:
            for i in range(shards):
                out.append(
                    {
                        "targets": [address],
                        "labels": {
                            "__param_shard": str(i),
                            "__param_shards": str(shards),
                            "instance": f"shard-{i}-of-{shards}",
                        },
                    }
                )
        if node:
            out.append({"targets": [address], "labels": {"__param_scope": "node", "instance": address}})
        return out
