"""A Hillstone firewall pair in the lab, polled by the real SNMP collector: HA role, sessions, failover."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.cli import poll_cycle, snmp_collector
from collectors.scheduler import SchedulerSettings
from core.samples import Sample
from inventory.load import load_inventory
from lab.runner import LabProcess
from tests.support.ports import lab_process

BASE = "127.44.0.0"

INVENTORY = {
    "sites": [{"name": "ncc", "kind": "control_centre"}],
    "devices": [
        {"name": f"hs-fw-{n}", "site": "ncc", "role": "firewall", "vendor": "hillstone",
         "model": "SG-6000-E3965", "address": f"10.44.0.{n}", "interfaces": ["ethernet0/0", "ethernet0/1"]}
        for n in (1, 2)
    ],
    "ha_groups": [
        {"name": "hs-fw", "kind": "firewall", "members": [
            {"device": "hs-fw-1", "expected_role": "active"},
            {"device": "hs-fw-2", "expected_role": "standby"}]},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    tmp = tmp_path_factory.mktemp("hillstone-lab")
    with lab_process(INVENTORY, tmp, BASE) as lab:
        yield lab


def _poll(inventory: Path) -> dict[str, list[Sample]]:
    inv = load_inventory(inventory)
    settings = SchedulerSettings()
    results = asyncio.run(poll_cycle(inv, inv.devices, snmp_collector(settings), settings))
    out: dict[str, list[Sample]] = {}
    for device, result, samples in results:
        assert result.ok, f"{device.name}: {result.error}"
        out[device.name] = list(samples)
    return out


def _roles(polled: dict[str, list[Sample]]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for name, samples in polled.items():
        on = [dict(s.labels)["state"] for s in samples if s.metric == "govnet_ha_role" and s.value == 1.0]
        assert len(on) == 1, f"{name}: exactly one HA state should be 1, got {on}"
        roles[name] = on[0]
    return roles


def _one(samples: list[Sample], metric: str) -> float:
    values = [s.value for s in samples if s.metric == metric]
    assert len(values) == 1, f"{metric}: {values}"
    return values[0]


def test_pair_exports_roles_and_sessions_and_failover_swaps_them(lab: LabProcess) -> None:
    polled = _poll(lab.inventory_path)
    assert _roles(polled) == {"hs-fw-1": "active", "hs-fw-2": "standby"}
    for name, samples in polled.items():
        sessions = _one(samples, "govnet_fw_sessions")
        limit = _one(samples, "govnet_fw_sessions_limit")
        assert 0 < sessions < limit, name
        labels = dict(next(s for s in samples if s.metric == "govnet_fw_sessions").labels)
        assert labels["device"] == name and labels["vendor"] == "hillstone" and labels["role"] == "firewall"
    lab.fault("hs-fw-1", "ha_failover")
    try:
        assert _roles(_poll(lab.inventory_path)) == {"hs-fw-1": "standby", "hs-fw-2": "active"}
    finally:
        lab.clear("hs-fw-1", "ha_failover")
    assert _roles(_poll(lab.inventory_path)) == {"hs-fw-1": "active", "hs-fw-2": "standby"}
