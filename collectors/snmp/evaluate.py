"""Profile evaluation: a pure function from a walk (numeric OID -> value) to raw samples.

It is deterministic and does no I/O, so recordings test it offline; counters are turned into
monotonic `_total` values afterwards by the stateful CounterTracker.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from collectors.snmp.oids import MibObject
from collectors.snmp.profile import Condition, LabelSpec, MetricSpec, Profile, Ref
from core.samples import BoundedTable, intern_labels, intern_pair

Value = int | float | bytes | str | None
Walk = dict[str, Value]
Labels = tuple[tuple[str, str], ...]

_CTRL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACE = re.compile(r"\s+")
MAX_LABEL = 256


@dataclass(frozen=True, slots=True)
class RawSample:
    """A sample before device labels and counter state: `components` are raw counter readings."""

    metric: str
    labels: Labels
    value: float
    type: str = "gauge"
    components: tuple[int, ...] = ()
    bits: int = 64
    source: str = ""  # numeric OID the value was read from (first component), for tests and debugging
    help: str = ""
    series_source: str = ""  # which `prefer` alternative was used (a counter restarts when it changes)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything one walk yields for one profile."""

    samples: list[RawSample]
    info: dict[str, str]
    uptime_s: float | None


def text(v: Value) -> str:
    """Untrusted device text as a safe label value: decoded, control chars removed, trimmed, bounded."""
    if v is None:
        return ""
    if isinstance(v, bytes):
        for enc in ("utf-8", "gb18030"):
            try:
                s = v.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            s = v.decode("latin-1")
    else:
        s = str(v)
    s = _SPACE.sub(" ", _CTRL.sub(" ", s)).strip().strip("\"'").strip()
    return s[:MAX_LABEL]


def _printable(v: bytes) -> bool:
    try:
        return v.decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return False


def hex_text(v: Value) -> str:
    """Binary octets (a MAC address chassis or port id) as aa:bb:cc:..., printable text as text()."""
    if isinstance(v, bytes) and v and not _printable(v):
        return ":".join(f"{b:02x}" for b in v[:64])
    return text(v)


def number(v: Value) -> float | None:
    """A numeric reading: ints as-is, decimal text (FortiGate sensors) parsed, anything else None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        s = v.decode("ascii") if isinstance(v, bytes) else v
        return float(s.strip())
    except (UnicodeDecodeError, ValueError):
        return None


def _index_key(index: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in index.split("."))
    except ValueError:
        return ()


def index_columns(walk: Walk, objects: Iterable[MibObject]) -> dict[str, dict[str, Value]]:
    """Group a walk by object: object OID -> {row index -> value}; scalars get index "0"."""
    targets = {o.oid for o in objects}
    cols: dict[str, dict[str, Value]] = {t: {} for t in targets}
    # Walks arrive column by column: try the previous OID's column first. A one-part index under it
    # is exactly what the search below finds first (it strips one part at a time from the right).
    last_prefix, last_col, cut = "\x00", cols.get(""), 0
    for oid, value in walk.items():
        if last_col is not None and oid.startswith(last_prefix) and "." not in oid[cut:]:
            last_col[oid[cut:]] = value
            continue
        prefix = oid
        while True:
            pos = prefix.rfind(".")
            if pos <= 0:
                break
            prefix = prefix[:pos]
            if prefix in targets:
                cols[prefix][oid[pos + 1 :]] = value
                last_prefix, last_col, cut = prefix + ".", cols[prefix], pos + 1
                break
    return cols


class EvalCache:
    """Per-device state carried between evaluations: label tuples and sorted row indexes.

    Both are reused while the columns they are computed from are unchanged (labels: the columns'
    digests; row order: the set of row indexes), so a stable interface table costs no label work per
    poll and keeps no walk data between polls; any change recomputes them.
    """

    def __init__(self) -> None:
        self.labels: dict[tuple[LabelSpec, ...], tuple[tuple[bytes | None, ...], dict[str, Labels]]]
        self.labels = {}
        self.indexes: dict[tuple[str, ...], list[str]] = {}


class _Rows:
    """Lookups of object values by row index."""

    def __init__(self, cols: dict[str, dict[str, Value]], cache: EvalCache | None = None) -> None:
        self.cols = cols
        self.cache = cache
        # Many metrics share one label spec (every IF-MIB metric: ifindex/ifname/ifalias/ifdescr);
        # labels are computed once per row and spec. Keyed by the spec tuple's id within this
        # evaluation (hashing LabelSpec dataclasses per row cost more than computing the labels).
        self.label_maps: dict[int, dict[str, Labels]] = {}
        self.index_lists: dict[tuple[str, ...], list[str]] = {}
        self._texts: dict[str, set[str]] = {}
        self._digests: dict[str, bytes | None] = {}

    def get(self, ref: Ref, index: str) -> Value:
        if ref.at_index is not None:
            return self.at(ref.obj, ref.at_index)
        if ref.index_part is not None:
            parts = index.split(".")
            if len(parts) < ref.index_part:
                return None
            index = parts[ref.index_part - 1]
        if ref.index_from is not None:
            pointer = number(self.at(ref.index_from, index))
            if pointer is None:
                return None
            index = str(int(pointer))
        return self.at(ref.obj, index)

    def texts(self, obj: MibObject) -> set[str]:
        """Every value of a column as label text (cached for this evaluation)."""
        got = self._texts.get(obj.oid)
        if got is None:
            got = self._texts[obj.oid] = {text(v) for v in self.cols.get(obj.oid, {}).values()}
        return got

    def at(self, obj: MibObject, index: str) -> Value:
        col = self.cols.get(obj.oid, {})
        if obj.kind == "scalar":
            return col.get("0")
        return col.get(index)

    def _digest(self, oid: str) -> bytes | None:
        """A column's content as a 16-byte BLAKE2b digest (None: no such column in this walk).

        Label maps are reused while the columns they come from are unchanged; comparing digests instead
        of the columns themselves keeps no walk data between polls (it was ~30 % of a device's state).
        """
        got = self._digests.get(oid, b"")
        if got == b"":
            col = self.cols.get(oid)
            got = self._digests[oid] = (
                None
                if col is None
                else hashlib.blake2b(
                    pickle.dumps(col, protocol=pickle.HIGHEST_PROTOCOL), digest_size=16
                ).digest()
            )
        return got

    def label_map(self, specs: tuple[LabelSpec, ...]) -> dict[str, Labels]:
        """{row index: labels} for one label spec tuple (filled lazily, reused across polls if unchanged)."""
        got = self.label_maps.get(id(specs))
        if got is not None:
            return got
        if self.cache is None:
            got = {}
        else:
            deps = tuple(
                self._digest(oid)
                for lab in specs
                for ref in ((lab.ref, *lab.fallbacks) if lab.ref is not None else ())
                for oid in (ref.obj.oid, ref.index_from.oid if ref.index_from else "")
            ) + tuple(self._digest(lab.known_in.oid) for lab in specs if lab.known_in is not None)
            prev = self.cache.labels.get(specs)
            if prev is not None and prev[0] == deps:
                got = prev[1]
            else:
                got = {}
                self.cache.labels[specs] = (deps, got)
        self.label_maps[id(specs)] = got
        return got


def _check(cond: Condition, rows: _Rows, index: str) -> bool:
    v: Value = index if cond.ref is None else rows.get(cond.ref, index)
    op, arg = cond.op, cond.arg
    if v is None:
        return op in ("ne", "not_in", "not_regex")
    if op in ("regex", "not_regex"):
        hit = arg.search(text(v)) is not None
        return hit if op == "regex" else not hit
    n = number(v) if cond.ref is not None else None
    if op in ("gt", "ge", "lt", "le"):
        if n is None:
            return False
        a = float(arg)
        return {"gt": n > a, "ge": n >= a, "lt": n < a, "le": n <= a}[op]
    args = arg if isinstance(arg, list) else [arg]
    if n is not None and all(isinstance(a, int | float) for a in args):
        hit = any(n == float(a) for a in args)
    else:
        hit = text(v) in {str(a) for a in args}
    return hit if op in ("eq", "in") else not hit


def _compute_labels(m: MetricSpec, rows: _Rows, index: str) -> Labels:
    out = []
    for lab in m.labels:
        if lab.from_index:
            val = index
            if lab.regex is not None:
                val = _extract(lab.regex, index)
        elif lab.literal is not None:
            val = lab.literal
        else:
            assert lab.ref is not None
            val = ""
            for n, ref in enumerate((lab.ref, *lab.fallbacks)):
                raw = rows.get(ref, index)
                if lab.fallbacks and isinstance(raw, bytes) and not _printable(raw):
                    continue  # a binary port id (MAC subtype) is no name: try the next candidate
                val = hex_text(raw) if lab.hex_binary else text(raw)
                if n == 0 and lab.known_in is not None and val not in rows.texts(lab.known_in):
                    val = ""  # not one of the device's names for its interfaces: try the next one
                if val:
                    break
            if lab.regex is not None:
                hit = lab.regex.search(val)
                val = (hit.group(1) if hit.groups() else hit.group(0)) if hit else val
        out.append(intern_pair(lab.name, val))
    return intern_labels(tuple(sorted(out)))  # equal rows of other devices share it (memory)


# Row index lists are read only: equal lists (the same rows on devices polled alike) are one list.
_INDEX_LISTS: BoundedTable[tuple[str, ...], list[str]] = BoundedTable(1 << 14)


def _sorted_indexes(col: Iterable[str]) -> list[str]:
    # Interned: a row's index is then one string in every index list and label map that keeps it.
    got = sorted(map(sys.intern, col), key=lambda i: (_index_key(i), i))
    key = tuple(got)
    shared = _INDEX_LISTS.get(key)
    if shared is None:
        shared = _INDEX_LISTS.keep(key, got)
    return shared


def _row_indexes(m: MetricSpec, rows: _Rows) -> list[str]:
    firsts = tuple(alt[0].oid for alt in m.alternatives)
    got = rows.index_lists.get(firsts)
    if got is not None:
        return got
    seen: set[str] = set()
    for alt in m.alternatives:
        first = alt[0]
        col = rows.cols.get(first.oid, {})
        seen.update(["0"] if first.kind == "scalar" and col else col)
    cache = rows.cache
    prev = cache.indexes.get(firsts) if cache is not None else None
    # The same set of rows as last time gives the same order: only the sorted list is kept (holding
    # the columns to compare would keep the whole walk of every device in memory).
    if prev is not None and len(prev) == len(seen) and seen.issuperset(prev):
        got = prev
    else:
        got = _sorted_indexes(seen)
        if cache is not None:
            cache.indexes[firsts] = got
    rows.index_lists[firsts] = got
    return got


# Optical power at or below this is "no light": 0 uW has no logarithm, and Huawei itself reports
# -40.00 dBm for a dark receiver, so a zero reading is shown as that floor rather than dropped.
DBM_FLOOR = -40.0


def uw_to_dbm(uw: float) -> float:
    """Microwatts to dBm (1 mW = 0 dBm), floored at DBM_FLOOR."""
    if uw <= 0:
        return DBM_FLOOR
    return max(DBM_FLOOR, 10.0 * math.log10(uw / 1000.0))


def _any_row(cond: Condition, rows: _Rows) -> bool:
    """True if some row of the condition's object meets it (device-level unit detection)."""
    assert cond.ref is not None
    col = rows.cols.get(cond.ref.obj.oid, {})
    return any(_check(cond, rows, index) for index in col)


def _device_gate(m: MetricSpec, rows: _Rows) -> bool:
    if m.when_any and not any(_any_row(c, rows) for c in m.when_any):
        return False
    return not (m.unless_any and any(_any_row(c, rows) for c in m.unless_any))


@dataclass(slots=True)
class MetricRows:
    """What one metric spec yields for one walk, column-wise: per series its labels and value, and for
    counters the raw readings and which `prefer` alternative they came from. With `sources`, also the
    row index and first object of each series (for RawSample.source)."""

    spec: MetricSpec
    labels: list[Labels] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    comps: list[tuple[int, ...]] = field(default_factory=list)  # counters only
    series_source: list[str] = field(default_factory=list)  # counters only
    bits: list[int] = field(default_factory=list)  # counters only
    where: list[tuple[str, MibObject]] = field(default_factory=list)  # with sources only


def _eval_metric(m: MetricSpec, rows: _Rows, sources: bool = False) -> MetricRows:
    out = MetricRows(m)
    if (m.when_any or m.unless_any) and not _device_gate(m, rows):
        return out
    # Per metric, not per row: each alternative's columns ({index: value}; scalars read row "0").
    empty: dict[str, Value] = {}
    alts = [
        (alt, a_scale, [(rows.cols.get(o.oid, empty), o.kind == "scalar") for o in alt])
        for alt, a_scale in zip(m.alternatives, m.alt_scales, strict=True)
    ]
    # Counter series identity per alternative: its source names and the narrowest counter width.
    alt_meta = {
        id(alt): ("+".join(o.name for o in alt), min(o.counter_bits for o in alt)) for alt in m.alternatives
    }
    where = m.where
    label_map = rows.label_map(m.labels)
    o_labels, o_values = out.labels, out.values
    counter = m.type == "counter" and m.states is None
    # Nothing past the reading and the scale: most metrics (IF-MIB counters and gauges).
    plain = not (
        m.min is not None
        or m.max is not None
        or m.states is not None
        or m.subtract
        or m.multiply_by is not None
        or m.divide_by
        or m.precision is not None
        or m.si_prefix is not None
        or m.convert is not None
    )
    scale, value_map = m.scale, m.value_map
    indexes = _row_indexes(m, rows)
    if plain and not where and _eval_columns(m, out, indexes, label_map, rows, alts[0], sources):
        if counter:
            series_source, bits = alt_meta[id(alts[0][0])]
            out.series_source = [series_source] * len(out.values)
            out.bits = [bits] * len(out.values)
        return out
    for index in indexes:
        if where and not all(_check(c, rows, index) for c in where):
            continue
        chosen: tuple[MibObject, ...] | None = None
        readings: list[float] = []
        alt_scale = 1.0
        for alt, a_scale, cols in alts:
            vals: list[float] = []
            for col, scalar in cols:
                v = col.get("0" if scalar else index)
                n = float(v) if type(v) is int else number(v)
                if n is None:
                    break
                vals.append(n)
            else:
                chosen, readings, alt_scale = alt, vals, a_scale
                break
        if chosen is None:
            continue
        raw = sum(readings)
        labels = label_map.get(index)
        if labels is None:
            labels = label_map[index] = _compute_labels(m, rows, index)
        if plain:
            if value_map is not None:
                if int(raw) not in value_map:
                    continue
                raw = value_map[int(raw)]
            value = raw * scale * alt_scale
        else:
            got = _transform(m, rows, index, raw, alt_scale)
            if got is None:
                continue
            if isinstance(got, list):
                for state_labels, v in got:
                    o_labels.append(tuple(sorted((*labels, state_labels))))
                    o_values.append(v)
                    if sources:
                        out.where.append((index, chosen[0]))
                continue
            value = got
        o_labels.append(labels)
        o_values.append(value)
        if sources:
            out.where.append((index, chosen[0]))
        if counter:
            series_source, bits = alt_meta[id(chosen)]
            out.comps.append(tuple(map(int, readings)))
            out.series_source.append(series_source)
            out.bits.append(bits)
    return out


def _eval_columns(
    m: MetricSpec,
    out: MetricRows,
    indexes: list[str],
    label_map: dict[str, Labels],
    rows: _Rows,
    alt: tuple[tuple[MibObject, ...], float, list[tuple[dict[str, Value], bool]]],
    sources: bool,
) -> bool:
    """_eval_metric's row loop column by column, for the common case: a metric with nothing past its
    scale and map, whose first `prefer` alternative is integer in every row (then it is every row's
    choice). The same float operations in the same order; False (nothing filled) when it does not apply.
    """
    objs, alt_scale, cols = alt
    if not indexes or any(scalar for _, scalar in cols):
        return False
    columns = [list(map(col.get, indexes)) for col, _ in cols]
    if any(set(map(type, vals)) != {int} for vals in columns):
        return False
    floats = [list(map(float, cast(list[int], vals))) for vals in columns]
    # sum() of one float is that float (ints give no -0.0); of several, the same left-to-right sum.
    raws = floats[0] if len(floats) == 1 else list(map(sum, zip(*floats, strict=True)))
    labels = list(map(label_map.get, indexes))
    if None in labels:
        for i, index in enumerate(indexes):
            if labels[i] is None:
                labels[i] = label_map[index] = _compute_labels(m, rows, index)
    keep: list[int] | None = None
    if m.value_map is not None:
        vmap = m.value_map
        keep = [i for i, raw in enumerate(raws) if int(raw) in vmap]
        raws = [vmap[int(raws[i])] for i in keep]
        labels = [labels[i] for i in keep]
    scale = m.scale
    out.values = [raw * scale * alt_scale for raw in raws]
    out.labels = labels  # type: ignore[assignment]  # no None left
    if m.type == "counter" and m.states is None:
        comps = list(zip(*[list(map(int, f)) for f in floats], strict=True))
        out.comps = comps if keep is None else [comps[i] for i in keep]
    if sources:
        first = objs[0]
        kept = indexes if keep is None else [indexes[i] for i in keep]
        out.where = [(index, first) for index in kept]
    return True


def _transform(
    m: MetricSpec, rows: _Rows, index: str, raw: float, alt_scale: float
) -> float | list[tuple[tuple[str, str], float]] | None:
    """The value of a row past min/max, states, maps and arithmetic; None drops the row; a list is one
    (state label, value) per state."""
    if (m.min is not None and raw < m.min) or (m.max is not None and raw > m.max):
        return None
    if m.states is not None:
        return [(("state", state), 1.0 if raw == code else 0.0) for code, state in sorted(m.states.items())]
    if m.value_map is not None:
        if int(raw) not in m.value_map:
            return None
        raw = m.value_map[int(raw)]
    for r in m.subtract:
        raw -= number(rows.get(r, index)) or 0.0
    value = raw * m.scale * alt_scale
    if m.multiply_by is not None:
        factor = number(rows.get(m.multiply_by, index))
        if factor is None:
            return None
        value *= factor
    if m.divide_by:
        parts = [number(rows.get(r, index)) for r in m.divide_by]
        denom = sum(p for p in parts if p is not None)
        if any(p is None for p in parts) or denom == 0:
            return None
        value /= denom
    if m.precision is not None:
        digits = number(rows.get(m.precision, index))
        if digits is None:
            return None
        value /= 10**digits
    if m.si_prefix is not None:
        prefix = number(rows.get(m.si_prefix, index))
        if prefix is None or not 1 <= prefix <= 17:
            return None
        value *= 1000.0 ** (int(prefix) - 9)
    if m.convert == "uw_to_dbm":
        value = uw_to_dbm(value)
    return value


def _raw_samples(block: MetricRows) -> list[RawSample]:
    m = block.spec
    out: list[RawSample] = []
    for i, (labels, value) in enumerate(zip(block.labels, block.values, strict=True)):
        index, first = block.where[i]
        source = f"{first.oid}.{'0' if first.kind == 'scalar' else index}"
        if m.type == "counter" and m.states is None:
            out.append(
                RawSample(
                    m.name,
                    labels,
                    value,
                    "counter",
                    block.comps[i],
                    block.bits[i],
                    source,
                    m.help,
                    block.series_source[i],
                )
            )
        else:
            out.append(RawSample(m.name, labels, value, source=source, help=m.help))
    return out


def _extract(rx: re.Pattern[str], val: str) -> str:
    """The regex's match: its group, or its non-empty groups joined by a space ("5.170 V200R010C00SPC600")."""
    hit = rx.search(val)
    if hit is None:
        return ""
    if not hit.groups():
        return hit.group(0)
    return " ".join(g for g in hit.groups() if g)


def _info(profile: Profile, rows: _Rows) -> dict[str, str]:
    info: dict[str, str] = {}
    for spec in profile.info:
        for ref, conds, rx in spec.candidates:
            col = rows.cols.get(ref.obj.oid, {})
            indexes = ["0"] if ref.obj.kind == "scalar" else sorted(col, key=lambda i: (_index_key(i), i))
            for index in indexes:
                if not all(_check(c, rows, index) for c in conds):
                    continue
                val = text(rows.get(ref, index))
                if rx is not None:
                    val = text(_extract(rx, val))
                if val:
                    info[spec.label] = val
                    break
            if spec.label in info:
                break
    return info


SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"


DEVICE_INFO_HELP = "Device identity from SNMP (value is always 1)."


@dataclass(frozen=True, slots=True)
class RowsEvaluation:
    """evaluate() column-wise: one MetricRows per profile metric (in profile order), the device_info
    labels and the agent's uptime. What the collector builds its samples from."""

    metrics: list[MetricRows]
    info: dict[str, str]
    uptime_s: float | None


def evaluate_rows(
    profile: Profile,
    walk: Walk,
    cache: EvalCache | None = None,
    columns: dict[str, dict[str, Value]] | None = None,
    sources: bool = False,
) -> RowsEvaluation:
    """evaluate() without a RawSample per series (see there); `sources` keeps each row's origin."""
    cols = index_columns(walk, profile.objects())
    for oid, col in (columns or {}).items():
        if oid not in cols:
            continue
        if cols[oid]:
            cols[oid].update(col)
        else:
            cols[oid] = col
    rows = _Rows(cols, cache)
    blocks = [_eval_metric(m, rows, sources) for m in profile.metrics]
    info = _info(profile, rows)
    up = number(walk.get(SYS_UPTIME_OID))
    return RowsEvaluation(blocks, info, up / 100.0 if up is not None else None)


def evaluate(
    profile: Profile,
    walk: Walk,
    cache: EvalCache | None = None,
    columns: dict[str, dict[str, Value]] | None = None,
) -> Evaluation:
    """Evaluate `profile` over `walk`: samples (incl. govnet_device_info) and the agent's uptime.

    `cache` (one per device) lets a poll reuse the previous poll's labels and row order while the
    columns they come from are unchanged; `columns` ({column OID: {row index: value}}, as a column
    walk returns them) may carry the table part already grouped. The result is the same either way.
    """
    ev = evaluate_rows(profile, walk, cache, columns, sources=True)
    samples: list[RawSample] = []
    for block in ev.metrics:
        samples.extend(_raw_samples(block))
    if ev.info:
        samples.append(
            RawSample("govnet_device_info", tuple(sorted(ev.info.items())), 1.0, help=DEVICE_INFO_HELP)
        )
    return Evaluation(samples, ev.info, ev.uptime_s)
