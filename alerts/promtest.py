"""Rule unit tests written like `promtool test rules`: input series, expected alerts at given times."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerts.engine import Engine, Notification
from alerts.rules import DEFAULT_RULES, RuleError, load_rules
from core.config import parse_duration
from core.samples import Sample
from inventory.topology import Topology

_SERIES = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_NUM = r"-?[0-9.]+(?:[eE][+-]?[0-9]+)?"
_EXPAND = re.compile(rf"^({_NUM}|_)(?:([+-])({_NUM[2:]}))?x(\d+)$")


class TestFileError(Exception):
    """A rule test file is malformed."""


def parse_series(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`metric{a="b",c="d"}` -> (metric, sorted labels)."""
    m = _SERIES.match(text)
    if not m:
        raise TestFileError(f"bad series {text!r}")
    body, labels, pos = m.group(2) or "", {}, 0
    while pos < len(body):
        lm = _LABEL.match(body, pos)
        if not lm or lm.end() == pos:
            raise TestFileError(f"bad labels in series {text!r}")
        labels[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\\\", "\\")
        pos = lm.end()
    return m.group(1), tuple(sorted(labels.items()))


def expand_values(text: str) -> list[float | None]:
    """promtool notation: `1 2 3`, `0x5` (6 values), `1+1x3`, `10-2x2`, `_` (missing), `_x3`, `stale`."""
    out: list[float | None] = []
    for token in str(text).split():
        if token in ("_", "stale"):
            out.append(None)
            continue
        m = _EXPAND.match(token)
        if m:
            start, sign, step, n = m.group(1), m.group(2), m.group(3), int(m.group(4))
            if start == "_":
                out.extend([None] * n)
                continue
            a, b = float(start), float(step or 0) * (-1 if sign == "-" else 1)
            out.extend(a + i * b for i in range(n + 1))
            continue
        try:
            out.append(float(token))
        except ValueError:
            raise TestFileError(f"bad value {token!r} in {text!r}") from None
    return out


@dataclass
class CaseResult:
    """Outcome of one test group."""

    name: str
    failures: list[str] = field(default_factory=list)


def _subset(expected: dict[str, Any], got: dict[str, str]) -> bool:
    return all(got.get(str(k)) == str(v) for k, v in expected.items())


def _run_group(group: dict[str, Any], rule_paths: list[Path], base: Path, default_inv: Any) -> CaseResult:
    name = str(group.get("name", "unnamed"))
    result = CaseResult(name)
    interval = parse_duration(group.get("interval", "30s"))
    inv_path = group.get("inventory", default_inv)
    topo = None
    if inv_path:
        from inventory.load import load_inventory  # only when a test needs a topology

        topo = Topology.from_inventory(load_inventory(base / str(inv_path)))
    from alerts.maintenance import MaintenanceWindow  # windows (config format) given per test group

    windows = [MaintenanceWindow.model_validate(w) for w in group.get("maintenance", [])]
    engine = Engine(load_rules(*rule_paths), topology=topo, maintenance=windows)
    series: dict[str, list[tuple[str, tuple[tuple[str, str], ...], list[float | None]]]] = {}
    for item in group.get("input_series", []):
        metric, labels = parse_series(str(item["series"]))
        device = dict(labels).get("device", "")
        series.setdefault(device, []).append((metric, labels, expand_values(item.get("values", ""))))
    checks = group.get("alert_rule_test", [])
    end = max([parse_duration(c["eval_time"]) if c["eval_time"] else 0.0 for c in checks] or [0.0])
    checks_at: dict[int, list[dict[str, Any]]] = {}
    for check in checks:
        t = parse_duration(check["eval_time"]) if check["eval_time"] else 0.0
        checks_at.setdefault(round(t / interval), []).append(check)
    sent: list[Notification] = []
    for step in range(round(end / interval) + 1):
        now = step * interval
        for device, items in series.items():
            batch = [
                Sample(m, lab, value, now)
                for m, lab, vals in items
                if step < len(vals) and (value := vals[step]) is not None
            ]
            engine.publish(device, batch)
        sent.extend(engine.evaluate(now))
        for check in checks_at.get(step, []):
            result.failures.extend(_check(check, engine, sent, now))
    return result


def _check(check: dict[str, Any], engine: Engine, sent: list[Notification], now: float) -> list[str]:
    failures = []
    alertname = str(check.get("alertname", ""))
    got = [
        {**v.labels, "summary": v.summary, "inhibited_by": v.inhibited_by or ""}
        for v in engine.alerts(now)
        if v.state == "firing" and (not alertname or v.alert == alertname)
    ]
    expected = check.get("exp_alerts") or []
    unmatched = list(got)
    for exp in expected:
        want = {**(exp.get("exp_labels") or {}), **(exp.get("exp_annotations") or {})}
        hit = next((g for g in unmatched if _subset(want, g)), None)
        if hit is None:
            failures.append(f"alertname: {alertname}, time: {check['eval_time']}: expected {want}, got {got}")
        else:
            unmatched.remove(hit)
    if "exp_alerts" in check and unmatched:
        failures.append(f"alertname: {alertname}, time: {check['eval_time']}: unexpected {unmatched}")
    if "exp_notifications" in check:
        kinds = [n.kind for n in sent]
        if kinds != list(check["exp_notifications"]):
            failures.append(
                f"time: {check['eval_time']}: notifications {kinds}, expected {check['exp_notifications']}"
            )
    return failures


def run_test_file(path: Path) -> list[CaseResult]:
    """Run every test group in one file."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TestFileError(f"cannot read ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        raise TestFileError("expected a mapping with 'rule_files' and 'tests'")
    base = path.parent
    rule_paths = [
        DEFAULT_RULES if f == "default" else base / str(f) for f in doc.get("rule_files", ["default"])
    ]
    results = []
    for group in doc["tests"]:
        try:
            results.append(_run_group(group, rule_paths, base, doc.get("inventory")))
        except (KeyError, TypeError, ValueError, RuleError) as exc:
            raise TestFileError(f"test {group.get('name', '?')!r}: {type(exc).__name__}: {exc}") from None
    return results
