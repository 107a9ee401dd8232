"""Grafana dashboards: schema (SDK models), generator --check, thresholds from rules, documented metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog import encoder as cog_encoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as dm

from grafana.build import LEVEL_COLOURS, PROMETHEUS_UID, VICTORIA_UID, walk_panels
from grafana.generate import BOARDS, OUT, render
from tests.support.paths import ROOT

register_default_plugins()  # panel options, field config and queries decode into their typed models
PY = sys.executable
PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge", "state-timeline"}
BUILTIN_VARS = {"__rate_interval", "__range", "__interval", "__url_time_range", "__field", "__all"}
METRIC = re.compile(r"\bgovnet_[a-z0-9_]+")


def dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(OUT.glob("*.json"))}


def exprs(board: dict[str, Any]) -> list[str]:
    """Every query expression of a dashboard (panels and query variables)."""
    out = [t["expr"] for p in walk_panels(board) for t in p.get("targets", [])]
    out += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return out


def test_every_board_committed() -> None:
    assert sorted(dashboards()) == sorted(f"{n}.json" for n in BOARDS)


def roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    """Decode with the SDK's typed models (dashboard, panel options per type, Prometheus query), re-encode."""
    out: dict[str, Any] = json.loads(json.dumps(dm.Dashboard.from_json(data), cls=cog_encoder.JSONEncoder))
    return out


def test_roundtrip_rejects_unknown_keys() -> None:
    """The schema check is real: a misspelled option, field config or query key does not survive."""
    board = dashboards()["device.json"]
    panel = next(p for p in walk_panels(board) if p["type"] == "timeseries")
    for where in (panel["options"], panel["fieldConfig"]["defaults"]["custom"], panel["targets"][0]):
        where["bogusKey"] = 1
        assert roundtrip(board) != board
        del where["bogusKey"]
    assert roundtrip(board) == board


@pytest.mark.parametrize("name", sorted(f"{n}.json" for n in BOARDS))
def test_dashboard_validates_against_sdk_models(name: str) -> None:
    """Decoding with the SDK's typed models and encoding again loses nothing: every key is known."""
    data = dashboards()[name]
    assert roundtrip(data) == data
    model = dm.Dashboard.from_json(data)
    assert model.uid and model.title and model.schema_version
    ids = [p["id"] for p in walk_panels(data)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    names = {v["name"] for v in data["templating"]["list"]}
    for p in walk_panels(data):
        assert p["type"] in PANEL_TYPES
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
        if p["type"] == "row":
            continue
        assert p["datasource"]["type"] == "prometheus"
        assert p["datasource"]["uid"] == "${datasource}"
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            for var in re.findall(r"\$\{?(\w+)", t["expr"]):
                assert var in names or var in BUILTIN_VARS, f"{p['title']}: undefined ${var}"
        for link in p["fieldConfig"]["defaults"].get("links", []):
            for var in re.findall(r"\$\{?(\w+)", link["url"]):
                assert var in names or var in BUILTIN_VARS, f"{p['title']}: link uses undefined ${var}"
    ds = next(v for v in data["templating"]["list"] if v["name"] == "datasource")
    assert ds["current"]["value"] in {PROMETHEUS_UID, VICTORIA_UID}


def test_links_point_to_existing_dashboards() -> None:
    boards = dashboards()
    uids = {b["uid"] for b in boards.values()}
    for b in boards.values():
        for p in walk_panels(b):
            for link in p.get("fieldConfig", {}).get("defaults", {}).get("links", []):
                m = re.match(r"/d/([\w-]+)/", link["url"])
                if m:
                    assert m.group(1) in uids, link["url"]
                else:
                    assert link["url"].startswith("${console}/"), link["url"]


def test_generator_check_passes_and_detects_a_stale_file(tmp_path: Path) -> None:
    ok = subprocess.run([PY, "grafana/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    out = tmp_path / "dashboards"
    assert subprocess.run([PY, "-m", "grafana.generate", "--out", str(out)], cwd=ROOT).returncode == 0
    assert sorted(p.name for p in out.glob("*.json")) == sorted(dashboards())
    stale = out / "device.json"
    stale.write_text(stale.read_text(encoding="utf-8").replace("CpuHigh", "CpuLow"), encoding="utf-8")
    (out / "old.json").write_text("{}", encoding="utf-8")
    bad = subprocess.run(
        [PY, "-m", "grafana.generate", "--check", "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "device.json" in bad.stderr and "old.json" in bad.stderr


def test_generation_is_deterministic() -> None:
    assert render() == render()


def _steps(board: dict[str, Any], title: str) -> list[dict[str, Any]]:
    panel = next(p for p in walk_panels(board) if p["title"] == title)
    steps: list[dict[str, Any]] = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return steps


def test_thresholds_follow_the_alert_rules(tmp_path: Path) -> None:
    """Thresholds carry the rule's value and its level's colour, and move when the rules change."""
    rules = yaml.safe_load((ROOT / "alerts/rules/default.yaml").read_text(encoding="utf-8"))
    cpu = next(r for r in rules["rules"] if r["alert"] == "CpuHigh")
    device = dashboards()["device.json"]
    assert _steps(device, "CPU") == [
        {"color": "green", "value": None},
        {"color": LEVEL_COLOURS[cpu["level"]], "value": cpu["condition"]["value"]},
    ]
    low = next(r for r in rules["rules"] if r["alert"] == "UpsBatteryLow")
    dc = dashboards()["datacentre.json"]
    assert _steps(dc, "电池电量 Battery charge") == [
        {"color": LEVEL_COLOURS[low["level"]], "value": None},
        {"color": "green", "value": low["condition"]["value"]},
    ]
    cpu["condition"]["value"], cpu["level"] = 0.75, "II"
    changed = tmp_path / "rules.yaml"
    changed.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    redone = json.loads(render(changed)["device.json"])
    assert _steps(redone, "CPU")[1] == {"color": "orange", "value": 0.75}


def test_every_metric_is_documented() -> None:
    """Each govnet_ metric a dashboard queries is listed in docs/metrics.md (VictoriaMetrics: `_value`)."""
    doc = (ROOT / "docs/metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(govnet_[a-z0-9_]+)`", doc))
    missing: set[str] = set()
    for name, board in dashboards().items():
        for expr in exprs(board):
            for metric in METRIC.findall(expr):
                base = metric.removesuffix("_value") if name == "longrange.json" else metric
                if base not in documented:
                    missing.add(f"{name}: {metric}")
    assert not missing, sorted(missing)


def test_provisioning_matches_dashboards() -> None:
    prov = ROOT / "grafana/provisioning"
    ds = yaml.safe_load((prov / "datasources/govnet.yaml").read_text(encoding="utf-8"))
    by_uid = {d["uid"]: d for d in ds["datasources"]}
    assert by_uid[PROMETHEUS_UID]["type"] == "prometheus" and by_uid[PROMETHEUS_UID]["isDefault"]
    assert by_uid[VICTORIA_UID]["type"] == "prometheus"
    assert sum(1 for d in ds["datasources"] if d.get("isDefault")) == 1
    providers = yaml.safe_load((prov / "dashboards/govnet.yaml").read_text(encoding="utf-8"))
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    assert provider["disableDeletion"] is False and provider["allowUiUpdates"] is False
