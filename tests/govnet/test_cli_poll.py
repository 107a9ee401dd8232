"""`govnet poll-once` and `govnet run` end to end: real net-snmp snmpd, real VictoriaMetrics, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from collectors.snmp.netsnmpd import NetSnmpd
from govnet.config import ConfigError, load_config
from tests.support.paths import ROOT
from tests.support.require import require_cmd

HOST = "127.23.0.4"
DEAD = "127.23.0.5"  # nothing listens there


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def inventory_yaml(port: int, interval: str = "4s") -> str:
    return f"""
defaults:
  poll_interval: {interval}
  snmp: {{version: 2c, community: env:GOVNET_TEST_COMMUNITY, port: {port}}}
sites:
  - {{name: ncc, kind: control_centre}}
devices:
  - {{name: srv-live, site: ncc, role: server, vendor: linux, address: {HOST}}}
  - {{name: srv-dead, site: ncc, role: server, vendor: linux, address: {DEAD}}}
"""


def govnet(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govnet", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def snmpd_or_skip() -> NetSnmpd:
    require_cmd("snmpd")
    return NetSnmpd(HOST, community="govnet-test").start()


def test_poll_once_json_exit_codes(tmp_path: Path) -> None:
    snmpd = snmpd_or_skip()
    try:
        inv = tmp_path / "inv.yaml"
        inv.write_text(inventory_yaml(snmpd.port))
        env = {**os.environ, "GOVNET_TEST_COMMUNITY": "govnet-test"}
        both = govnet("poll-once", "--inventory", str(inv), "--json", env=env)
        assert both.returncode == 1, both.stderr
        rows = [json.loads(line) for line in both.stdout.splitlines()]
        up = {r["labels"]["device"]: r["value"] for r in rows if r["metric"] == "govnet_up"}
        assert up == {"srv-live": 1.0, "srv-dead": 0.0}
        live = [r for r in rows if r["labels"]["device"] == "srv-live"]
        assert len(live) > len([r for r in rows if r["labels"]["device"] == "srv-dead"])
        assert all({"device", "site", "role", "vendor"} <= r["labels"].keys() for r in rows)
        assert "srv-dead: poll failed" in both.stderr
        assert "govnet-test" not in both.stderr + both.stdout  # the community never shows

        one = govnet("poll-once", "--inventory", str(inv), "--json", "--device", "srv-live", env=env)
        assert one.returncode == 0, one.stderr
        assert {json.loads(x)["labels"]["device"] for x in one.stdout.splitlines()} == {"srv-live"}

        unknown = govnet("poll-once", "--inventory", str(inv), "--device", "nope", env=env)
        assert unknown.returncode == 2 and "unknown device" in unknown.stderr
    finally:
        snmpd.stop()


def test_run_serves_metrics_writes_influx_and_stops_cleanly(tmp_path: Path) -> None:
    require_cmd("victoria-metrics")
    snmpd = snmpd_or_skip()
    vm_port, prom_port = free_tcp_port(), free_tcp_port()
    vm = subprocess.Popen(
        [
            "victoria-metrics",
            f"-storageDataPath={tmp_path / 'vm'}",
            f"-httpListenAddr={HOST}:{vm_port}",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = None
    try:
        (tmp_path / "inv.yaml").write_text(inventory_yaml(snmpd.port, "2s"))
        (tmp_path / "token").write_text("not-a-real-token\n")
        (tmp_path / "govnet.yaml").write_text(
            f"""
inventory: inv.yaml
prometheus: {{listen: "{HOST}:{prom_port}"}}
influx:
  url: http://{HOST}:{vm_port}
  org: govnet
  bucket: govnet
  token: file:token
  flush_interval: 200ms
  spool_dir: spool
  spool_max_bytes: 1MiB
scheduler: {{unreachable_after: 2, unreachable_recheck: 10s}}
"""
        )
        env = {**os.environ, "GOVNET_TEST_COMMUNITY": "govnet-test"}
        run = subprocess.Popen(
            [sys.executable, "-m", "govnet", "run", "--config", str(tmp_path / "govnet.yaml")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        metrics = ""
        end = time.monotonic() + 30
        while time.monotonic() < end:
            assert run.poll() is None, run.communicate()[1]
            try:
                with urllib.request.urlopen(f"http://{HOST}:{prom_port}/metrics", timeout=2) as r:
                    metrics = r.read().decode()
            except OSError:
                pass
            if (
                'govnet_device_unreachable{device="srv-dead"' in metrics
                and "1.0" in metrics.split('govnet_device_unreachable{device="srv-dead"')[1].split("\n")[0]
            ):
                break
            time.sleep(0.3)
        assert 'govnet_up{device="srv-live",role="server",site="ncc",vendor="linux"} 1.0' in metrics
        assert 'govnet_up{device="srv-dead",role="server",site="ncc",vendor="linux"} 0.0' in metrics
        assert "govnet_influx_written_total" in metrics
        run.send_signal(signal.SIGTERM)
        _out, err = run.communicate(timeout=30)
        assert run.returncode == 0, err
        assert "stopped" in err and "not-a-real-token" not in err
        urllib.request.urlopen(f"http://{HOST}:{vm_port}/internal/force_flush", timeout=10).close()
        q = urllib.parse.urlencode({"match[]": "govnet_up_value", "start": "0"}).encode()
        with urllib.request.urlopen(f"http://{HOST}:{vm_port}/api/v1/export", data=q, timeout=10) as r:
            series = [json.loads(line) for line in r.read().decode().splitlines()]
        by_dev = {s["metric"]["device"]: s["values"] for s in series}
        assert set(by_dev["srv-live"]) == {1.0} and set(by_dev["srv-dead"]) == {0.0}
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait()
        vm.send_signal(signal.SIGTERM)
        vm.wait(20)
        snmpd.stop()


def test_run_rejects_bad_config_with_file_line(tmp_path: Path) -> None:
    cfg = tmp_path / "govnet.yaml"
    cfg.write_text("inventory: inv.yaml\nscheduler:\n  retries: many\ninflux:\n  url: x\n  token: s3cret\n")
    try:
        load_config(cfg)
    except ConfigError as exc:
        text = str(exc)
    else:
        raise AssertionError("accepted a bad config")
    assert f"{cfg}:3: scheduler.retries:" in text
    assert f"{cfg}:5: influx.url:" in text
    assert f"{cfg}:6: influx.token:" in text and "s3cret" not in text
    assert f"{cfg}:4: influx.org: Field required" in text
    res = govnet("run", "--config", str(cfg), env=dict(os.environ))
    assert res.returncode == 2 and "scheduler.retries" in res.stderr and "s3cret" not in res.stderr


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "examples" / "govnet.yaml")
    assert cfg.influx is not None and cfg.influx.token.ref == "env:GOVNET_INFLUX_TOKEN"
    assert cfg.inventory.name == "minimal.yaml" and cfg.inventory.is_absolute()
    assert cfg.prometheus.listen == "127.0.0.1:9810"
