"""The lab serves transceivers and sensors through real SNMP, and `optic_degrade` raises one alert.

A small network (Huawei cores, an H3C aggregation switch, a Cisco access switch) runs in the lab
process; govnet's SNMP collector polls it over UDP and the alert engine, with time passed in,
evaluates the shipped rules on what it read.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from alerts.engine import Engine
from alerts.rules import DEFAULT_RULES, load_rules
from collectors import links
from collectors.snmp.collector import SnmpCollector
from core.samples import Sample
from inventory.load import load_inventory
from inventory.model import Inventory
from inventory.topology import Topology
from lab import hardware
from lab.runner import LabProcess
from lab.state import LabDevice, LabInterface

LAB_BASE = "127.46.1.0"
AGG_UPLINK = "GigabitEthernet1/0/49"


def _inventory() -> dict[str, Any]:
    devices = [
        {"name": "core-1", "site": "ncc", "role": "core_switch", "vendor": "huawei", "model": "S12708",
         "address": "10.0.0.1"},
        {"name": "core-2", "site": "ncc", "role": "core_switch", "vendor": "huawei", "model": "S12708",
         "address": "10.0.0.2"},
        {"name": "agg-1", "site": "jd-1", "role": "aggregation_switch", "vendor": "h3c",
         "address": "10.0.1.1"},
        {"name": "acc-1", "site": "jd-1", "role": "access_switch", "vendor": "cisco",
         "model": "WS-C2960X-48FPS-L", "address": "10.0.1.11"},
    ]  # fmt: skip

    def end(device: str, interface: str) -> dict[str, str]:
        return {"device": device, "interface": interface}

    links = [
        {"a": end("agg-1", AGG_UPLINK), "b": end("core-1", "XGigabitEthernet1/0/1"),
         "redundancy_group": "up"},
        {"a": end("agg-1", "GigabitEthernet1/0/50"), "b": end("core-2", "XGigabitEthernet1/0/1"),
         "redundancy_group": "up"},
        {"a": end("acc-1", "GigabitEthernet1/0/52"), "b": end("agg-1", "GigabitEthernet1/0/1")},
    ]  # fmt: skip
    sites = [
        {"name": "ncc", "kind": "control_centre"},
        {"name": "jd-1", "kind": "aggregation", "parent": "ncc"},
    ]
    return {"defaults": {"poll_interval": "5s"}, "sites": sites, "devices": devices, "links": links}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LAB_BASE[:-1] + "1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabProcess, Inventory]]:
    tmp = tmp_path_factory.mktemp("lab-hw")
    src = tmp / "inventory.yaml"
    src.write_text(yaml.safe_dump(_inventory()), encoding="utf-8")
    with LabProcess(
        src, tmp / "lab", base=LAB_BASE, snmp_port=_free_udp_port(), ssh_port=0, progress=None
    ) as lp:
        yield lp, load_inventory(lp.inventory_path)


def _poll(inv: Inventory, now: float, collector: SnmpCollector) -> dict[str, list[Sample]]:
    async def go() -> dict[str, list[Sample]]:
        results = await asyncio.gather(*(collector.poll(inv, d, now, 10.0) for d in inv.devices))
        for r in results:
            assert r.ok, (r.device, r.error)
        return {r.device: list(r.samples) for r in results}

    return asyncio.run(go())


def _by(samples: list[Sample], metric: str, key: str = "ifname") -> dict[str, float]:
    return {s.label_dict.get(key, ""): s.value for s in samples if s.metric == metric}


def test_optics_on_every_linked_port_and_sensors(lab: tuple[LabProcess, Inventory]) -> None:
    _, inv = lab
    polled = _poll(inv, time.time(), SnmpCollector(timeout_s=2.0))
    for link in inv.links:
        for end in (link.a, link.b):
            dev = inv.device(end.device)
            rx = _by(polled[end.device], "govnet_optic_rx_power_dbm")
            assert end.interface in rx, f"{end.device} {end.interface}: no Rx power ({dev.vendor.value})"
            model = hardware.optic_of(
                LabDevice(end.device, "", "", "", "", "", 0, None, 0.0), LabInterface(0, end.interface)
            )
            # Huawei S5720-class reports whole microwatts: 0.05 dB covers the rounding.
            assert rx[end.interface] == pytest.approx(model.rx_dbm, abs=0.05)
            tx = _by(polled[end.device], "govnet_optic_tx_power_dbm")
            assert tx[end.interface] == pytest.approx(model.tx_dbm, abs=0.05)
            temp = _by(polled[end.device], "govnet_optic_temperature_celsius")
            assert temp[end.interface] == pytest.approx(model.temp_c, abs=0.5)
    # The device's own thresholds (Huawei: all four; H3C: min/max receive power).
    thr = {
        (s.label_dict["ifname"], s.label_dict["threshold"]): s.value
        for s in polled["core-1"]
        if s.metric == "govnet_optic_rx_power_threshold_dbm"
    }
    assert thr[("XGigabitEthernet1/0/1", "low_warn")] == pytest.approx(hardware.RX_LOW_WARN)
    assert _by(polled["agg-1"], "govnet_optic_rx_power_threshold_dbm", "threshold")[
        "low_alarm"
    ] == pytest.approx(hardware.RX_LOW_ALARM)
    # Sensors: Huawei board/PSU voltage, PSU current, device power; Cisco fan speed; PoE budget.
    core = {s.metric for s in polled["core-1"]}
    assert {"govnet_voltage_volts", "govnet_current_amperes", "govnet_power_watts"} <= core
    assert _by(polled["acc-1"], "govnet_fan_speed_rpm", "sensor")["Chassis Fan 1 Speed Sensor"] > 1000
    assert _by(polled["acc-1"], "govnet_poe_power_budget_watts", "pse")["1"] == 370
    mods = [s.label_dict for s in polled["core-1"] if s.metric == "govnet_module_info"]
    assert {"class": "transceiver", "name": "XGigabitEthernet1/0/1"}.items() <= next(
        m for m in mods if m["name"] == "XGigabitEthernet1/0/1"
    ).items()


def test_optic_degrade_raises_exactly_one_alert(lab: tuple[LabProcess, Inventory]) -> None:
    lp, inv = lab
    collector = SnmpCollector(timeout_s=2.0)
    engine = Engine(load_rules(DEFAULT_RULES), topology=Topology.from_inventory(inv))
    t = 1_800_000_000.0  # the engine's clock: polls are stamped with it, `for` elapses on it

    def cycle(step: float) -> list[str]:
        nonlocal t
        t += step
        for device, samples in _poll(inv, t, collector).items():
            engine.publish(device, samples)
        engine.evaluate(t)
        return sorted(f"{a.alert} {a.labels.get('device')} {a.labels.get('ifname', '')} {a.state}"
                      for a in engine.alerts(t))  # fmt: skip

    assert cycle(0) == [] and cycle(60) == []
    result = lp.fault("agg-1", "optic_degrade", interface=AGG_UPLINK, seconds=1)
    assert result["interface"] == AGG_UPLINK
    deadline = time.time() + 30
    # H3C reports no warning threshold, only its receive range: the rule then uses the low alarm.
    while time.time() < deadline:  # 2 dB a second from about -5 dBm: below -20 dBm in ~8 s
        rx = _by(_poll(inv, t, collector)["agg-1"], "govnet_optic_rx_power_dbm")[AGG_UPLINK]
        if rx < hardware.RX_LOW_ALARM:
            break
        time.sleep(1)
    assert rx < hardware.RX_LOW_ALARM
    assert cycle(60) == [f"OpticRxPowerLow agg-1 {AGG_UPLINK} pending"]
    assert cycle(300) == [f"OpticRxPowerLow agg-1 {AGG_UPLINK} firing"]
    assert cycle(60) == [f"OpticRxPowerLow agg-1 {AGG_UPLINK} firing"]  # still one: nothing else joins
    lp.clear("agg-1", "optic_degrade")
    cycle(60)
    assert cycle(60) == []


def test_miswire_raises_exactly_one_alert(lab: tuple[LabProcess, Inventory]) -> None:
    lp, inv = lab
    collector = SnmpCollector(timeout_s=2.0)
    engine = Engine(load_rules(DEFAULT_RULES), topology=Topology.from_inventory(inv))
    t = 1_900_000_000.0

    def cycle(step: float) -> tuple[dict[str, str], list[str]]:
        nonlocal t
        t += step
        polled = _poll(inv, t, collector)
        for device, samples in polled.items():
            engine.publish(device, samples)
        found = links.verify(inv, polled)
        engine.publish_internal("links", links.link_samples(inv, found, t))
        engine.evaluate(t)
        states = {f"{c.link.a.device} {c.link.a.interface}": c.state for c in found.links}
        alerts = sorted(f"{a.alert} {a.labels.get('device')} {a.labels.get('a_interface', '')} {a.state}"
                        for a in engine.alerts(t))  # fmt: skip
        return states, alerts

    states, alerts = cycle(0)
    assert set(states.values()) == {"confirmed"} and alerts == []
    result = lp.fault("agg-1", "miswire", interface=AGG_UPLINK)
    assert (
        result["declared_port"] == "XGigabitEthernet1/0/1" and result["seen_port"] != "XGigabitEthernet1/0/1"
    )
    states, alerts = cycle(60)
    assert states[f"agg-1 {AGG_UPLINK}"] == "wrong_port"
    assert sorted(states.values()).count("confirmed") == len(states) - 1
    assert alerts == [f"RedundantLinkNotConfirmed agg-1 {AGG_UPLINK} pending"]
    states, alerts = cycle(600)
    assert alerts == [f"RedundantLinkNotConfirmed agg-1 {AGG_UPLINK} firing"]
    lp.clear("agg-1", "miswire")
    cycle(60)
    states, alerts = cycle(60)
    assert set(states.values()) == {"confirmed"} and alerts == []
