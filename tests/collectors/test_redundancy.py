"""Redundancy and reachability as a pure function of (topology, latest samples, probe results)."""

from __future__ import annotations

import pytest

from collectors.redundancy import (
    ReachabilityService,
    StateTracker,
    core_groups,
    evaluate,
    report_samples,
)
from core.latest import LatestStore
from core.samples import Sample
from inventory.load import load_inventory
from inventory.model import Inventory
from inventory.topology import Topology
from tests.support.paths import ROOT

DISTRICT = ROOT / "examples" / "district.yaml"


@pytest.fixture(scope="module")
def district() -> Inventory:
    return load_inventory(DISTRICT)


@pytest.fixture(scope="module")
def topo(district: Inventory) -> Topology:
    return Topology.from_inventory(district)


def up(device: str, value: float = 1.0) -> Sample:
    return Sample("govnet_up", (("device", device),), value, 0.0)


def oper(device: str, ifname: str, value: float, key: str = "ifname") -> Sample:
    return Sample("govnet_if_oper_up", (("device", device), (key, ifname)), value, 0.0)


def test_everything_up_without_evidence_or_with_all_polls_ok(district: Inventory, topo: Topology) -> None:
    for samples in ([], [up(d.name) for d in district.devices]):
        rep = evaluate(topo, samples, device_groups=core_groups(district))
        assert set(rep.devices.values()) == {"up"}
        assert all(g.state == "ok" and g.up == g.expected for g in rep.groups.values())
    kinds = {k for k, _ in rep.groups}
    assert kinds == {"links", "ha", "devices"}
    assert rep.groups[("links", "agg-chengguan-uplinks")].expected == 2
    assert rep.groups[("devices", "cores")].expected == 2


def test_one_uplink_down_is_degraded_both_down_makes_the_site_unreachable(topo: Topology) -> None:
    below = topo.descendants("agg-chengguan")
    assert len(below) == 10
    # One uplink: its interface reports oper down on the aggregation switch.
    rep = evaluate(topo, [up("agg-chengguan"), oper("agg-chengguan", "GigabitEthernet0/0/47", 0)])
    assert rep.devices["agg-chengguan"] == "degraded"
    g = rep.groups[("links", "agg-chengguan-uplinks")]
    assert (g.up, g.expected, g.state) == (1, 2, "degraded")
    assert all(rep.devices[d] == "up" for d in below)
    # Both: the aggregation switch no longer answers (its samples are gone, govnet_up 0); the cores
    # report their ends down. It and everything below it are unreachable, nothing is "down" (no page).
    rep = evaluate(
        topo,
        [
            up("agg-chengguan", 0),
            oper("nc-core-1", "GigabitEthernet1/0/0", 0),
            oper("nc-core-2", "GigabitEthernet1/0/0", 0),
            *[up(d, 0) for d in below],
        ],
    )
    assert rep.devices["agg-chengguan"] == "unreachable"
    assert all(rep.devices[d] == "unreachable" for d in below)
    assert rep.groups[("links", "agg-chengguan-uplinks")].state == "down"
    assert "down" not in rep.devices.values()
    # Other aggregation points are untouched.
    assert rep.devices["agg-dongcheng"] == "up"


def test_failed_aggregation_switch_with_working_uplinks_is_the_cause(topo: Topology) -> None:
    below = topo.descendants("agg-chengguan")
    rep = evaluate(topo, [up("agg-chengguan", 0), *[up(d, 0) for d in below]])
    assert rep.devices["agg-chengguan"] == "down"
    assert {rep.devices[d] for d in below} == {"unreachable"}
    assert rep.groups[("links", "agg-chengguan-uplinks")].state == "down"  # both ends must be up


def test_core_failure_degrades_every_aggregation_point_once(district: Inventory, topo: Topology) -> None:
    rep = evaluate(topo, [up("nc-core-1", 0)], {"nc-core-1": False}, core_groups(district))
    assert rep.devices["nc-core-1"] == "down"
    aggs = [d.name for d in district.devices if d.role.value == "aggregation_switch"]
    assert len(aggs) == 13 and all(rep.devices[a] == "degraded" for a in aggs)
    assert rep.groups[("devices", "cores")].state == "degraded"
    assert list(rep.devices.values()).count("down") == 1


def test_evidence_rules(topo: Topology) -> None:
    # SNMP failed but the device answers ping: alive (agent trouble is another alert).
    assert evaluate(topo, [up("agg-chengguan", 0)], {"agg-chengguan": True}).devices["agg-chengguan"] == "up"
    # Only the prober knows and says no: failed.
    assert evaluate(topo, [], {"agg-chengguan": False}).devices["agg-chengguan"] == "down"
    # ICMP filtered but SNMP fine: alive.
    assert evaluate(topo, [up("nc-fw-1")], {"nc-fw-1": False}).devices["nc-fw-1"] == "up"


def test_interface_matched_by_ifdescr_when_ifname_absent(topo: Topology) -> None:
    rep = evaluate(topo, [oper("agg-chengguan", "GigabitEthernet0/0/48", 0, key="ifdescr")])
    assert rep.devices["agg-chengguan"] == "degraded"
    # An interface not on any link changes nothing.
    rep = evaluate(topo, [oper("agg-chengguan", "GigabitEthernet0/0/30", 0)])
    assert rep.devices["agg-chengguan"] == "up"


def test_ha_pair_member_down(topo: Topology) -> None:
    rep = evaluate(topo, [up("nc-fw-2", 0)])
    g = rep.groups[("ha", "nc-fw")]
    assert (g.up, g.expected, g.state) == (1, 2, "degraded")
    rep = evaluate(topo, [up("dc-db-1", 0), up("dc-db-2", 0)])
    assert rep.groups[("ha", "dc-db")].state == "down"


def test_samples_are_statesets_with_device_labels(district: Inventory, topo: Topology) -> None:
    rep = evaluate(topo, [up("agg-chengguan"), oper("agg-chengguan", "GigabitEthernet0/0/47", 0)])
    samples = report_samples(rep, district, 1.0)
    reach = [s for s in samples if s.metric == "govnet_reachability_state"]
    assert len(reach) == 4 * len(district.devices)
    agg = {s.label_dict["state"]: s.value for s in reach if s.label_dict["device"] == "agg-chengguan"}
    assert agg == {"up": 0.0, "degraded": 1.0, "down": 0.0, "unreachable": 0.0}
    assert {"site", "role", "vendor"} <= set(reach[0].label_dict)
    grp = {
        (s.metric, s.label_dict.get("state")): s.value
        for s in samples
        if s.label_dict.get("group") == "agg-chengguan-uplinks"
    }
    assert grp[("govnet_redundancy_members_up", None)] == 1.0
    assert grp[("govnet_redundancy_members_expected", None)] == 2.0
    assert grp[("govnet_redundancy_state", "degraded")] == 1.0
    assert grp[("govnet_redundancy_state", "ok")] == 0.0


def test_tracker_reports_each_transition_exactly_once(topo: Topology) -> None:
    tr = StateTracker()
    steps = [
        [],
        [oper("agg-chengguan", "GigabitEthernet0/0/47", 0)],
        [oper("agg-chengguan", "GigabitEthernet0/0/47", 0)],  # unchanged: nothing new
        [
            oper("agg-chengguan", "GigabitEthernet0/0/47", 0),
            oper("agg-chengguan", "GigabitEthernet0/0/48", 0),
        ],
        [],
        [],
    ]
    for i, samples in enumerate(steps):
        tr.update(evaluate(topo, samples), float(i))
    agg = [(t.old, t.new) for t in tr.transitions if t.subject == "agg-chengguan"]
    assert agg == [("up", "degraded"), ("degraded", "unreachable"), ("unreachable", "up")]
    grp = [(t.old, t.new) for t in tr.transitions if t.subject == "links:agg-chengguan-uplinks"]
    assert grp == [("ok", "degraded"), ("degraded", "down"), ("down", "ok")]


def test_service_recomputes_from_the_latest_store(district: Inventory) -> None:
    store = LatestStore()
    probes = {"agg-chengguan": True}
    svc = ReachabilityService(district, store, lambda: probes, interval=1.0)
    svc.recompute()
    assert svc.report is not None and svc.report.devices["agg-chengguan"] == "up"
    store.publish("agg-chengguan", [up("agg-chengguan"), oper("agg-chengguan", "GigabitEthernet0/0/47", 0)])
    report = svc.recompute()  # mypy keeps the narrowing above: read the new report from the call
    assert report.devices["agg-chengguan"] == "degraded"
    trans = [s for s in svc.internal_samples() if s.metric == "govnet_reachability_transitions_total"]
    assert [(s.label_dict["device"], s.value) for s in trans] == [("agg-chengguan", 1.0)]
