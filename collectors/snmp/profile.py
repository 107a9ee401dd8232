"""Vendor profiles as data: YAML files in profiles/ naming MIB objects, loaded and validated here."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from collectors.snmp.oids import MibObject, resolve

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
_METRIC = re.compile(r"^govnet_[a-z0-9_]+$")
_OPS = {"eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "regex", "not_regex"}


class ProfileError(ValueError):
    """A profile file is malformed (names the file and the entry)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A value taken from an object, at the row's index or at the index held by another object."""

    obj: MibObject
    index_from: MibObject | None = None
    at_index: str | None = None  # a fixed row (net-snmp's hrStorage buffers are always row 6)
    index_part: int | None = None  # the row index's Nth component (1-based) is the row to read


@dataclass(frozen=True, slots=True)
class Condition:
    """A row filter: compare an object's value (or the row index) with a constant."""

    ref: Ref | None  # None: the row index itself
    op: str
    arg: Any


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """Where a label value comes from: the row index, a literal, or an object."""

    name: str
    ref: Ref | None = None
    literal: str | None = None
    from_index: bool = False
    regex: re.Pattern[str] | None = None
    fallbacks: tuple[Ref, ...] = ()  # `first:` the first of ref, *fallbacks with a non-empty value
    hex_binary: bool = False  # `format: hex`: binary values (MAC addresses) as aa:bb:cc:dd:ee:ff
    known_in: MibObject | None = None  # `first:` the first candidate counts only if this column has it


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One normalised metric produced from a scalar or a table column."""

    name: str
    type: str
    alternatives: tuple[tuple[MibObject, ...], ...]  # `prefer`: first complete alternative wins; summed
    alt_scales: tuple[float, ...] = ()  # per-alternative factor (ifHighSpeed is in Mbit/s, ifSpeed in bit/s)
    scale: float = 1.0
    multiply_by: Ref | None = None
    divide_by: tuple[Ref, ...] = ()
    subtract: tuple[Ref, ...] = ()  # missing values count as 0
    precision: Ref | None = None
    si_prefix: Ref | None = None  # ENTITY-SENSOR-MIB scale: value x 1000^(prefix - 9), units(9)
    convert: str | None = None  # "uw_to_dbm": microwatts to dBm (after scale)
    when_any: tuple[Condition, ...] = ()  # device-level: some row of the device meets one of these
    unless_any: tuple[Condition, ...] = ()  # device-level: no row of the device meets any of these
    min: float | None = None
    max: float | None = None
    labels: tuple[LabelSpec, ...] = ()
    where: tuple[Condition, ...] = ()
    value_map: dict[int, float] | None = None
    states: dict[int, str] | None = None
    help: str = ""


@dataclass(frozen=True, slots=True)
class InfoSpec:
    """One device_info label: first non-empty candidate wins."""

    label: str
    candidates: tuple[tuple[Ref, tuple[Condition, ...], re.Pattern[str] | None], ...]


@dataclass(frozen=True, slots=True)
class Profile:
    """A loaded profile with its parents' metrics merged in."""

    name: str
    sysobjectid: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    # `match: also:` a device of one of these inventory roles, or whose agent answers one of these
    # scalar instances (OIDs ending in .0), also reads this profile, whatever its sysObjectID.
    also_roles: tuple[str, ...] = ()
    also_answers: tuple[str, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()
    info: tuple[InfoSpec, ...] = ()
    lineage: tuple[str, ...] = field(default=())

    def objects(self) -> set[MibObject]:
        """Every object the profile reads (what the engine must fetch)."""
        out: set[MibObject] = set()

        def add_ref(r: Ref | None) -> None:
            if r is not None:
                out.add(r.obj)
                if r.index_from is not None:
                    out.add(r.index_from)

        for m in self.metrics:
            for alt in m.alternatives:
                out.update(alt)
            add_ref(m.multiply_by)
            add_ref(m.precision)
            add_ref(m.si_prefix)
            for c in (*m.when_any, *m.unless_any):
                add_ref(c.ref)
            for r in (*m.divide_by, *m.subtract):
                add_ref(r)
            for lab in m.labels:
                add_ref(lab.ref)
                for r in lab.fallbacks:
                    add_ref(r)
                if lab.known_in is not None:
                    out.add(lab.known_in)
            for c in m.where:
                add_ref(c.ref)
        for i in self.info:
            for ref, conds, _ in i.candidates:
                add_ref(ref)
                for c in conds:
                    add_ref(c.ref)
        return out


def _ref(v: Any, where: str) -> Ref:
    try:
        if isinstance(v, str):
            return Ref(resolve(v))
        if isinstance(v, dict) and "object" in v:
            idx = v.get("index_from")
            at = v.get("at_index")
            part = v.get("index_part")
            if part is not None and (not isinstance(part, int) or part < 1):
                raise ProfileError(f"{where}: index_part is a component number from 1")
            return Ref(
                resolve(v["object"]),
                resolve(idx) if idx else None,
                str(at) if at is not None else None,
                part,
            )
    except KeyError as exc:
        raise ProfileError(f"{where}: {exc.args[0]}") from None
    raise ProfileError(f"{where}: expected an object name or {{object:, index_from:}}")


def _conditions(items: Any, where: str) -> tuple[Condition, ...]:
    out = []
    for c in items or []:
        if not isinstance(c, dict):
            raise ProfileError(f"{where}: a condition is a mapping")
        ops = [k for k in c if k in _OPS]
        if len(ops) != 1:
            raise ProfileError(f"{where}: a condition needs exactly one of {sorted(_OPS)}")
        op = ops[0]
        arg = c[op]
        if op in ("regex", "not_regex"):
            arg = re.compile(str(arg))
        ref = (
            None
            if c.get("index")
            else _ref({k: c[k] for k in ("object", "index_from", "at_index", "index_part") if k in c}, where)
        )
        out.append(Condition(ref, op, arg))
    return tuple(out)


RESERVED_LABELS = {"device", "site", "role", "vendor"}
CONVERSIONS = {"uw_to_dbm"}


def _labels(raw: Any, where: str) -> tuple[LabelSpec, ...]:
    out = []
    for name, src in sorted((raw or {}).items()):
        w = f"{where} label {name}"
        if name in RESERVED_LABELS:
            raise ProfileError(f"{w}: reserved label (every device series carries it already)")
        if src == "$index":
            out.append(LabelSpec(name, from_index=True))
        elif isinstance(src, dict) and "index_regex" in src:
            # A value carried in the row index itself (lldpRemManAddrTable indexes by the address).
            out.append(LabelSpec(name, from_index=True, regex=re.compile(str(src["index_regex"]))))
        elif isinstance(src, dict) and "value" in src:
            out.append(LabelSpec(name, literal=str(src["value"])))
        else:
            rx = re.compile(src["regex"]) if isinstance(src, dict) and "regex" in src else None
            fmt = src.get("format") if isinstance(src, dict) else None
            if fmt not in (None, "hex"):
                raise ProfileError(f"{w}: format must be hex")
            if isinstance(src, dict) and "first" in src:
                cands = list(src["first"])
                if not cands:
                    raise ProfileError(f"{w}: first needs at least one object")
                head = cands[0] if isinstance(cands[0], dict) else {"object": cands[0]}
                known = head.get("known_in")
                try:
                    known_obj = resolve(str(known)) if known else None
                except KeyError as exc:
                    raise ProfileError(f"{w}: {exc.args[0]}") from None
                refs = [_ref({k: v for k, v in head.items() if k != "known_in"}, w)]
                refs += [_ref(r, w) for r in cands[1:]]
                out.append(
                    LabelSpec(
                        name,
                        ref=refs[0],
                        regex=rx,
                        fallbacks=tuple(refs[1:]),
                        hex_binary=bool(fmt),
                        known_in=known_obj,
                    )
                )
            else:
                out.append(LabelSpec(name, ref=_ref(src, w), regex=rx, hex_binary=bool(fmt)))
    return tuple(out)


def _alternatives(
    m: dict[str, Any], where: str
) -> tuple[tuple[tuple[MibObject, ...], ...], tuple[float, ...]]:
    raw = m.get("prefer", [m["value"]] if "value" in m else None)
    if not raw:
        raise ProfileError(f"{where}: needs `value` or `prefer`")
    alts, scales = [], []
    for alt in raw:
        scale = 1.0
        if isinstance(alt, dict):
            scale = float(alt.get("scale", 1.0))
            alt = alt.get("sum", alt.get("object"))
        names = alt if isinstance(alt, list) else [alt]
        try:
            alts.append(tuple(resolve(str(n)) for n in names))
        except KeyError as exc:
            raise ProfileError(f"{where}: {exc.args[0]}") from None
        scales.append(scale)
    return tuple(alts), tuple(scales)


def _metric(m: dict[str, Any], where: str) -> MetricSpec:
    name = m.get("name", "")
    if not _METRIC.match(name):
        raise ProfileError(f"{where}: metric name {name!r} must match govnet_[a-z0-9_]+")
    mtype = m.get("type", "gauge")
    if mtype not in ("gauge", "counter"):
        raise ProfileError(f"{where}: type must be gauge or counter")
    if mtype == "counter" and not name.endswith("_total"):
        raise ProfileError(f"{where}: counter names end in _total")
    known = {
        "name",
        "type",
        "value",
        "prefer",
        "scale",
        "multiply_by",
        "divide_by",
        "subtract",
        "precision",
        "si_prefix",
        "convert",
        "when_any",
        "unless_any",
        "min",
        "max",
        "labels",
        "where",
        "map",
        "states",
        "help",
    }
    unknown = set(m) - known
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}")
    divide = m.get("divide_by") or []
    convert = m.get("convert")
    if convert is not None and convert not in CONVERSIONS:
        raise ProfileError(f"{where}: convert must be one of {sorted(CONVERSIONS)}")
    when_any = _conditions(m.get("when_any"), where)
    unless_any = _conditions(m.get("unless_any"), where)
    if any(c.ref is None for c in (*when_any, *unless_any)):
        raise ProfileError(f"{where}: when_any/unless_any conditions name an object")
    alternatives, alt_scales = _alternatives(m, where)
    return MetricSpec(
        name=name,
        type=mtype,
        alternatives=alternatives,
        alt_scales=alt_scales,
        scale=float(m.get("scale", 1.0)),
        multiply_by=_ref(m["multiply_by"], where) if "multiply_by" in m else None,
        divide_by=tuple(_ref(d, where) for d in (divide if isinstance(divide, list) else [divide])),
        subtract=tuple(_ref(d, where) for d in m.get("subtract") or []),
        precision=_ref(m["precision"], where) if "precision" in m else None,
        si_prefix=_ref(m["si_prefix"], where) if "si_prefix" in m else None,
        convert=convert,
        when_any=when_any,
        unless_any=unless_any,
        min=float(m["min"]) if "min" in m else None,
        max=float(m["max"]) if "max" in m else None,
        labels=_labels(m.get("labels"), where),
        where=_conditions(m.get("where"), where),
        value_map={int(k): float(v) for k, v in m["map"].items()} if "map" in m else None,
        states={int(k): str(v) for k, v in m["states"].items()} if "states" in m else None,
        help=str(m.get("help", "")),
    )


def _info(raw: Any, where: str) -> tuple[InfoSpec, ...]:
    out = []
    for label, cands in sorted((raw or {}).items()):
        parsed = []
        for c in cands if isinstance(cands, list) else [cands]:
            w = f"{where} info {label}"
            spec = c if isinstance(c, dict) else {"object": c}
            ref = _ref(
                {k: spec[k] for k in ("object", "index_from", "at_index", "index_part") if k in spec}, w
            )
            rx = re.compile(spec["regex"]) if "regex" in spec else None
            parsed.append((ref, _conditions(spec.get("where"), w), rx))
        out.append(InfoSpec(label, tuple(parsed)))
    return tuple(out)


def _also(raw: Any, where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`match: also: {roles: [...], answers: [scalar objects]}`: the roles and the probe instance OIDs."""
    if raw is None:
        return (), ()
    if not isinstance(raw, dict) or set(raw) - {"roles", "answers"}:
        raise ProfileError(f"{where}: match.also takes only roles and answers")
    answers = []
    for n in raw.get("answers") or []:
        try:
            obj = resolve(str(n))
        except KeyError as exc:
            raise ProfileError(f"{where}: match.also: {exc.args[0]}") from None
        # A probe is one GET at discovery: a scalar's instance, never a table walk.
        if obj.kind != "scalar":
            raise ProfileError(f"{where}: match.also answers {n!r}: only scalar objects can be probed")
        answers.append(obj.oid + ".0")
    return tuple(str(r) for r in raw.get("roles") or []), tuple(answers)


def _raw_profiles(directory: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ProfileError(f"{path.name}: not a mapping")
        out[path.stem] = data
    return out


def load_profiles(directory: Path = PROFILE_DIR) -> dict[str, Profile]:
    """Load, validate and flatten (extends) every profile in `directory`."""
    raw = _raw_profiles(directory)
    done: dict[str, Profile] = {}

    def build(name: str, stack: tuple[str, ...]) -> Profile:
        if name in done:
            return done[name]
        if name not in raw:
            raise ProfileError(f"{stack[-1] if stack else name}: extends unknown profile {name!r}")
        if name in stack:
            raise ProfileError(f"{name}: extends loop {' -> '.join((*stack, name))}")
        data = raw[name]
        parents = [build(p, (*stack, name)) for p in data.get("extends", [])]
        metrics: list[MetricSpec] = [m for p in parents for m in p.metrics]
        metrics += [_metric(m, f"{name}.yaml metric {i}") for i, m in enumerate(data.get("metrics") or [])]
        info: dict[str, InfoSpec] = {}
        for p in parents:
            info.update({i.label: i for i in p.info})
        for i in _info(data.get("info"), f"{name}.yaml"):
            # A child's candidates come first; the parent's stay as fallbacks.
            prev = info.get(i.label)
            info[i.label] = InfoSpec(i.label, i.candidates + (prev.candidates if prev else ()))
        match = data.get("match") or {}
        also_roles, also_answers = _also(match.get("also"), f"{name}.yaml")
        prof = Profile(
            name=name,
            sysobjectid=tuple(str(s).lstrip(".") for s in match.get("sysobjectid", [])),
            vendors=tuple(match.get("vendors", [])),
            roles=tuple(match.get("roles", [])),
            also_roles=also_roles,
            also_answers=also_answers,
            metrics=tuple(metrics),
            info=tuple(sorted(info.values(), key=lambda x: x.label)),
            lineage=(*[x for p in parents for x in p.lineage], name),
        )
        done[name] = prof
        return prof

    for n in raw:
        build(n, ())
    return done


@lru_cache(maxsize=1)
def default_profiles() -> dict[str, Profile]:
    """The shipped profiles (cached)."""
    return load_profiles(PROFILE_DIR)


def _oid_under(oid: str, prefix: str) -> bool:
    return oid == prefix or oid.startswith(prefix.rstrip(".") + ".")


def _primary(profiles: dict[str, Profile], sysobjectid: str | None, vendor: str, role: str) -> Profile:
    """Longest sysObjectID-prefix match (refined by a role child); else vendor+role; vendor; base.

    A child profile without its own sysObjectIDs (huawei_usg extends huawei) refines a sysObjectID
    match when the inventory's vendor and role name it: a USG answers with Huawei's enterprise prefix.
    """
    oid = (sysobjectid or "").lstrip(".")
    best: tuple[int, Profile] | None = None
    for p in profiles.values():
        for pre in p.sysobjectid:
            if oid and _oid_under(oid, pre) and (best is None or len(pre) > best[0]):
                best = (len(pre), p)
    if best:
        found = best[1]
        children = [
            p
            for p in profiles.values()
            if not p.sysobjectid and found.name in p.lineage[:-1] and vendor in p.vendors and role in p.roles
        ]
        return sorted(children, key=lambda p: p.name)[0] if children else found
    by_vendor = [p for p in profiles.values() if vendor in p.vendors]
    for p in sorted(by_vendor, key=lambda p: p.name):
        if role in p.roles:
            return p
    for p in sorted(by_vendor, key=lambda p: p.name):
        if not p.roles:
            return p
    return profiles["base"]


def probe_oids(profiles: dict[str, Profile]) -> list[str]:
    """The scalar instances to GET once at discovery: every profile's `match: also: answers`."""
    return sorted({o for p in profiles.values() for o in p.also_answers})


def _own_metrics(profiles: dict[str, Profile], p: Profile) -> tuple[MetricSpec, ...]:
    """The metrics `p` adds to its ancestors (ups.yaml without base.yaml's interfaces and uptime)."""
    inherited = {m.name for anc in p.lineage[:-1] if anc in profiles for m in profiles[anc].metrics}
    return tuple(m for m in p.metrics if m.name not in inherited)


def _with(profiles: dict[str, Profile], primary: Profile, extra: Profile) -> Profile:
    """`primary` plus `extra` where it adds something primary does not read already."""
    if extra.name in primary.lineage:
        return primary
    if primary.name in extra.lineage:
        return extra  # a refinement of what matched (base -> ups): use it as such
    own = _own_metrics(profiles, extra)
    have = {m.name for m in primary.metrics}
    # A profile that already reads this kind of device from its own MIB (apc.yaml: govnet_ups_*)
    # keeps its values alone: two MIBs' readings of one UPS are not mixed.
    if not own or any(m.name in have for m in own):
        return primary
    # The device is what `extra` reads (a UPS), not its card's OS: extra's identity labels replace
    # the primary's (a Net Vision card's Linux kernel release is not the UPS's version).
    info = {i.label: i for i in primary.info}
    info.update({i.label: i for i in extra.info})
    return Profile(
        name=f"{primary.name}+{extra.name}",
        sysobjectid=primary.sysobjectid,
        vendors=primary.vendors,
        roles=primary.roles,
        metrics=primary.metrics + own,
        info=tuple(sorted(info.values(), key=lambda x: x.label)),
        lineage=(*primary.lineage, extra.name),
    )


def select_profile(
    profiles: dict[str, Profile],
    sysobjectid: str | None,
    vendor: str,
    role: str,
    answered: Collection[str] = (),
) -> Profile:
    """The profile for a device: by sysObjectID, vendor and role (below), then `match: also` profiles.

    `answered` holds the probe OIDs (probe_oids) the agent answered. A profile whose `match: also`
    names the device's inventory role or one of those OIDs is added to the one selected otherwise,
    so a UPS behind a card with a Linux or card maker's sysObjectID still reads the UPS-MIB.
    """
    found = _primary(profiles, sysobjectid, vendor, role)
    for p in sorted(profiles.values(), key=lambda p: p.name):
        if role in p.also_roles or any(o in answered for o in p.also_answers):
            found = _with(profiles, found, p)
    return found
