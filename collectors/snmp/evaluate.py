"""Profile evaluation: a pure function from a walk (numeric OID -> value) to raw samples.

It is deterministic and does no I/O, so recordings test it offline; counters are turned into
monotonic `_total` values afterwards by the stateful CounterTracker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from collectors.snmp.oids import MibObject
from collectors.snmp.profile import Condition, LabelSpec, MetricSpec, Profile, Ref

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
    for oid, value in walk.items():
        prefix = oid
        while True:
            cut = prefix.rfind(".")
            if cut <= 0:
                break
            prefix = prefix[:cut]
            if prefix in targets:
                cols[prefix][oid[cut + 1 :]] = value
                break
    return cols


class _Rows:
    """Lookups of object values by row index."""

    def __init__(self, cols: dict[str, dict[str, Value]]) -> None:
        self.cols = cols
        # Many metrics share one label spec (every IF-MIB metric: ifindex/ifname/ifalias/ifdescr);
        # computing it once per row and evaluation halves the profile's CPU on interface tables.
        self.label_cache: dict[tuple[tuple[LabelSpec, ...], str], Labels] = {}

    def get(self, ref: Ref, index: str) -> Value:
        if ref.at_index is not None:
            return self.at(ref.obj, ref.at_index)
        if ref.index_from is not None:
            pointer = number(self.at(ref.index_from, index))
            if pointer is None:
                return None
            index = str(int(pointer))
        return self.at(ref.obj, index)

    def at(self, obj: MibObject, index: str) -> Value:
        col = self.cols.get(obj.oid, {})
        if obj.kind == "scalar":
            return col.get("0")
        return col.get(index)


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


def _labels(m: MetricSpec, rows: _Rows, index: str) -> Labels:
    key = (m.labels, index)
    cached = rows.label_cache.get(key)
    if cached is None:
        cached = rows.label_cache[key] = _compute_labels(m, rows, index)
    return cached


def _compute_labels(m: MetricSpec, rows: _Rows, index: str) -> Labels:
    out = []
    for lab in m.labels:
        if lab.from_index:
            val = index
        elif lab.literal is not None:
            val = lab.literal
        else:
            assert lab.ref is not None
            val = text(rows.get(lab.ref, index))
            if lab.regex is not None:
                hit = lab.regex.search(val)
                val = (hit.group(1) if hit.groups() else hit.group(0)) if hit else val
        out.append((lab.name, val))
    return tuple(sorted(out))


def _row_indexes(m: MetricSpec, rows: _Rows) -> list[str]:
    seen: set[str] = set()
    for alt in m.alternatives:
        first = alt[0]
        seen.update(
            ["0"] if first.kind == "scalar" and rows.cols.get(first.oid) else rows.cols.get(first.oid, {})
        )
    return sorted(seen, key=lambda i: (_index_key(i), i))


def _eval_metric(m: MetricSpec, rows: _Rows) -> list[RawSample]:
    out: list[RawSample] = []
    for index in _row_indexes(m, rows):
        if not all(_check(c, rows, index) for c in m.where):
            continue
        chosen: tuple[MibObject, ...] | None = None
        readings: list[float] = []
        alt_scale = 1.0
        for alt, a_scale in zip(m.alternatives, m.alt_scales, strict=True):
            vals = [number(rows.at(o, index)) for o in alt]
            if all(v is not None for v in vals):
                chosen, readings, alt_scale = alt, [v for v in vals if v is not None], a_scale
                break
        if chosen is None:
            continue
        raw = sum(readings)
        if (m.min is not None and raw < m.min) or (m.max is not None and raw > m.max):
            continue
        labels = _labels(m, rows, index)
        first = chosen[0]
        source = f"{first.oid}.{'0' if first.kind == 'scalar' else index}"
        if m.states is not None:
            for code, state in sorted(m.states.items()):
                out.append(
                    RawSample(
                        m.name,
                        tuple(sorted((*labels, ("state", state)))),
                        1.0 if raw == code else 0.0,
                        source=source,
                        help=m.help,
                    )
                )
            continue
        if m.value_map is not None:
            if int(raw) not in m.value_map:
                continue
            raw = m.value_map[int(raw)]
        for r in m.subtract:
            raw -= number(rows.get(r, index)) or 0.0
        value = raw * m.scale * alt_scale
        if m.multiply_by is not None:
            factor = number(rows.get(m.multiply_by, index))
            if factor is None:
                continue
            value *= factor
        if m.divide_by:
            parts = [number(rows.get(r, index)) for r in m.divide_by]
            denom = sum(p for p in parts if p is not None)
            if any(p is None for p in parts) or denom == 0:
                continue
            value /= denom
        if m.precision is not None:
            digits = number(rows.get(m.precision, index))
            if digits is None:
                continue
            value /= 10**digits
        if m.type == "counter":
            comps = tuple(int(r) for r in readings)
            bits = min(o.counter_bits for o in chosen)
            out.append(
                RawSample(
                    m.name,
                    labels,
                    value,
                    "counter",
                    comps,
                    bits,
                    source,
                    m.help,
                    "+".join(o.name for o in chosen),
                )
            )
        else:
            out.append(RawSample(m.name, labels, value, source=source, help=m.help))
    return out


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
                    hit = rx.search(val)
                    val = text((hit.group(1) if hit.groups() else hit.group(0)) if hit else "")
                if val:
                    info[spec.label] = val
                    break
            if spec.label in info:
                break
    return info


SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"


def evaluate(profile: Profile, walk: Walk) -> Evaluation:
    """Evaluate `profile` over `walk`: samples (incl. govnet_device_info) and the agent's uptime."""
    rows = _Rows(index_columns(walk, profile.objects()))
    samples: list[RawSample] = []
    for m in profile.metrics:
        samples.extend(_eval_metric(m, rows))
    info = _info(profile, rows)
    if info:
        samples.append(
            RawSample(
                "govnet_device_info",
                tuple(sorted(info.items())),
                1.0,
                help="Device identity from SNMP (value is always 1).",
            )
        )
    up = number(walk.get(SYS_UPTIME_OID))
    return Evaluation(samples, info, up / 100.0 if up is not None else None)
