"""Topology: upstream/downstream, redundancy groups, HA partners, reachability and degradation."""

from __future__ import annotations

import random

import pytest

from inventory.load import load_inventory
from inventory.topology import TopoLink, Topology
from tests.support.paths import ROOT

# core-1 ==peer== core-2; agg-a dual-homed to both cores; agg-b single-homed to core-1;
# acc-a1/acc-a2 below agg-a, acc-b1 below agg-b; x has an uplink to agg-b and a peer link to
# core-2 (a peer link is not a path); srv has no links (a root of its own).
INVENTORY = """
sites: [{name: ncc}]
devices:
  - {name: core-1, site: ncc, role: core_switch, vendor: huawei, address: 10.0.0.1}
  - {name: core-2, site: ncc, role: core_switch, vendor: huawei, address: 10.0.0.2}
  - {name: agg-a, site: ncc, role: aggregation_switch, vendor: h3c, address: 10.0.1.1}
  - {name: agg-b, site: ncc, role: aggregation_switch, vendor: cisco, address: 10.0.2.1}
  - {name: acc-a1, site: ncc, role: access_switch, vendor: ruijie, address: 10.0.1.11}
  - {name: acc-a2, site: ncc, role: access_switch, vendor: ruijie, address: 10.0.1.12}
  - {name: acc-b1, site: ncc, role: access_switch, vendor: huawei, address: 10.0.2.11}
  - {name: x, site: ncc, role: server, vendor: linux, address: 10.0.2.99}
  - {name: srv, site: ncc, role: server, vendor: linux, address: 10.0.0.100}
  - {name: fw-1, site: ncc, role: firewall, vendor: hillstone, address: 10.0.0.11}
  - {name: fw-2, site: ncc, role: firewall, vendor: hillstone, address: 10.0.0.12}
ha_groups:
  - name: fw
    kind: firewall
    members: [{device: fw-1, expected_role: active}, {device: fw-2, expected_role: standby}]
links:
  - {a: {device: core-1, interface: x1}, b: {device: core-2, interface: x1}, kind: peer}
  - {a: {device: agg-a, interface: g47}, b: {device: core-1, interface: g1}, redundancy_group: agg-a-up}
  - {a: {device: agg-a, interface: g48}, b: {device: core-2, interface: g1}, redundancy_group: agg-a-up}
  - {a: {device: agg-b, interface: g48}, b: {device: core-1, interface: g2}}
  - {a: {device: acc-a1, interface: g25}, b: {device: agg-a, interface: g1}}
  - {a: {device: acc-a2, interface: g25}, b: {device: agg-a, interface: g2}}
  - {a: {device: acc-b1, interface: g25}, b: {device: agg-b, interface: g1}}
  - {a: {device: x, interface: eth0}, b: {device: agg-b, interface: g2}}
  - {a: {device: x, interface: eth1}, b: {device: core-2, interface: g9}, kind: peer}
  - {a: {device: fw-1, interface: e1}, b: {device: core-1, interface: g3}}
  - {a: {device: fw-2, interface: e1}, b: {device: core-2, interface: g3}}
"""


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Topology:
    path = tmp_path_factory.mktemp("topo") / "inv.yaml"
    path.write_text(INVENTORY)
    return Topology.from_inventory(load_inventory(path))


def _link(topo: Topology, device: str, interface: str) -> str:
    link = topo.link_at(device, interface)
    assert link is not None
    return link.id


def test_upstream_downstream_peers_roots(topo: Topology) -> None:
    assert topo.upstream("agg-a") == ("core-1", "core-2")
    assert topo.parents("acc-a1") == ("agg-a",)
    assert topo.upstream("core-1") == ()
    assert topo.downstream("core-1") == ("agg-a", "agg-b", "fw-1")
    assert topo.downstream("agg-a") == ("acc-a1", "acc-a2")
    assert topo.peers("core-1") == ("core-2",)
    assert topo.peers("core-2") == ("core-1", "x")
    assert set(topo.roots()) == {"core-1", "core-2", "srv"}
    assert topo.ancestors("acc-a1") == {"agg-a", "core-1", "core-2"}
    assert topo.descendants("core-1") == {"agg-a", "agg-b", "acc-a1", "acc-a2", "acc-b1", "x", "fw-1"}
    assert topo.descendants("acc-a1") == frozenset()


def test_redundancy_groups_and_links(topo: Topology) -> None:
    assert set(topo.redundancy_groups) == {"agg-a-up"}
    group = topo.redundancy_groups["agg-a-up"]
    assert group.expected == 2
    assert {(link.a, link.b) for link in group.links} == {("agg-a", "core-1"), ("agg-a", "core-2")}
    link = topo.link_at("core-2", "g1")
    assert link is not None and link.a == "agg-a" and link.a_interface == "g48"
    assert link.id == "agg-a:g48--core-2:g1"
    assert topo.link_at("core-2", "nope") is None


def test_ha_partner(topo: Topology) -> None:
    assert topo.ha_partner("fw-1") == "fw-2"
    assert topo.ha_partners("fw-2") == ("fw-1",)
    assert topo.ha_group_of("fw-1") == "fw"
    assert topo.ha_partner("core-1") is None and topo.ha_group_of("core-1") is None


def test_all_up(topo: Topology) -> None:
    a = topo.assess()
    assert set(a.status.values()) == {"up"}
    assert a.degraded == frozenset()
    assert a.redundancy == {"agg-a-up": (2, 2)}


def test_one_uplink_down_is_degraded_not_unreachable(topo: Topology) -> None:
    a = topo.assess(links_down={_link(topo, "agg-a", "g47")})
    assert a.status["agg-a"] == "up"
    assert a.status["acc-a1"] == a.status["acc-a2"] == "up"
    assert a.degraded == {"agg-a"}
    assert a.redundancy["agg-a-up"] == (1, 2)
    assert topo.degraded(links_down={_link(topo, "agg-a", "g48")}) == {"agg-a"}


def test_both_uplinks_down_makes_everything_below_unreachable(topo: Topology) -> None:
    cut = {_link(topo, "agg-a", "g47"), _link(topo, "agg-a", "g48")}
    status = topo.reachability(links_down=cut)
    assert {d for d, s in status.items() if s == "unreachable"} == {"agg-a", "acc-a1", "acc-a2"}
    assert status["agg-b"] == status["acc-b1"] == "up"
    # Nothing unreachable is degraded: degraded is about redundancy lost on a device still reached.
    assert topo.degraded(links_down=cut) == frozenset()
    assert topo.assess(links_down=cut).redundancy["agg-a-up"] == (0, 2)


def test_core_down_cuts_only_what_has_no_other_path(topo: Topology) -> None:
    a = topo.assess(down={"core-1"})
    assert a.status["core-1"] == "down"
    assert a.status["agg-a"] == "up"  # still reached through core-2
    assert a.status["acc-a1"] == "up"
    assert {"agg-b", "acc-b1", "x", "fw-1"} == a.unreachable()  # single-homed on core-1
    assert a.status["fw-2"] == a.status["core-2"] == a.status["srv"] == "up"
    assert a.degraded == {"agg-a"}
    assert a.redundancy["agg-a-up"] == (1, 2)
    assert a.causes() == {"core-1"}


def test_observed_failures_below_a_dead_core_page_once(topo: Topology) -> None:
    # The poller sees core-1 and everything single-homed behind it fail: only core-1 is a cause.
    failed = {"core-1", "agg-b", "acc-b1", "x", "fw-1"}
    a = topo.assess(down=failed)
    assert a.causes() == {"core-1"}
    assert a.unreachable() == {"agg-b", "acc-b1", "x", "fw-1"}


def test_a_failed_device_with_a_working_path_is_down(topo: Topology) -> None:
    status = topo.reachability(down={"agg-b"})
    assert status["agg-b"] == "down"
    assert status["acc-b1"] == status["x"] == "unreachable"
    status = topo.reachability(down={"agg-b", "acc-b1"})
    assert (status["agg-b"], status["acc-b1"]) == ("down", "unreachable")
    status = topo.reachability(down={"acc-b1"})
    assert status["acc-b1"] == "down" and status["agg-b"] == "up"


def test_both_cores_down(topo: Topology) -> None:
    status = topo.reachability(down={"core-1", "core-2"})
    assert {d for d, s in status.items() if s == "down"} == {"core-1", "core-2"}
    assert status["srv"] == "up"
    unreachable = {d for d, s in status.items() if s == "unreachable"}
    assert unreachable == set(topo.devices) - {"core-1", "core-2", "srv"}


def test_peer_link_is_not_a_path(topo: Topology) -> None:
    # x has a peer link to core-2, but its only uplink goes through agg-b.
    assert topo.reachability(down={"agg-b"})["x"] == "unreachable"


def test_uplink_loop_without_root_is_unreachable() -> None:
    links = [TopoLink("a", "1", "b", "1", "uplink"), TopoLink("b", "2", "a", "2", "uplink")]
    topo = Topology(["a", "b", "c"], links, {})
    assert topo.reachability() == {"a": "unreachable", "b": "unreachable", "c": "up"}


def _oracle(topo: Topology, failed: set[str], cut: set[str]) -> dict[str, str]:
    """Reference semantics by explicit path search: a path is a chain of uplinks from a root whose
    links are up and whose intermediate devices did not fail."""
    status = {}
    for device in topo.devices:

        def path_from(node: str, seen: frozenset[str]) -> bool:
            ups = topo.uplinks_of[node]
            if not ups:
                return True
            return any(
                link.id not in cut
                and link.b not in seen
                and link.b not in failed
                and path_from(link.b, seen | {link.b})
                for link in ups
            )

        ok = path_from(device, frozenset({device}))
        status[device] = "unreachable" if not ok else "down" if device in failed else "up"
    return status


@pytest.mark.parametrize("seed", range(40))
def test_reachability_matches_path_search_on_random_networks(seed: int) -> None:
    rnd = random.Random(seed)
    names = [f"n{i}" for i in range(9)]
    links = []
    for i, name in enumerate(names[2:], start=2):  # n0, n1 are roots; others hang below earlier ones
        for upper in rnd.sample(names[:i], k=min(i, rnd.choice([1, 1, 2, 3]))):
            links.append(TopoLink(name, f"to-{upper}", upper, f"to-{name}", "uplink"))
    if rnd.random() < 0.5:
        links.append(TopoLink("n0", "p", "n1", "p", "peer"))
    topo = Topology(names, links, {})
    for _ in range(10):
        failed = set(rnd.sample(names, k=rnd.randint(0, 3)))
        cut = {link.id for link in rnd.sample(links, k=rnd.randint(0, min(3, len(links))))}
        assert topo.reachability(failed, cut) == _oracle(topo, failed, cut), (failed, cut)
        assessment = topo.assess(failed, cut)
        for device in topo.devices:
            lost = [
                link
                for link in topo.uplinks_of[device]
                if link.id in cut or assessment.status[link.b] != "up"
            ]
            expected = assessment.status[device] == "up" and bool(lost)
            assert (device in assessment.degraded) == expected


def test_example_district_core_outage() -> None:
    topo = Topology.from_inventory(load_inventory(ROOT / "examples" / "district.yaml"))
    a = topo.assess(down={"nc-core-1"})
    aggs = {d for d in topo.devices if d.startswith("agg-")}
    assert len(aggs) == 13
    assert aggs <= a.degraded  # every aggregation point lost one of its two uplinks
    assert a.status["acc-chengguan-sq01"] == "up"
    # Devices single-homed on core-1 (firewall 1, half the servers, db 1) are cut off, nothing else.
    assert a.unreachable() == {d for d in topo.devices if topo.upstream(d) == ("nc-core-1",)}
    cut = {link.id for link in topo.redundancy_groups["agg-chengguan-uplinks"].links}
    status = topo.reachability(links_down=cut)
    below = {d for d, s in status.items() if s == "unreachable"}
    assert below == {"agg-chengguan"} | {f"acc-chengguan-sq{j:02d}" for j in range(1, 11)}
