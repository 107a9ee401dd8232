"""Per-target exposition: one device's (or one shard's) series per scrape, and the http_sd listing.

Like snmp_exporter, Prometheus scrapes `/metrics?device=NAME` once per device (or
`/metrics?shard=I&shards=N` once per shard), with the target list from `/sd` (http_sd_configs), so no
single scrape carries every device. A device's text is rendered once per poll and reused by every
scrape until its next poll (the sample tuple in the latest store is the cache key).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from core.latest import LatestStore
from core.ring import HashRing
from core.samples import Sample

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_SHARDS = 1024


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
    # The same HELP/TYPE lines as the whole-node /metrics (prometheus_client's text format).
    help_ = _escape_help(s.help or s.metric)
    kind = "gauge"
    if s.type == "counter":
        kind = "counter" if s.metric.endswith("_total") else "untyped"
    return f"# HELP {s.metric} {help_}\n# TYPE {s.metric} {kind}\n"


def render(samples: Iterable[Sample]) -> tuple[bytes, int]:
    """Prometheus text format of `samples`, grouped by family; (text, samples left out as invalid)."""
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
        self._cache: dict[str, tuple[tuple[Sample, ...], bytes]] = {}
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
                return hit[1]
        text, invalid = render(samples)
        with self._lock:
            self._cache[name] = (samples, text)
            self.invalid_total += invalid
            self.renders_total += 1
            # Forget devices gone from the store (removed, or moved to another cluster node).
            if len(self._cache) > 2 * max(1, len(self.store.devices())):
                live = set(self.store.devices())
                self._cache = {k: v for k, v in self._cache.items() if k in live}
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
