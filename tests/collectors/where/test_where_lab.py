"""Where is this address, against the lab: hosts behind every access vendor, host_move and arp_spoof.

The lab serves ARP on the aggregation switches and forwarding tables on the access switches (Q-BRIDGE
for Huawei, H3C and Ruijie; Cisco's per-VLAN BRIDGE-MIB through SNMPv3 contexts). The where service
sweeps them over real SNMP; its clock is passed in so the history's times are exact.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.engine import Engine
from alerts.rules import DEFAULT_RULES, load_rules
from collectors.where.history import History
from collectors.where.poll import TablesPoller
from collectors.where.query import parse_query
from collectors.where.service import WhereSection, WhereService
from inventory.load import load_inventory
from inventory.model import SnmpV2c
from lab.runner import LabProcess
from tests.support.ports import lab_process

BASE = "127.20.16.0"
ACCESS = {"acc-hw": "huawei", "acc-h3c": "h3c", "acc-rj": "ruijie", "acc-cs": "cisco"}
PORTS = {
    "huawei": "GigabitEthernet0/0/{}",
    "h3c": "GigabitEthernet1/0/{}",
    "ruijie": "GigabitEthernet 0/{}",
    "cisco": "GigabitEthernet1/0/{}",
}
INVENTORY: dict[str, Any] = {
    "sites": [{"name": "ncc", "kind": "control_centre"}, {"name": "town", "kind": "aggregation"}],
    "devices": [
        {"name": "agg-a", "site": "town", "role": "aggregation_switch", "vendor": "huawei",
         "address": "10.1.0.2", "interfaces": ["GigabitEthernet0/0/1", "GigabitEthernet0/0/2",
                                               "GigabitEthernet0/0/3"]},
        {"name": "agg-c", "site": "town", "role": "aggregation_switch", "vendor": "cisco",
         "address": "10.1.0.3", "interfaces": ["GigabitEthernet1/0/1"]},
    ],
    "links": [],
}  # fmt: skip
for n, (name, vendor) in enumerate(ACCESS.items()):
    ports = [PORTS[vendor].format(k) for k in range(1, 11)]
    INVENTORY["devices"].append(
        {"name": name, "site": "town", "role": "access_switch", "vendor": vendor,
         "address": f"10.1.1.{n + 1}", "interfaces": ports,
         "single_host_ports": [ports[3]] if vendor == "h3c" else []}
    )  # fmt: skip
    up, down = (
        ("agg-c", "GigabitEthernet1/0/1") if vendor == "cisco" else ("agg-a", f"GigabitEthernet0/0/{n + 1}")
    )
    INVENTORY["links"].append(
        {"a": {"device": name, "interface": ports[-1]}, "b": {"device": up, "interface": down}}
    )


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    tmp = tmp_path_factory.mktemp("wherelab")
    with lab_process(INVENTORY, tmp, BASE) as lab:
        yield lab


def _service(lab: LabProcess, tmp: Path, clock: Clock) -> WhereService:
    inv = load_inventory(lab.inventory_path)
    section = WhereSection(timeout=1.0, retries=1, state_dir=tmp)
    return WhereService(inv, section, History(path=tmp / "where.db"), clock=clock)


def _hosts(lab: LabProcess) -> list[dict[str, Any]]:
    return list(lab.request("hosts")["hosts"])


def test_where_answers_for_a_host_behind_every_access_vendor(lab: LabProcess, tmp_path: Path) -> None:
    svc = _service(lab, tmp_path, Clock(1_800_000_000.0))
    asyncio.run(svc.sweep_once())
    assert all(t.ok for t in svc.last_tables), [(t.device, t.error) for t in svc.last_tables]
    hosts = _hosts(lab)
    assert {h["switch"] for h in hosts} == set(ACCESS)
    for h in hosts:
        got = svc.lookup(parse_query(h["ip"]))
        assert got["location"] is not None, h
        loc = got["location"]
        assert (loc["device"], loc["port"], loc["vlan"]) == (h["switch"], h["port"], h["vlan"]), (h, loc)
        assert [m["mac"] for m in got["macs"]] == [h["mac"]]
        assert got["macs"][0]["vendor"]  # the lab uses registered OUIs
        # and by MAC
        by_mac = svc.lookup(parse_query(h["mac"].replace(":", "").upper()))
        assert by_mac["location"]["port"] == h["port"]
    # No host is placed on an uplink or on the aggregation switches' downlinks.
    assert not any(r.device.startswith("agg-") for r in svc.sweep.hosts if r.device) if svc.sweep else False
    svc.history.close()

    # The CLI answers from the stored history, for one host of each vendor.
    cfg = tmp_path / "govnet.yaml"
    cfg.write_text(
        yaml.safe_dump({"inventory": str(lab.inventory_path), "where": {"state_dir": str(tmp_path)}}),
        encoding="utf-8",
    )
    for vendor_switch in ACCESS:
        h = next(x for x in hosts if x["switch"] == vendor_switch)
        out = subprocess.run(
            [sys.executable, "-m", "govnet", "where", "--config", str(cfg), h["ip"], "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert (doc["location"]["device"], doc["location"]["port"]) == (h["switch"], h["port"])
        assert doc["location"]["site"] == "town"


def test_host_move_shows_old_and_new_port_with_times(lab: LabProcess, tmp_path: Path) -> None:
    clock = Clock(1_800_100_000.0)
    svc = _service(lab, tmp_path, clock)
    asyncio.run(svc.sweep_once())
    t1 = int(clock.t)
    host = next(h for h in _hosts(lab) if h["switch"] == "acc-hw")
    moved = lab.fault("acc-hw", "host_move", host=host["ip"], to="acc-h3c")
    try:
        clock.t += 300
        asyncio.run(svc.sweep_once())
        t2 = int(clock.t)
        clock.t += 300
        asyncio.run(svc.sweep_once())
        t3 = int(clock.t)
        rows = svc.lookup(parse_query(host["ip"]))["history"]
        places = [(r["device"], r["port"], r["first_seen"], r["last_seen"]) for r in rows]
        assert places == [
            ("acc-h3c", moved["to"][1], t2, t3),
            ("acc-hw", host["port"], t1, t1),
        ]
        # The same from the store alone (a fresh process, as the CLI sees it).
        svc.history.flush()
        again = History(path=tmp_path / "where.db")
        stored = [(r.device, r.port, r.first_seen, r.last_seen) for r in again.by_ip(host["ip"])]
        assert stored == places
        again.close()
    finally:
        lab.clear("acc-hw", "host_move")
        svc.history.close()


def test_arp_spoof_raises_one_alert_naming_both_macs(lab: LabProcess, tmp_path: Path) -> None:
    clock = Clock(1_800_200_000.0)
    svc = _service(lab, tmp_path, clock)
    asyncio.run(svc.sweep_once())
    assert not svc.detector.active
    spoof = lab.fault("acc-rj", "arp_spoof")
    try:
        engine = Engine(load_rules(DEFAULT_RULES))
        for _ in range(3):  # the event stays one alert while it lasts
            clock.t += 300
            asyncio.run(svc.sweep_once())
            engine.publish_internal("where", svc.internal_samples())
            engine.evaluate(clock.t)
        firing = [a for a in engine.alerts(clock.t) if a.alert == "AddressMacChanged"]
        assert len(firing) == 1, firing
        alert = firing[0]
        assert alert.labels["ip"] == spoof["host"]
        assert {alert.labels["mac"], alert.labels["previous_mac"]} == {
            spoof["attacker_mac"],
            spoof["victim_mac"],
        }
        assert spoof["attacker_mac"] in alert.summary and spoof["victim_mac"] in alert.summary
        assert alert.labels["device"] == "agg-a"
        assert not [
            a
            for a in engine.alerts(clock.t)
            if a.alert != "AddressMacChanged" and a.alert.startswith(("Mac", "Port", "Single"))
        ]
    finally:
        lab.clear("acc-rj", "arp_spoof")
        svc.history.close()


def test_single_host_port_new_mac(lab: LabProcess, tmp_path: Path) -> None:
    clock = Clock(1_800_300_000.0)
    svc = _service(lab, tmp_path, clock)
    asyncio.run(svc.sweep_once())
    single = PORTS["h3c"].format(4)
    before = next(h for h in _hosts(lab) if h["switch"] == "acc-h3c" and h["port"] == single)
    # Move the host away and another one onto the declared port: a new MAC there.
    lab.fault("acc-h3c", "host_move", host=before["ip"], to="acc-hw")
    other = next(h for h in _hosts(lab) if h["switch"] == "acc-rj")
    try:
        lab.fault("acc-rj", "host_move", host=other["ip"], to="acc-h3c")
        clock.t += 300
        asyncio.run(svc.sweep_once())
        events = [e for e in svc.detector.active.values() if e.kind == "single_host_new_mac"]
        assert [(e.device, dict(e.labels)["port"], dict(e.labels)["mac"]) for e in events] == [
            ("acc-h3c", single, other["mac"])
        ]
    finally:
        lab.clear("acc-rj", "host_move")
        lab.clear("acc-h3c", "host_move")
        svc.history.close()


def test_cisco_per_vlan_tables_over_v2c_community_at_vlan(lab: LabProcess) -> None:
    """The same Cisco switch read with SNMPv2c: each VLAN's bridge table under `community@VLAN`."""
    inv = load_inventory(lab.inventory_path)
    dev = inv.device("acc-cs")
    os.environ["GOVNET_TEST_WHERE_LAB_COMMUNITY"] = lab.secret("snmp_community")
    creds = SnmpV2c.model_validate(
        {"community": "env:GOVNET_TEST_WHERE_LAB_COMMUNITY", "port": lab.devices()["acc-cs"]["snmp_port"]}
    )
    tables = asyncio.run(TablesPoller(timeout_s=1.0).read(dev, creds, arp=False, fdb=True, budget_s=30))
    assert tables.ok and not tables.problems, (tables.error, tables.problems)
    names = tables.if_names
    got = {(t.mac.to_bytes(6, "big").hex(":"), t.vlan, names.get(t.if_index or -1)) for t in tables.fdb}
    want = {(h["mac"], h["vlan"], h["port"]) for h in _hosts(lab) if h["switch"] == "acc-cs"}
    assert want and want <= got
