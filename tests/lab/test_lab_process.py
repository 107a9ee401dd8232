"""The lab process against real net-snmp clients: system group, interfaces, vendor OIDs, v3, faults.

Every test on the `lab` fixture runs twice: one process, and `--procs 3` (devices served by three
processes, so the agg1-core1 link and the fw1/fw2 HA pair cross processes and faults must reach
every shard).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.model import Inventory
from lab.runner import LabError, LabProcess
from tests.support.paths import DATA
from tests.support.ports import lab_ports, lab_process
from tests.support.require import require, require_cmd

BASE = "127.20.1.0"

INVENTORY: dict[str, Any] = {
    "sites": [{"name": "ncc", "kind": "control_centre"}, {"name": "dc", "kind": "datacentre"}],
    "devices": [
        {"name": "core1", "site": "ncc", "role": "core_switch", "vendor": "huawei", "model": "S12708",
         "address": "10.1.0.1", "interfaces": ["XGigabitEthernet1/0/1", "XGigabitEthernet1/0/2"]},
        {"name": "agg1", "site": "ncc", "role": "aggregation_switch", "vendor": "h3c", "address": "10.1.0.2",
         "interfaces": ["Ten-GigabitEthernet1/0/49", "GigabitEthernet1/0/1"]},
        {"name": "fw1", "site": "ncc", "role": "firewall", "vendor": "cisco", "model": "ASA5555",
         "address": "10.1.0.3", "interfaces": ["GigabitEthernet0/0"]},
        {"name": "fw2", "site": "ncc", "role": "firewall", "vendor": "cisco", "model": "ASA5555",
         "address": "10.1.0.4", "interfaces": ["GigabitEthernet0/0"]},
        {"name": "acc1", "site": "ncc", "role": "access_switch", "vendor": "ruijie", "address": "10.1.0.5",
         "interfaces": ["GigabitEthernet 0/1"]},
        {"name": "hs1", "site": "ncc", "role": "firewall", "vendor": "hillstone", "address": "10.1.0.6"},
        {"name": "db1", "site": "dc", "role": "db_server", "vendor": "linux", "address": "10.2.0.1",
         "interfaces": ["eth0"]},
        {"name": "ups1", "site": "dc", "role": "ups", "vendor": "generic", "address": "10.2.0.9"},
    ],
    "links": [
        {"a": {"device": "agg1", "interface": "Ten-GigabitEthernet1/0/49"},
         "b": {"device": "core1", "interface": "XGigabitEthernet1/0/1"}},
    ],
    "ha_groups": [
        {"name": "fwpair", "kind": "firewall", "members": [
            {"device": "fw1", "expected_role": "active"}, {"device": "fw2", "expected_role": "standby"}]},
    ],
}  # fmt: skip

SNMPREC = DATA / "snmprec"
if (SNMPREC / "stoneos.snmprec").exists():
    INVENTORY["devices"].append(
        {"name": "rec1", "site": "ncc", "role": "firewall", "vendor": "hillstone", "address": "10.1.0.7",
         "tags": ["snmprec:stoneos"]}
    )  # fmt: skip

HUAWEI_CPU = ".1.3.6.1.4.1.2011.5.25.31.1.1.1.1.5.67108873"
H3C_CPU = ".1.3.6.1.4.1.25506.2.6.1.1.1.1.6.42"
RUIJIE_CPU = ".1.3.6.1.4.1.4881.1.1.10.2.36.1.2.1.3.1"
HILLSTONE_CPU = ".1.3.6.1.4.1.28557.2.2.1.3.0"
CISCO_CPU = ".1.3.6.1.4.1.9.9.109.1.1.1.1.8.1"
HR_CPU = ".1.3.6.1.2.1.25.3.3.1.2.196608"
UPS_STATUS = ".1.3.6.1.2.1.33.1.2.1.0"
ASA_THIS = ".1.3.6.1.4.1.9.9.147.1.2.1.1.1.3.6"
SYS_UPTIME = ".1.3.6.1.2.1.1.3.0"
IF_OPER = ".1.3.6.1.2.1.2.2.1.8"
IF_HC_IN = ".1.3.6.1.2.1.31.1.1.1.6"
IF_IN = ".1.3.6.1.2.1.2.2.1.10"


@pytest.fixture(scope="module", params=[1, 3], ids=["procs1", "procs3"])
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    require_cmd("snmpget", "snmpbulkwalk")
    procs = int(request.param)
    tmp = tmp_path_factory.mktemp("lab")
    base = BASE if procs == 1 else "127.20.3.0"
    # Its port chosen now: two runs at once never collide.
    with lab_process(INVENTORY, tmp, base, procs=procs) as lab:
        pids = lab.pids()
        assert len(pids) == procs
        yield lab
    assert lab.pid is None
    _gone(pids)


def _gone(pids: list[int], timeout: float = 10.0) -> None:
    """Every process in pids has exited (a zombie counts: its parent just has not reaped it yet)."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text():
            assert time.monotonic() < deadline, f"process {pid} still runs"
            time.sleep(0.05)


def addr(lab: LabProcess, device: str) -> str:
    return f"{lab.devices()[device]['address']}:{lab.snmp_port}"


def v2c(
    lab: LabProcess, tool: str, device: str, *oids: str, timeout: float = 2
) -> subprocess.CompletedProcess[str]:
    cmd = [tool, "-v2c", "-c", lab.secret("snmp_community"), "-On", "-t", str(timeout), "-r", "0"]
    return subprocess.run([*cmd, addr(lab, device), *oids], capture_output=True, text=True, timeout=60)


def v3(
    lab: LabProcess, tool: str, device: str, *oids: str, user: str = "govnet", auth: str = "SHA-256",
    priv: str = "AES", auth_key: str | None = None, priv_key: str | None = None,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    cmd = [tool, "-v3", "-l", "authPriv", "-u", user, "-a", auth, "-A", auth_key or lab.secret("snmp_auth"),
           "-x", priv, "-X", priv_key or lab.secret("snmp_priv"), "-On", "-t", "2", "-r", "1"]  # fmt: skip
    return subprocess.run([*cmd, addr(lab, device), *oids], capture_output=True, text=True, timeout=60)


def values(out: str) -> dict[str, str]:
    """`.oid = TYPE: value` lines to {oid: value}."""
    res = {}
    for line in out.splitlines():
        m = re.match(r"^(\.[\d.]+) = (?:[\w-]+: )?(.*)$", line)
        if m:
            res[m.group(1)] = m.group(2).strip().strip('"')
    return res


def ticks(text: str) -> int:
    return int(re.match(r"\((\d+)\)", text).group(1))  # type: ignore[union-attr]


def test_derived_inventory_is_valid_and_has_no_literal_secrets(lab: LabProcess) -> None:
    raw = yaml.safe_load(lab.inventory_path.read_text())
    inv = Inventory.model_validate(raw)
    assert [d.name for d in inv.devices] == [d["name"] for d in INVENTORY["devices"]]
    text = lab.inventory_path.read_text()
    for name in ("snmp_auth", "snmp_priv", "snmp_community"):
        assert lab.secret(name) not in text
        assert (lab.run_dir / "secrets" / name).stat().st_mode & 0o077 == 0
    core = inv.device("core1")
    assert core.address.startswith(lab.base.rsplit(".", 1)[0] + ".")
    snmp = inv.snmp_of(core)
    assert snmp is not None and snmp.version == "3" and snmp.port == lab.snmp_port
    assert snmp.auth_protocol == "sha256" and snmp.priv_protocol == "aes128"
    assert snmp.auth_key is not None and snmp.auth_key.resolve() == lab.secret("snmp_auth")


def test_system_group_and_interfaces_v2c(lab: LabProcess) -> None:
    r = v2c(lab, "snmpbulkwalk", "core1", ".1.3.6.1.2.1.1")
    sysv = values(r.stdout)
    assert "S12708" in sysv[".1.3.6.1.2.1.1.1.0"] or "Huawei" in sysv[".1.3.6.1.2.1.1.1.0"]
    assert sysv[".1.3.6.1.2.1.1.2.0"] == ".1.3.6.1.4.1.2011.2.170.7"
    assert sysv[".1.3.6.1.2.1.1.5.0"] == "core1"
    assert ticks(sysv[SYS_UPTIME]) > 3 * 86400 * 100
    names = values(v2c(lab, "snmpbulkwalk", "core1", ".1.3.6.1.2.1.31.1.1.1.1").stdout)
    assert list(names.values()) == ["MEth0/0/1", "XGigabitEthernet1/0/1", "XGigabitEthernet1/0/2"]
    hc1 = values(v2c(lab, "snmpbulkwalk", "core1", IF_HC_IN).stdout)
    time.sleep(1.1)
    hc2 = values(v2c(lab, "snmpbulkwalk", "core1", IF_HC_IN).stdout)
    up = f"{IF_HC_IN}.7"  # the linked 10G port moves fastest
    assert int(hc2[up]) > int(hc1[up])
    ifs = values(v2c(lab, "snmpbulkwalk", "core1", ".1.3.6.1.2.1.2.2.1").stdout)
    assert ifs[".1.3.6.1.2.1.2.2.1.2.7"] == "XGigabitEthernet1/0/1"
    assert ifs[f"{IF_OPER}.7"] == "1"
    assert f"{IF_IN}.7" in ifs and ".1.3.6.1.2.1.2.2.1.16.7" in ifs


def test_vendor_cpu_objects(lab: LabProcess) -> None:
    cpus = [("core1", HUAWEI_CPU), ("agg1", H3C_CPU), ("acc1", RUIJIE_CPU), ("hs1", HILLSTONE_CPU)]
    for device, oid in [*cpus, ("fw1", CISCO_CPU), ("db1", HR_CPU)]:
        got = values(v2c(lab, "snmpget", device, oid).stdout)
        assert 0 < int(got[oid]) < 90, (device, got)
    assert values(v2c(lab, "snmpget", "ups1", UPS_STATUS).stdout)[UPS_STATUS] == "2"


@pytest.mark.parametrize(
    ("user", "auth", "priv"), [("govnet", "SHA-256", "AES"), ("govnet-sha512", "SHA-512", "AES256")]
)
def test_v3_authpriv_walk(lab: LabProcess, user: str, auth: str, priv: str) -> None:
    r = v3(lab, "snmpbulkwalk", "agg1", ".1.3.6.1.2.1.31.1.1.1.1", user=user, auth=auth, priv=priv)
    assert r.returncode == 0, r.stderr
    names = list(values(r.stdout).values())
    assert names == ["M-GigabitEthernet0/0/0", "Ten-GigabitEthernet1/0/49", "GigabitEthernet1/0/1"]


def test_snmprec_device_over_v3(lab: LabProcess) -> None:
    require((SNMPREC / "stoneos.snmprec").exists(), f"recordings in {SNMPREC}")
    r = v3(lab, "snmpbulkwalk", "rec1", ".1")
    assert r.returncode == 0, r.stderr
    got = values(r.stdout)
    records = [ln for ln in (SNMPREC / "stoneos.snmprec").read_text().splitlines() if ln.strip()]
    walked = [ln for ln in r.stdout.splitlines() if ln.startswith(".1.") and "No more variables" not in ln]
    assert len(walked) == len(got) == len(records)
    assert got[".1.3.6.1.4.1.28557.2.2.1.3.0"] == "55"


def test_v3_wrong_key_and_unknown_user_are_rejected(lab: LabProcess) -> None:
    r = v3(lab, "snmpget", "agg1", SYS_UPTIME, auth_key="not-the-right-key")
    assert r.returncode != 0 and "Authentication failure" in r.stderr
    r = v3(lab, "snmpget", "agg1", SYS_UPTIME, user="mallory")
    assert r.returncode != 0 and "Unknown user name" in r.stderr
    r = v3(lab, "snmpget", "agg1", SYS_UPTIME, priv_key="not-the-right-priv-key")
    assert r.returncode != 0 and "Decryption error" in r.stderr, r.stderr
    r = v3(lab, "snmpget", "agg1", SYS_UPTIME, auth="SHA-512")  # the user is SHA-256
    assert r.returncode != 0 and "Authentication failure" in r.stderr, r.stderr


def test_second_lab_in_the_same_run_dir_is_refused(lab: LabProcess) -> None:
    with pytest.raises(LabError, match="already runs"):
        LabProcess(
            lab.inventory, lab.run_dir, base=BASE, snmp_port=lab.snmp_port, ssh_port=0, progress=None
        ).start()
    assert lab.status()["devices"]


def test_garbage_datagrams_do_not_break_the_agent(lab: LabProcess) -> None:
    host, port = addr(lab, "core1").split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for payload in [
            b"",
            b"\x30",
            b"\x30\x82\xff\xff" + b"\x00" * 40,
            bytes(range(256)),
            b"\x30\x03\x02\x01\x03",
        ]:
            s.sendto(payload, (host, int(port)))
    assert v2c(lab, "snmpget", "core1", SYS_UPTIME).returncode == 0


def test_dead_and_slow(lab: LabProcess) -> None:
    lab.fault("db1", "dead")
    r = v2c(lab, "snmpget", "db1", SYS_UPTIME, timeout=0.5)
    assert r.returncode != 0 and "Timeout" in r.stderr
    lab.clear("db1", "dead")
    assert v2c(lab, "snmpget", "db1", SYS_UPTIME).returncode == 0
    lab.fault("db1", "slow", seconds=1.5)
    assert "Timeout" in v2c(lab, "snmpget", "db1", SYS_UPTIME, timeout=0.5).stderr  # answered too late
    assert v2c(lab, "snmpget", "db1", SYS_UPTIME, timeout=4).returncode == 0  # but answered
    lab.clear("db1")
    assert v2c(lab, "snmpget", "db1", SYS_UPTIME, timeout=0.5).returncode == 0


def test_link_down_on_both_ends_and_counters_stop(lab: LabProcess) -> None:
    res = lab.fault("agg1", "link_down", interface="Ten-GigabitEthernet1/0/49")
    assert res["interfaces"] == ["Ten-GigabitEthernet1/0/49", "XGigabitEthernet1/0/1"]
    agg_oper = f"{IF_OPER}.2"
    core_oper = f"{IF_OPER}.7"
    assert values(v2c(lab, "snmpget", "agg1", agg_oper).stdout)[agg_oper] == "2"
    assert values(v2c(lab, "snmpget", "core1", core_oper).stdout)[core_oper] == "2"
    c1 = values(v2c(lab, "snmpget", "core1", f"{IF_HC_IN}.7").stdout)
    time.sleep(0.5)
    c2 = values(v2c(lab, "snmpget", "core1", f"{IF_HC_IN}.7").stdout)
    assert c1 == c2
    assert lab.clear("agg1", "link_down") == ["link_down"]
    assert values(v2c(lab, "snmpget", "core1", core_oper).stdout)[core_oper] == "1"


def test_reboot_resets_uptime_counters_and_engine_boots(lab: LabProcess) -> None:
    before = values(
        v3(lab, "snmpget", "core1", SYS_UPTIME, f"{IF_HC_IN}.7", ".1.3.6.1.6.3.10.2.1.2.0").stdout
    )
    res = lab.fault("core1", "reboot")
    after = values(v3(lab, "snmpget", "core1", SYS_UPTIME, f"{IF_HC_IN}.7", ".1.3.6.1.6.3.10.2.1.2.0").stdout)
    assert ticks(after[SYS_UPTIME]) < 60 * 100 < ticks(before[SYS_UPTIME])
    assert int(after[f"{IF_HC_IN}.7"]) < int(before[f"{IF_HC_IN}.7"])
    assert (
        int(after[".1.3.6.1.6.3.10.2.1.2.0"])
        == int(before[".1.3.6.1.6.3.10.2.1.2.0"]) + 1
        == res["engine_boots"]
    )


def test_counter_wrap(lab: LabProcess) -> None:
    lab.fault("core1", "counter_wrap", seconds=1.0)
    hc, c32 = f"{IF_HC_IN}.7", f"{IF_IN}.7"
    first = values(v2c(lab, "snmpget", "core1", hc, c32).stdout)
    assert int(first[hc]) > 2**64 - 2**40 and int(first[c32]) > 2**32 - 2**31
    time.sleep(1.5)
    second = values(v2c(lab, "snmpget", "core1", hc, c32).stdout)
    assert int(second[hc]) < int(first[hc]) and int(second[c32]) < int(first[c32])
    lab.clear("core1", "counter_wrap")
    third = values(v2c(lab, "snmpget", "core1", hc).stdout)
    assert int(third[hc]) >= int(second[hc])  # clearing continues from the wrapped value


def test_ha_failover_swaps_roles(lab: LabProcess) -> None:
    def roles() -> tuple[str, str]:
        return values(v2c(lab, "snmpget", "fw1", ASA_THIS).stdout)[ASA_THIS], values(
            v2c(lab, "snmpget", "fw2", ASA_THIS).stdout
        )[ASA_THIS]

    assert roles() == ("9", "10")  # active, standby
    lab.fault("fw1", "ha_failover")
    assert roles() == ("10", "9")
    assert {d["name"]: d["ha_role"] for d in lab.status()["devices"]}["fw2"] == "active"
    lab.clear("fw1", "ha_failover")
    assert roles() == ("9", "10")


def test_cpu_spike_and_config_change(lab: LabProcess) -> None:
    lab.fault("agg1", "cpu_spike")
    assert int(values(v2c(lab, "snmpget", "agg1", H3C_CPU).stdout)[H3C_CPU]) >= 90
    lab.clear("agg1", "cpu_spike")
    assert int(values(v2c(lab, "snmpget", "agg1", H3C_CPU).stdout)[H3C_CPU]) < 90
    rev = {d["name"]: d["config_revision"] for d in lab.status()["devices"]}["agg1"]
    assert lab.fault("agg1", "config_change")["config_revision"] == rev + 1
    assert lab.clear("agg1", "config_change") == ["config_change"]
    assert {d["name"]: d["config_revision"] for d in lab.status()["devices"]}["agg1"] == rev + 2


def test_cli_status_fault_clear(lab: LabProcess) -> None:
    from typer.testing import CliRunner

    from lab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["fault", "ups1", "cpu_spike", "--run-dir", str(lab.run_dir)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["status", "--run-dir", str(lab.run_dir)])
    assert res.exit_code == 0 and re.search(r"ups1 .*faults: cpu_spike", res.output), res.output
    res = runner.invoke(app, ["clear", "ups1", "--run-dir", str(lab.run_dir)])
    assert "cpu_spike" in res.output
    res = runner.invoke(app, ["fault", "nosuch", "dead", "--run-dir", str(lab.run_dir)])
    assert res.exit_code == 1


def test_cli_up_and_down_leave_nothing_behind(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        yaml.safe_dump({"sites": [{"name": "s"}], "devices": INVENTORY["devices"][:3]}), encoding="utf-8"
    )
    run_dir = tmp_path / "run"
    govnet = [str(Path(sys.executable).with_name("govnet"))]
    snmp_port, ssh_port = lab_ports("127.29.0.0", 3)
    args = ["--inventory", str(inv), "--run-dir", str(run_dir), "--base", "127.29.0.0",
            "--snmp-port", str(snmp_port), "--ssh-port", str(ssh_port)]  # fmt: skip
    up = subprocess.run([*govnet, "lab", "up", *args], capture_output=True, text=True, timeout=60)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert up.stdout.strip().splitlines()[-1] == str((run_dir / "inventory.yaml").resolve())
        pid = json.loads((run_dir / "lab.json").read_text())["pid"]
        assert Path(f"/proc/{pid}").exists()
    finally:
        down = subprocess.run(
            [*govnet, "lab", "down", "--run-dir", str(run_dir)], capture_output=True, text=True
        )
    assert "stopped" in down.stdout, down.stdout + down.stderr
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_sigterm_stops_the_lab_cleanly(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        yaml.safe_dump({"sites": [{"name": "s"}], "devices": INVENTORY["devices"][:1]}), encoding="utf-8"
    )
    snmp_port, _ = lab_ports("127.29.1.0", 1)
    lab = LabProcess(inv, tmp_path / "run", base="127.29.1.0", snmp_port=snmp_port, ssh_port=0, progress=None)
    lab.start()
    try:
        assert lab.proc is not None
        lab.proc.send_signal(signal.SIGTERM)
        assert lab.proc.wait(10) == 0
        assert not (tmp_path / "run" / "control.sock").exists()
        assert not (tmp_path / "run" / "lab.json").exists()
    finally:
        lab.stop()


def test_status_counts_every_process(lab: LabProcess) -> None:
    assert values(v2c(lab, "snmpget", "ups1", SYS_UPTIME).stdout)  # at least one request somewhere
    st = lab.status()
    procs = st["procs"]
    assert [p["pid"] for p in procs] == lab.pids()
    assert sum(p["agents"] for p in procs) == len(st["devices"]) == len(INVENTORY["devices"])
    assert st["requests"] == sum(p["requests"] for p in procs) > 0
    assert st["cpu_s"] == pytest.approx(sum(p["cpu_s"] for p in procs), abs=0.01)


def _sharded(tmp_path: Path, base: str) -> LabProcess:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        yaml.safe_dump({"sites": INVENTORY["sites"], "devices": INVENTORY["devices"][:4]}), encoding="utf-8"
    )
    snmp_port, _ = lab_ports(base, 4)
    return LabProcess(
        inv, tmp_path / "run", base=base, snmp_port=snmp_port, ssh_port=0, progress=None, procs=2
    )


def test_shards_stop_when_the_lab_process_is_killed(tmp_path: Path) -> None:
    lab = _sharded(tmp_path, "127.29.2.0").start()
    try:
        pids = lab.pids()
        assert len(pids) == 2
        assert lab.proc is not None
        lab.proc.kill()  # no clean-up in the lab process: the shard sees its stdin close
        lab.proc.wait(10)
        _gone(pids[1:])
    finally:
        lab.stop()


def test_the_lab_stops_when_a_shard_dies(tmp_path: Path) -> None:
    lab = _sharded(tmp_path, "127.29.3.0").start()
    try:
        pids = lab.pids()
        assert lab.proc is not None
        os.kill(pids[1], signal.SIGKILL)
        assert lab.proc.wait(15) == 0  # stopped on its own, cleanly
        assert not (tmp_path / "run" / "lab.json").exists()
    finally:
        lab.stop()
