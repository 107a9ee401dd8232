"""The demo's parts that the end-to-end test (test_demo.py) does not show on their own: ports and
overrides, the demo inventory and backup files, and Grafana's provisioning.

Grafana is in no registry here, so its start is checked with a stand-in executable named
`grafana-server` that records the environment and arguments it was given: what is tested is
govnet's provisioning (folders, URLs, a random admin password) and that the demo stops it by PID,
not Grafana itself."""

from __future__ import annotations

import gzip
import json
import os
import time
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from govnet.demo import Children, Ports, _demo_backups, _demo_inventory, _grafana, parse_args
from inventory.load import load_inventory
from tests.support.paths import EXAMPLES, ROOT


def test_ports_default_or_from_a_base_never_collide() -> None:
    default = Ports()
    values = [getattr(default, f.name) for f in fields(Ports)]
    assert len(set(values)) == len(values) and default.api == 9820 and default.metrics == 9810
    based = Ports.from_base(40000)
    assert [getattr(based, f.name) for f in fields(Ports)] == list(range(40000, 40000 + len(values)))
    assert based.pg + 1 not in values  # the standby's port is past the last field


def test_flags_beat_environment_beat_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("GOVNET_DEMO_HOST", "GOVNET_DEMO_PORT_BASE", "GOVNET_DEMO_LAB_BASE", "GOVNET_DEMO_DIR"):
        monkeypatch.delenv(var, raising=False)
    opts = parse_args([])
    assert (opts.host, opts.ports, opts.lab_base) == ("127.0.0.1", Ports(), "127.77.0.0")
    monkeypatch.setenv("GOVNET_DEMO_HOST", "127.36.3.1")
    monkeypatch.setenv("GOVNET_DEMO_PORT_BASE", "41000")
    monkeypatch.setenv("GOVNET_DEMO_DIR", str(tmp_path))
    opts = parse_args([])
    assert (opts.host, opts.ports.api, opts.run_dir) == ("127.36.3.1", 41001, tmp_path.resolve())
    opts = parse_args(["--port-base", "42000", "--host", "127.36.3.2", "--without", "grafana,postgres"])
    assert (opts.host, opts.ports.metrics, opts.without) == (
        "127.36.3.2",
        42000,
        frozenset({"grafana", "postgres"}),
    )
    for bad in (["--without", "syslog"], ["--port-base", "80"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_demo_inventory_and_backup_files(tmp_path: Path) -> None:
    lab_inv = tmp_path / "lab-inventory.yaml"
    doc = yaml.safe_load((EXAMPLES / "district.yaml").read_text(encoding="utf-8"))
    for d in doc["devices"]:  # as the lab derives it: SSH only where a vendor CLI exists
        d["ssh"] = (
            {"username": "govnet", "password": "file:x", "port": 2222} if d["vendor"] == "huawei" else None
        )
        if d["ssh"] is None:
            del d["ssh"]
    lab_inv.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    inv, backed, hosts = _demo_inventory(lab_inv, tmp_path, "127.36.3.4", Ports.from_base(44000))
    out = yaml.safe_load(inv.read_text(encoding="utf-8"))
    # Service checks of the demo's own website, console and syslog port, valid as inventory entries.
    services = {s.name: s for s in load_inventory(inv).services}
    assert set(services) == {"portal", "console", "syslog-tcp"}
    assert services["portal"].target == f"http://127.36.3.4:{Ports.from_base(44000).portal}/"
    assert services["syslog-tcp"].target == f"127.36.3.4:{Ports.from_base(44000).syslog}"
    assert out["defaults"]["poll_interval"] == "15s"
    assert all(d.get("poll_interval", "15s") == "15s" for d in out["devices"])
    assert backed[:2] == ["nc-core-1", "nc-core-2"] and 0 < len(backed) <= 6
    assert set(hosts) == {j["host"] for j in out["backup_jobs"]}
    now = time.time()
    count = _demo_backups(inv, now)
    assert count == sum(1 if j["mode"] == "manual" else 7 for j in out["backup_jobs"])
    for job in out["backup_jobs"]:
        files = sorted(Path(job["path"]).iterdir(), key=lambda p: p.stat().st_mtime)
        ages = [(now - p.stat().st_mtime) / 86400 for p in files]
        assert ages[-1] < 1 if job["mode"] == "automatic" else 2 < ages[-1] < 4
        for p in files:
            assert gzip.decompress(p.read_bytes()).startswith(
                f"-- govnet demo backup of {job['host']}".encode()
            )
    assert _demo_backups(inv, now) == count  # a second call keeps the same files


def test_grafana_is_provisioned_and_stopped_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "opt"
    (root / "share" / "grafana" / "conf").mkdir(parents=True)
    (root / "share" / "grafana" / "conf" / "defaults.ini").write_text("")
    (root / "bin").mkdir()
    record = tmp_path / "grafana.json"
    stub = root / "bin" / "grafana-server"
    stub.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys, time\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
        "time.sleep(600)\n"
    )
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
    children = Children(tmp_path)
    ports = Ports.from_base(43000)
    try:
        password = _grafana(children, tmp_path / "run", "127.36.3.3", ports)
        assert password and len(password) >= 12
        deadline = time.monotonic() + 20
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        got = json.loads(record.read_text())
    finally:
        children.stop()
    assert got["argv"] == ["--homepath", str(root / "share" / "grafana")]
    env = got["env"]
    assert (env["GF_SERVER_HTTP_ADDR"], env["GF_SERVER_HTTP_PORT"]) == ("127.36.3.3", str(ports.grafana))
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == password
    assert env["GOVNET_PROMETHEUS_URL"] == f"http://127.36.3.3:{ports.prometheus}"
    for var in ("GF_PATHS_PROVISIONING", "GOVNET_GRAFANA_DASHBOARDS"):
        assert Path(env[var]).is_dir() and Path(env[var]).is_relative_to(ROOT)
    assert list(Path(env["GOVNET_GRAFANA_DASHBOARDS"]).glob("*.json"))
    assert children.procs == []
