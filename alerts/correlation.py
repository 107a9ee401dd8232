"""Security-event correlation: rules over stored log records, counted per key in a sliding window.

Records come from the log store's writer as they become durable (`observe`, any thread); the time
is always passed in (`samples(now)`), so every rule is tested without sleeping. A rule that fires
becomes one `govnet_security_alert` series whose labels name the correlation, the source IP and the
matching records (seqs and a console link); they stay fixed while the alert holds, so the alert
engine (alerts/engine.py: levels, grouping, escalation, notifiers) pages once per episode.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.levels import Level
from alerts.regex import compile_linear
from alerts.rules import Condition, Rule, RuleError
from core.samples import Sample
from inventory.model import Duration
from logstore.record import FIELDS, Record, parse_iso

METRIC = "govnet_security_alert"
DEFAULT_CORRELATIONS = Path(__file__).parent / "rules" / "security.yaml"
MAX_LISTED = 20  # seqs named in the `records` label (first and last seq are always there)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldTest(_Strict):
    """One test on a record field; every given part must hold."""

    eq: str | int | None = None
    one_of: list[str | int] | None = Field(None, alias="in")
    le: float | None = None
    ge: float | None = None
    regex: str | None = None
    in_networks: str | None = None  # name of a declared network list
    not_in_networks: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            compile_linear(v)  # RE2: the text it runs on is the attacker's (device log lines)
        return v


Match = dict[str, FieldTest | str | int]


class Correlation(_Strict):
    """One correlation rule (see alerts/rules/security.yaml)."""

    name: str
    match: Match = Field(default_factory=dict)
    any: list[Match] = Field(default_factory=list)  # at least one must hold (when given)
    key: list[str] = Field(default_factory=lambda: ["src_ip"])
    threshold: int = Field(1, ge=1)
    distinct: str | None = None  # count distinct values of this field instead of records
    window: Duration = 300.0
    hold: Duration | None = None  # how long a fired alert stays active after its last match (window)
    outside_maintenance: bool = False
    silent_roles: list[str] = Field(default_factory=list)  # set: fires for devices quiet for `window`
    level: Level
    severity: Literal["critical", "warning", "info"] = "warning"
    summary: str
    description: str = ""
    runbook: list[str] = Field(min_length=1)
    page: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v):
            raise ValueError("correlation names are letters, digits and '_' starting with a letter")
        return v

    @model_validator(mode="after")
    def _fields(self) -> Correlation:
        used = [*self.key, *([self.distinct] if self.distinct else [])]
        for m in [self.match, *self.any]:
            used += list(m)
        bad = sorted({f for f in used if f not in FIELDS})
        if bad:
            raise ValueError(f"unknown record fields {bad}")
        return self

    @property
    def hold_seconds(self) -> float:
        """How long a fired alert stays active after its last matching record."""
        return self.window if self.hold is None else self.hold


class CorrelationFile(_Strict):
    """A correlation file: `correlations: [...]`."""

    correlations: list[Correlation]


def load_correlations(*paths: Path) -> list[Correlation]:
    """Load and validate correlation files; raises RuleError listing every problem."""
    out: list[Correlation] = []
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            out += CorrelationFile.model_validate(data).correlations
        except (OSError, yaml.YAMLError) as exc:
            raise RuleError([f"{path}: cannot read correlations ({type(exc).__name__})"]) from None
        except ValidationError as exc:
            raise RuleError(
                [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            ) from None
    names = [c.name for c in out]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise RuleError([f"duplicate correlation names: {', '.join(dups)}"])
    return out


def alert_rules(correlations: Iterable[Correlation]) -> list[Rule]:
    """The alert-engine rule of each correlation (one alert per fired key, grouped per correlation+key)."""
    rules = []
    for c in correlations:
        group = ["correlation", *c.key] if not c.silent_roles else ["correlation", "device"]
        rules.append(
            Rule.model_validate(
                {
                    "alert": c.name,
                    "condition": Condition(metric=METRIC, match={"correlation": c.name}, op=">", value=0),
                    "level": c.level,
                    "severity": c.severity,
                    "summary": c.summary,
                    "description": c.description,
                    "runbook": c.runbook,
                    "page": c.page,
                    "labels": {"category": "security"},
                    "group_by": group,
                }
            )
        )
    return rules


@dataclass(frozen=True)
class WatchedDevice:
    """A device whose silence is an event (a security device that must keep sending logs)."""

    name: str
    role: str
    address: str
    labels: tuple[tuple[str, str], ...]


@dataclass
class _Fired:
    labels: tuple[tuple[str, str], ...]
    value: float
    last_match: float


@dataclass
class _Window:
    events: deque[tuple[float, int, Any]] = field(default_factory=deque)


def _networks(spec: Mapping[str, Sequence[str]]) -> dict[str, list[Network]]:
    return {name: [ipaddress.ip_network(n, strict=False) for n in nets] for name, nets in spec.items()}


class CorrelationEngine:
    """Counts matching records per rule and key; `samples(now)` are the alerts that hold at `now`."""

    def __init__(
        self,
        correlations: Sequence[Correlation],
        networks: Mapping[str, Sequence[str]] | None = None,
        in_maintenance: Callable[[dict[str, str], float], bool] | None = None,
        devices: Sequence[WatchedDevice] = (),
        start: float = 0.0,
        device_labels: Callable[[str], tuple[tuple[str, str], ...]] | None = None,
    ) -> None:
        self.rules = list(correlations)
        self.networks = _networks(dict(networks or {}))
        self.in_maintenance = in_maintenance
        self.device_labels = device_labels or (lambda name: (("device", name),) if name else ())
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, tuple[str, ...]], _Window] = {}
        self._fired: dict[tuple[str, tuple[str, ...]], _Fired] = {}
        self.watched = {d.name: d for d in devices}
        self.last_seen: dict[str, float] = dict.fromkeys(self.watched, start)
        # Silence means something only while a log store feeds this engine (see `attach`).
        self.fed = start > 0
        self.skipped: dict[str, int] = {}  # rule -> records it could not use (e.g. no networks declared)

    # -- input -------------------------------------------------------------------------------------

    def attach(self, now: float) -> None:
        """A log writer feeds this engine from now on: devices are silent counted from `now`."""
        with self._lock:
            self.last_seen = {name: max(t, now) for name, t in self.last_seen.items()}
            self.fed = True

    def observe_batch(self, recs: Iterable[Record]) -> None:
        """Take durable records (with their seq); cheap for records no rule looks at."""
        with self._lock:
            for rec in recs:
                self._observe(rec)

    def _observe(self, rec: Record) -> None:
        if rec.get("event_type") in ("store", "audit"):
            return
        try:
            t = parse_iso(rec["recv_ts"])
        except (KeyError, TypeError, ValueError):
            return
        device = rec.get("device")
        if device in self.last_seen and t > self.last_seen[device]:
            self.last_seen[device] = t
        for rule in self.rules:
            if rule.silent_roles or not self._matches(rule, rec):
                continue
            key = tuple(str(rec.get(k) or "") for k in rule.key)
            if not all(key):
                continue  # a key field is absent: right or absent, never counted under ""
            if rule.outside_maintenance and self._maintained(rule, rec, t):
                continue
            self._count(rule, key, rec, t)

    def _maintained(self, rule: Correlation, rec: Record, t: float) -> bool:
        if self.in_maintenance is None:
            return False
        labels = {k: v for k, v in self.device_labels(rec.get("device") or "")}
        labels.update(alertname=rule.name, correlation=rule.name)
        return self.in_maintenance(labels, t)

    def _count(self, rule: Correlation, key: tuple[str, ...], rec: Record, t: float) -> None:
        wkey = (rule.name, key)
        win = self._windows.setdefault(wkey, _Window())
        win.events.append((t, int(rec.get("seq") or 0), rec.get(rule.distinct) if rule.distinct else None))
        while win.events and win.events[0][0] <= t - rule.window:
            win.events.popleft()
        distinct = {v for _, _, v in win.events if v is not None}
        count = len(distinct) if rule.distinct else len(win.events)
        fired = self._fired.get(wkey)
        if fired is not None:
            fired.last_match = max(fired.last_match, t)
            return
        if count < rule.threshold:
            return
        seqs = sorted(s for _, s, _ in win.events)
        labels: dict[str, str] = dict(self.device_labels(rec.get("device") or ""))
        labels.update({k: v for k, v in zip(rule.key, key, strict=True)})
        src = rec.get("src_ip") or ""
        labels.update(
            correlation=rule.name,
            src_ip=str(src),
            first_seq=str(seqs[0]),
            last_seq=str(seqs[-1]),
            records=",".join(map(str, seqs[:MAX_LISTED])) + (",…" if len(seqs) > MAX_LISTED else ""),
            log_link="/logs?seqs=" + ",".join(map(str, seqs[:MAX_LISTED])),
        )
        if rec.get("user"):
            labels.setdefault("user", str(rec["user"]))
        self._fired[wkey] = _Fired(tuple(sorted(labels.items())), float(count), t)

    def _matches(self, rule: Correlation, rec: Record) -> bool:
        if not self._match_all(rule.match, rec, rule.name):
            return False
        return not rule.any or any(self._match_all(m, rec, rule.name) for m in rule.any)

    def _match_all(self, match: Match, rec: Record, rule: str) -> bool:
        for name, test in match.items():
            value = rec.get(name)
            if not isinstance(test, FieldTest):
                if value != test and str(value) != str(test):
                    return False
                continue
            if not self._test(test, value, rule):
                return False
        return True

    def _test(self, test: FieldTest, value: Any, rule: str) -> bool:
        if value is None:
            return False  # an absent field never satisfies a test (neither "in" nor "not in")
        if test.eq is not None and str(value) != str(test.eq):
            return False
        if test.one_of is not None and str(value) not in {str(v) for v in test.one_of}:
            return False
        if test.le is not None or test.ge is not None:
            if not isinstance(value, int | float):
                return False
            if (test.le is not None and value > test.le) or (test.ge is not None and value < test.ge):
                return False
        if test.regex is not None and compile_linear(test.regex).search(str(value)) is None:
            return False
        for name, inside in ((test.in_networks, True), (test.not_in_networks, False)):
            if name is None:
                continue
            nets = self.networks.get(name)
            if not nets:
                self.skipped[rule] = self.skipped.get(rule, 0) + 1
                return False  # no networks declared: the rule cannot judge (never a false alarm)
            try:
                addr = ipaddress.ip_address(str(value))
            except ValueError:
                return False
            if any(addr in n for n in nets) != inside:
                return False
        return True

    # -- output ------------------------------------------------------------------------------------

    def samples(self, now: float) -> list[Sample]:
        """One `govnet_security_alert` sample per alert holding at `now` (value: records counted)."""
        out: list[Sample] = []
        help_ = "Security correlation alerts holding now (labels name the source and the log records)."
        with self._lock:
            by_name = {r.name: r for r in self.rules}
            for wkey, fired in list(self._fired.items()):
                rule = by_name[wkey[0]]
                if now - fired.last_match >= rule.hold_seconds:
                    del self._fired[wkey]
                    self._windows.pop(wkey, None)
                    continue
                out.append(Sample(METRIC, fired.labels, fired.value, now, "gauge", help_))
            for rule in self.rules:
                if not rule.silent_roles or not self.fed:
                    continue
                for name, dev in self.watched.items():
                    if dev.role not in rule.silent_roles:
                        continue
                    quiet = now - self.last_seen[name]
                    if quiet < rule.window:
                        continue
                    labels = dict(dev.labels)
                    labels.update(
                        correlation=rule.name, device=name, src_ip=dev.address,
                        log_link=f"/logs?device={name}",
                    )  # fmt: skip
                    out.append(Sample(METRIC, tuple(sorted(labels.items())), quiet, now, "gauge", help_))
            # Windows of keys that never fired: drop the idle ones (bounded memory under scans).
            longest = max((r.window for r in self.rules), default=0.0)
            for wkey in [k for k, w in self._windows.items() if k not in self._fired]:
                win = self._windows[wkey]
                if not win.events or win.events[-1][0] <= now - longest:
                    del self._windows[wkey]
        return out
