"""The example district loads clean, has the shape DESIGN.md describes, and is what its script makes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from inventory.load import load_inventory
from inventory.model import Inventory, Role, SnmpV3
from inventory.topology import Topology
from tests.support.paths import ROOT

DISTRICT = ROOT / "examples" / "district.yaml"
MINIMAL = ROOT / "examples" / "minimal.yaml"
GOVNET = str(Path(sys.executable).with_name("govnet"))


@pytest.fixture(scope="module")
def district() -> Inventory:
    return load_inventory(DISTRICT)


def _roles(inv: Inventory) -> Counter[Role]:
    return Counter(d.role for d in inv.devices)


def test_counts(district: Inventory) -> None:
    roles = _roles(district)
    assert roles[Role.core_switch] == 2
    assert roles[Role.aggregation_switch] == 13
    assert roles[Role.access_switch] >= 100
    assert roles[Role.firewall] == 2
    for role in (Role.isolation_gateway, Role.vpn_gateway, Role.ips, Role.load_balancer, Role.ups):
        assert roles[role] >= 1, role
    assert 4 <= roles[Role.server] <= 6
    assert roles[Role.db_server] == 2
    kinds = Counter(s.kind for s in district.sites)
    assert kinds["control_centre"] == 1 and kinds["datacentre"] == 1
    assert kinds["aggregation"] == 13 and kinds["access"] >= 100


def test_vendor_mix(district: Inventory) -> None:
    aggs = {d.vendor.value for d in district.devices if d.role is Role.aggregation_switch}
    assert aggs == {"huawei", "h3c", "ruijie", "cisco"}
    by_role = {d.role: d.vendor.value for d in district.devices}
    assert by_role[Role.vpn_gateway] == "sangfor"
    assert by_role[Role.ips] == "topsec"
    assert {d.vendor.value for d in district.devices if d.role is Role.firewall} <= {"huawei", "hillstone"}
    assert {d.vendor.value for d in district.devices if d.role is Role.core_switch} == {"huawei"}


def test_every_aggregation_point_has_dual_uplinks_to_both_cores(district: Inventory) -> None:
    topo = Topology.from_inventory(district)
    cores = {d.name for d in district.devices if d.role is Role.core_switch}
    for agg in (d for d in district.devices if d.role is Role.aggregation_switch):
        assert set(topo.upstream(agg.name)) == cores, agg.name
        groups = {link.redundancy_group for link in topo.uplinks_of[agg.name]}
        assert len(groups) == 1 and None not in groups
        group = topo.redundancy_groups[groups.pop() or ""]
        assert group.expected == 2
        assert all(link.kind == "uplink" for link in group.links)
    peers = [link for link in district.links if link.kind == "peer"]
    assert {(link.a.device, link.b.device) for link in peers} == {("nc-core-1", "nc-core-2")}


def test_access_switches_hang_below_aggregation_points(district: Inventory) -> None:
    topo = Topology.from_inventory(district)
    by_name = {d.name: d for d in district.devices}
    sites = {s.name: s for s in district.sites}
    for acc in (d for d in district.devices if d.role is Role.access_switch):
        [upper] = topo.upstream(acc.name)
        assert by_name[upper].role is Role.aggregation_switch
        assert sites[acc.site].parent == by_name[upper].site  # the site tree mirrors the cabling
    assert topo.roots() == ("nc-core-1", "nc-core-2")  # everything else is cabled below the cores


def test_interfaces_declared_on_switches(district: Inventory) -> None:
    for d in district.devices:
        if d.role is Role.aggregation_switch:
            assert 24 <= len(d.interfaces) <= 56, d.name
        elif d.role is Role.access_switch:
            assert 24 <= len(d.interfaces) <= 30, d.name
        elif d.role is Role.core_switch:
            assert len(d.interfaces) >= 13 + 1
    names = {d.vendor.value: d.interfaces[0] for d in district.devices if d.role is Role.aggregation_switch}
    assert names["huawei"] == "GigabitEthernet0/0/1"
    assert names["h3c"] == "GigabitEthernet1/0/1"
    assert names["cisco"] == "GigabitEthernet1/0/1"
    assert names["ruijie"] == "GigabitEthernet 0/1"  # as Ruijie's own ifDescr spells it


def test_ha_groups_and_backups(district: Inventory) -> None:
    groups = {g.kind: {m.device: m.expected_role for m in g.members} for g in district.ha_groups}
    assert sorted(groups["firewall"].values()) == ["active", "standby"]
    assert sorted(groups["database"].values()) == ["primary", "standby"]
    jobs = district.backup_jobs
    db_hosts = {d.name for d in district.devices if d.role is Role.db_server}
    daily_auto = {j.host for j in jobs if j.mode == "automatic" and j.every == 86400.0}
    assert db_hosts <= daily_auto
    assert any(j.mode == "manual" and j.every == 7 * 86400.0 for j in jobs)
    assert any("netconf" in j.path for j in jobs)


def test_credentials_are_references_with_strong_snmpv3(district: Inventory) -> None:
    snmp = district.defaults.snmp
    assert isinstance(snmp, SnmpV3)
    assert (snmp.auth_protocol, snmp.priv_protocol) == ("sha256", "aes128")
    assert snmp.auth_key is not None and snmp.auth_key.ref == "env:GOVNET_SNMP_AUTH"
    assert snmp.priv_key is not None and snmp.priv_key.ref == "env:GOVNET_SNMP_PRIV"
    ssh = district.defaults.ssh
    assert ssh is not None and ssh.password is not None and ssh.password.scheme == "env"
    for device in district.devices:
        assert district.snmp_of(device) is not None, device.name
        assert device.address.startswith("10."), device.name


def test_committed_file_is_what_the_script_generates() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_district.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(DISTRICT.read_text(encoding="utf-8"))["devices"]


@pytest.mark.parametrize("path", [DISTRICT, MINIMAL], ids=["district", "minimal"])
def test_check_inventory_command_exits_0(path: Path) -> None:
    proc = subprocess.run([GOVNET, "check-inventory", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{path}: OK"
    inv = load_inventory(path)
    assert f"{len(inv.devices)} devices" in lines[1]
    assert f"{len(inv.sites)} sites" in lines[1]


def test_minimal_example(district: Inventory) -> None:
    inv = load_inventory(MINIMAL)
    assert len(inv.devices) == 3
    topo = Topology.from_inventory(inv)
    assert topo.upstream("acc-chengguan-sq01") == ("core-1",)
