"""A month's report from a real run with known truth: the lab, `govnet run`, Prometheus, `govnet report`.

Scaled down so it runs in about two minutes (the issue's 7 min 30 s outage becomes 40 s): device `acc-1`
dead for DEAD_S, one uplink of `agg-1` down for LINK_S, `acc-2` dead inside a declared maintenance window,
`govnet run` itself stopped for STOP_S. The report read back with openpyxl must equal the truth to within
one detection delay (poll interval + poll timeout + evaluation interval); the govnet stop shows as unknown.
The uplink 95th percentile must equal PromQL's own quantile_over_time over the same TSDB data.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import openpyxl
import pytest
import yaml

from lab.runner import LabProcess
from tests.support.govnet_run import GovnetNode, free_port, wait_for, webhook
from tests.support.paths import GOVNET
from tests.support.prometheus import Prometheus, static_job
from tests.support.require import require_cmd

HOST = "127.34.0.1"
LAB_BASE = "127.34.1.0"
POLL_S, TIMEOUT_S, EVAL_S = 2.0, 0.5, 1.0
TOLERANCE = POLL_S + TIMEOUT_S + EVAL_S + 0.5  # one detection delay, each side
DEAD_S, LINK_S, MAINT_DEAD_S, STOP_S = 40.0, 18.0, 16.0, 12.0
UPLINK = "GigabitEthernet1/0/48"  # agg-1 -> core-2
STEP_S = 4.0


def _inventory() -> dict[str, Any]:
    devices: list[dict[str, Any]] = [
        {"name": "core-1", "site": "ncc", "role": "core_switch", "vendor": "ruijie", "address": "10.0.0.1"},
        {"name": "core-2", "site": "ncc", "role": "core_switch", "vendor": "ruijie", "address": "10.0.0.2"},
        {
            "name": "agg-1",
            "site": "jd-1",
            "role": "aggregation_switch",
            "vendor": "ruijie",
            "address": "10.0.1.1",
        },
    ]
    links: list[dict[str, Any]] = [
        {"a": {"device": "agg-1", "interface": f"GigabitEthernet1/0/{port}"},
         "b": {"device": core, "interface": "XGigabitEthernet0/0/1"}, "redundancy_group": "agg-1-up",
         "speed_mbps": 1000}
        for core, port in (("core-1", 47), ("core-2", 48))
    ]  # fmt: skip
    for i in (1, 2, 3):
        devices.append(
            {"name": f"acc-{i}", "site": f"unit-{i}", "role": "access_switch", "vendor": "ruijie",
             "address": f"10.1.0.{i}"}
        )  # fmt: skip
        links.append(
            {"a": {"device": f"acc-{i}", "interface": "GigabitEthernet 0/25"},
             "b": {"device": "agg-1", "interface": f"GigabitEthernet1/0/{i}"}}
        )  # fmt: skip
    sites = [{"name": "ncc", "kind": "control_centre"}, {"name": "jd-1", "kind": "aggregation"}]
    sites += [{"name": f"unit-{i}", "kind": "unit"} for i in (1, 2, 3)]
    return {
        "defaults": {"poll_interval": f"{POLL_S:.0f}s"},
        "sites": sites,
        "devices": devices,
        "links": links,
    }


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_cmd("prometheus", "pdftoppm")
    tmp = tmp_path_factory.mktemp("reports_lab")
    (tmp / "inventory.yaml").write_text(yaml.safe_dump(_inventory()), encoding="utf-8")
    stack = ExitStack()
    lab = LabProcess(tmp / "inventory.yaml", tmp / "lab", base=LAB_BASE, snmp_port=free_port(HOST),
                     ssh_port=0, progress=None)  # fmt: skip
    metrics = f"{HOST}:{free_port(HOST)}"
    prom = Prometheus(tmp, HOST, [static_job("govnet", metrics)])
    t_start = time.time()
    # The maintenance window: from 10 s into the scenario, long enough for acc-2's whole outage.
    maint = (t_start + 60.0, t_start + 60.0 + MAINT_DEAD_S + 14.0)
    config = {
        "inventory": str(lab.inventory_path),
        "prometheus": {"listen": metrics},
        "scheduler": {"timeout": f"{TIMEOUT_S}s", "retries": 0, "unreachable_after": 100},
        "log_level": "warning",
        "alerts": {
            "state_db": "state/alerts.db",
            "evaluate_interval": f"{EVAL_S:.0f}s",
            "channels": [{"type": "webhook", "name": "hook", "url": "file:hook.url"}],
            "route": ["hook"],
            "maintenance": [
                {"name": "acc-2 割接", "match": ['device="acc-2"'], "start": maint[0], "end": maint[1]}
            ],
        },
        "reports": {
            "dir": "reports",
            "tsdb": {"kind": "prometheus", "url": prom.url, "step": f"{STEP_S:.0f}s", "window": "8s"},
        },
    }  # fmt: skip
    cfg_path = tmp / "govnet.yaml"
    cfg_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    gv = GovnetNode(cfg_path, f"http://{metrics}/metrics", tmp / "govnet.log")
    truth: dict[str, Any] = {
        "tmp": tmp,
        "config": cfg_path,
        "prom": prom,
        "maint": maint,
    }
    try:
        _, hook_url = stack.enter_context(webhook(HOST))  # alerts need somewhere to send to
        (tmp / "hook.url").write_text(hook_url + "\n")
        lab.start()
        prom.start()
        gv.start()
        wait_for(lambda: gv.up_count() == 6, 60, "every device up")
        truth["begin"] = time.time()
        wait_for(lambda: time.time() >= maint[0] - 10, 90, "scenario start")
        # acc-1 dead, agg-1 loses one uplink, acc-2 dies inside its maintenance window.
        lab.fault("acc-1", "dead")
        truth["acc-1"] = [time.time()]
        time.sleep(2)
        lab.fault("agg-1", "link_down", interface=UPLINK)
        truth["agg-1"] = [time.time()]
        wait_for(lambda: time.time() >= maint[0] + 6, 30, "inside the window")
        lab.fault("acc-2", "dead")
        truth["acc-2"] = [time.time()]
        wait_for(lambda: time.time() >= truth["agg-1"][0] + LINK_S, 60, "uplink outage length")
        lab.clear("agg-1")
        truth["agg-1"].append(time.time())
        wait_for(lambda: time.time() >= truth["acc-2"][0] + MAINT_DEAD_S, 60, "maintenance outage length")
        lab.clear("acc-2")
        truth["acc-2"].append(time.time())
        wait_for(lambda: time.time() >= truth["acc-1"][0] + DEAD_S, 60, "outage length")
        lab.clear("acc-1")
        truth["acc-1"].append(time.time())
        wait_for(lambda: gv.up_count() == 6, 30, "every device back")
        time.sleep(3)
        # govnet itself stopped: that span must be unknown, never up.
        truth["stop"] = [time.time()]
        gv.stop()
        time.sleep(STOP_S)
        truth["stop"].append(time.time())
        gv.start()
        wait_for(lambda: gv.up_count() == 6, 60, "govnet back")
        truth["stop"].append(time.time())  # polling again: evaluation starts about now
        time.sleep(8)
        truth["end"] = time.time()
        gv.stop()
        yield truth
    finally:
        gv.stop()
        lab.stop()
        prom.stop()
        stack.close()


def _iso(ts: float) -> str:
    from datetime import datetime

    from alerts.maintenance import CST

    return datetime.fromtimestamp(ts, CST).isoformat(timespec="seconds")


def _sheet(wb: Any, name: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in wb[name].iter_rows(values_only=True)]


def test_report_figures_equal_the_truth(scenario: dict[str, Any]) -> None:
    out = scenario["tmp"] / "out"
    # Inside what govnet watched at both ends (it started before `begin` and stopped after `end`).
    start, end = scenario["begin"] + 5, scenario["end"] - 3
    res = subprocess.run(
        [str(GOVNET), "report", "monthly", "--config", str(scenario["config"]), "--from", _iso(start),
         "--to", _iso(end), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    # The PDF renders: its first page as PNG, kept with the test's artifacts.
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(out / "report.pdf"), str(out / "page")],
        check=True, timeout=60,
    )  # fmt: skip
    pages = list(out.glob("page*.png"))
    assert len(pages) == 1 and pages[0].stat().st_size > 10_000, pages
    print(f"\n[report] first PDF page: {pages[0]}")
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert wb.sheetnames[:4] == ["概览", "各单位可用性", "设备可用性", "中断明细"]
    outages = {row[0]: row for row in _sheet(wb, "中断明细")[1:]}
    truth_rows = []
    for device, in_maint in (("acc-1", "否"), ("acc-2", "是")):
        t0, t1 = scenario[device]
        row = outages[device]
        truth_rows.append((device, t1 - t0, row[5]))
        assert abs(row[5] - (t1 - t0)) <= TOLERANCE, (device, row, t1 - t0)
        assert row[8] == in_maint
    assert "agg-1" not in outages and "core-1" not in outages  # degraded, not an outage
    devices = {row[0]: row for row in _sheet(wb, "设备可用性")[1:]}
    period = float(int(end) - int(start))
    # acc-1: known time excludes govnet's own stop; its down share is the outage over the known time.
    unknown_h = devices["acc-1"][7]
    # Unknown from the stop until the restarted govnet evaluated again (its start-up is unwatched too).
    stopped = scenario["stop"][1] - scenario["stop"][0]
    unwatched = scenario["stop"][2] - scenario["stop"][0]
    assert stopped - TOLERANCE <= unknown_h * 3600 <= unwatched + TOLERANCE, (
        unknown_h * 3600,
        stopped,
        unwatched,
    )
    known = period - unknown_h * 3600
    down = scenario["acc-1"][1] - scenario["acc-1"][0]
    assert abs(devices["acc-1"][5] * known - down) <= TOLERANCE, devices["acc-1"]
    # agg-1 degraded for the uplink's outage; still available 100 %.
    t0, t1 = scenario["agg-1"]
    assert abs(devices["agg-1"][4] * known - (t1 - t0)) <= TOLERANCE, devices["agg-1"]
    assert devices["agg-1"][2] == pytest.approx(1.0)
    # acc-2's outage is inside maintenance: excluded from availability, listed as maintenance time.
    assert devices["acc-2"][2] == pytest.approx(1.0)
    assert devices["acc-2"][8] * 3600 >= MAINT_DEAD_S
    summary = _sheet(wb, "概览")
    gaps = [r for r in summary if r[0] == "" and r[1]]
    assert len(gaps) == 1, summary  # exactly one span in which govnet was not watching
    print("\n[report] truth vs report (s):", [(d, round(t, 1), round(r, 1)) for d, t, r in truth_rows],
          f"govnet stopped {stopped:.1f} s (until polling again {unwatched:.1f} s), "
          f"unknown {unknown_h * 3600:.1f} s")  # fmt: skip
    # The uplink: 95th percentile equals PromQL's own over the same data.
    ups = [r for r in _sheet(wb, "上联带宽（95百分位）") if r and r[0] == f"agg-1 {UPLINK}"]
    assert {r[3] for r in ups} == {"入", "出"}
    from reports.tsdb import Uplink, rate_query

    up = Uplink("agg-1", UPLINK, "core-2", "jd-1", 1e9)
    import math

    aligned = math.ceil(int(start) / STEP_S) * STEP_S
    last = aligned + math.floor((int(end) - aligned) / STEP_S) * STEP_S
    for row in ups:
        direction = "in" if row[3] == "入" else "out"
        window = f"[{last - aligned + STEP_S / 2:.0f}s:{STEP_S:.0f}s]"  # (aligned - step/2, last]
        q = f"quantile_over_time(0.95, ({rate_query(up, direction, '8s')}){window})"
        result = scenario["prom"].api("query", query=q, time=f"{last:.3f}")["result"]
        independent = float(result[0]["value"][1]) / 1e6
        assert row[4] == pytest.approx(independent, rel=1e-6, abs=1e-3), (row, independent)
        assert row[4] > 0 and row[5] >= row[4]
