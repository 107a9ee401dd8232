"""The `alerts:` section as a `govnet run` service: builder validation, sink, internal sources, metrics,
operator commands through the state file, maintenance windows, and the shipped ops rule tests."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from alerts.cli import ack_command, expire_command, list_command, silence_command, test_rules_command
from alerts.config import AlertingConfig
from alerts.maintenance import CST, MaintenanceWindow
from alerts.service import AlertService, build
from core.config import validate_section
from core.pipeline import MetricsSource, SampleSink
from core.samples import Sample, labels_of
from inventory.model import Inventory
from tests.support.paths import GOVNET, TESTDATA

DATA = TESTDATA / "alerts"
TOPO = yaml.safe_load((DATA / "topo.yaml").read_text(encoding="utf-8"))


def _section(**extra: object) -> dict[str, object]:
    return {"state_db": "state/alerts.db", "evaluate_interval": "1s", **extra}


def _build(tmp_path: Path, topo: dict[str, object] = TOPO) -> AlertService:
    (svc,) = build(
        validate_section(AlertingConfig, _section(), tmp_path, "alerts"),
        inventory=Inventory.model_validate(topo),
    )
    return svc


def _up(device: str, role: str, value: float, now: float) -> list[Sample]:
    labels = labels_of(device=device, site="ncc", role=role, vendor="huawei")
    return [Sample("govnet_up", labels, value, now)]


def test_section_validates_with_field_paths_and_never_echoes_values(tmp_path: Path) -> None:
    def check(data: dict[str, object]) -> None:
        validate_section(AlertingConfig, data, tmp_path, "alerts")

    with pytest.raises(ValueError) as err:
        check({"channels": [{"type": "webhook", "name": "a", "url": "http://token@x"}]})
    assert "alerts.channels.0.webhook.url" in str(err.value) and "token" not in str(err.value)
    with pytest.raises(ValueError, match="evaluate_intervl"):
        check({"evaluate_intervl": "1s"})
    with pytest.raises(ValueError, match=r"maintenance\.0"):
        check({"maintenance": [{"name": "x", "match": ['device="a"']}]})


def test_service_is_sink_and_metrics_source_and_state_is_relative_to_base_dir(tmp_path: Path) -> None:
    svc = _build(tmp_path)
    assert isinstance(svc, AlertService) and isinstance(svc, SampleSink) and isinstance(svc, MetricsSource)
    assert (tmp_path / "state" / "alerts.db").exists()
    _core_1_down(svc)
    metrics = {(s.metric, dict(s.labels).get("level")): s.value for s in svc.internal_samples()}
    assert metrics[("govnet_alerts_firing", "II")] == 1 and metrics[("govnet_incidents_open", "II")] == 1
    # agg-a's redundancy loss fires too but is inhibited by core-1: counted, no incident of its own.
    assert metrics[("govnet_alerts_firing", "IV")] == 1 and metrics[("govnet_incidents_open", "IV")] == 0


def test_internal_sources_feed_rules(tmp_path: Path) -> None:
    svc = _build(tmp_path)
    now = 1_800_000_000.0
    labels = labels_of(device="agg-a", site="jd-a", role="aggregation_switch", vendor="h3c")
    svc.add_source(lambda: [Sample("govnet_ssh_hostkey_mismatch", labels, 1.0, now)])
    svc._pull_sources(now)
    svc.engine.evaluate(now)
    assert [v.alert for v in svc.engine.alerts(now)] == ["SshHostKeyChanged"]


def test_run_loop_waits_for_every_device_before_evaluating(tmp_path: Path) -> None:
    polled = {**TOPO, "defaults": {"poll_interval": "30s", "snmp": {"version": "2c", "community": "env:X"}}}
    svc = _build(tmp_path, polled)
    assert isinstance(svc, AlertService) and len(svc.expected) == 9 and svc.warmup == 70
    assert not svc.ready(svc.started)  # nothing polled yet: a restart must not resolve restored alerts
    for name in svc.expected:
        assert not svc.ready(svc.started)
        svc.publish(name, _up(name, "core_switch", 1, 1.0))
    assert svc.ready(svc.started)


NOW = 1_800_000_000.0


def _core_1_down(svc: AlertService) -> None:
    """core-1 stops answering at NOW: evaluated then and past its rule's `for` (one II incident)."""
    svc.publish("core-1", _up("core-1", "core_switch", 0, NOW))
    svc.engine.evaluate(NOW)
    svc.engine.evaluate(NOW + 61)


def _core_1_incident(tmp_path: Path) -> tuple[Path, AlertService, str]:
    """The config file, the alert service and the incident id of core-1 going down."""
    config = _config(tmp_path)
    svc = _build(tmp_path)
    _core_1_down(svc)
    (inc,) = svc.engine.incidents
    return config, svc, inc


def _config(tmp_path: Path) -> Path:
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(TOPO), encoding="utf-8")
    cfg = {"inventory": "inv.yaml", "alerts": _section()}
    path = tmp_path / "govnet.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_cli_ack_and_silence_are_queued_durably_and_applied_by_the_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, svc, inc = _core_1_incident(tmp_path)
    now = NOW
    assert ack_command(config, "INC-999999", "王工") == 1  # unknown incident refused at once
    assert ack_command(config, inc, "王工", "处理中") == 0
    assert silence_command(config, ['device="agg-b"'], "2h", "刘工", "割接") == 0
    sid = re.findall(r"S-[0-9a-f]{8}", capsys.readouterr().out)[0]
    # Queued, not applied: the running engine's in-memory state is the authority.
    assert svc.engine.incidents[inc].acked_by is None
    assert svc.engine.apply_commands(now + 62) == 2
    assert svc.engine.incidents[inc].acked_by == "王工" and sid in svc.engine.silences.items
    assert expire_command(config, "S-nope") == 0  # queued; the engine refuses it
    assert svc.engine.apply_commands(now + 63) == 0
    capsys.readouterr()
    assert list_command(config) == 0
    out = capsys.readouterr().out
    assert f"{inc} level II open" in out and "acked by 王工 (处理中)" in out and f"{sid} silence" in out
    # A fresh engine on the same file (a restart) sees the ack and the silence.
    again = _build(tmp_path)
    assert isinstance(again, AlertService)
    assert again.engine.incidents[inc].acked_by == "王工" and sid in again.engine.silences.items


def test_maintenance_windows_fixed_and_weekly() -> None:
    weekly = MaintenanceWindow.model_validate(
        {
            "name": "周六割接",
            "match": ['site=~"jd-.*"'],
            "weekly": {"days": ["sat"], "start": "22:00", "end": "02:00"},
        }
    )
    sat_23 = datetime(2026, 11, 21, 23, 0, tzinfo=CST).timestamp()  # a Saturday
    sun_01 = datetime(2026, 11, 22, 1, 0, tzinfo=CST).timestamp()
    sun_23 = datetime(2026, 11, 22, 23, 0, tzinfo=CST).timestamp()
    assert weekly.covers({"site": "jd-a"}, sat_23) and weekly.covers({"site": "jd-a"}, sun_01)
    assert not weekly.covers({"site": "jd-a"}, sun_23) and not weekly.covers({"site": "ncc"}, sat_23)
    fixed = MaintenanceWindow.model_validate(
        {
            "name": "x",
            "match": ['device="core-1"'],
            "start": "2026-11-21T22:00:00+08:00",
            "end": "2026-11-21T23:30:00+08:00",
        }
    )
    assert fixed.covers({"device": "core-1"}, sat_23) and not fixed.covers({"device": "core-1"}, sun_01)


def test_shipped_ops_rules_pass_their_unit_tests(capsys: pytest.CaptureFixture[str]) -> None:
    files = [DATA / "ops_rules_test.yaml", DATA / "default_rules_test.yaml", DATA / "optics_rules_test.yaml"]
    assert test_rules_command(files) == 0
    out = capsys.readouterr().out
    assert "ops_rules_test.yaml: SUCCESS (7 tests)" in out
    assert "optics_rules_test.yaml: SUCCESS (5 tests)" in out


def test_run_stops_and_closes(tmp_path: Path) -> None:
    svc = _build(tmp_path)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(go())


def test_govnet_alerts_commands_through_the_real_cli(tmp_path: Path) -> None:
    import json
    import subprocess

    govnet = GOVNET
    config, svc, inc = _core_1_incident(tmp_path)
    now = NOW

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(govnet), "alerts", *args], capture_output=True, text=True, timeout=60)

    done = run("ack", "--config", str(config), inc, "--owner", "王工", "--comment", "现场处理")
    assert done.returncode == 0, done.stderr
    assert (
        run("silence", "--config", str(config), "device=agg-b", "--for", "1h", "--author", "刘工").returncode
        == 0
    )
    svc.engine.apply_commands(now + 62)
    listed = run("list", "--config", str(config), "--json")
    doc = json.loads(listed.stdout)
    assert doc["incidents"][0]["acked_by"] == "王工" and doc["pending"] == []
    assert {(a["alert"], a["labels"]["device"], a["inhibited_by"]) for a in doc["alerts"]} == {
        ("CoreDeviceDown", "core-1", None),
        ("UplinkRedundancyLost", "agg-a", "core-1"),
    }
    assert doc["silences"][0]["matchers"] == [["device", "agg-b", "="]]
