"""Topology-aware inhibition: consequences of a failure are shown but not paged; the cause pages once."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.rules import Rule
from alerts.series import SeriesStore
from inventory.topology import Assessment, Topology


@dataclass(frozen=True)
class NetworkState:
    """Which devices failed their poll, which links are down, and the topology's verdict."""

    failed: frozenset[str]
    links_down: frozenset[str]
    assessment: Assessment | None

    def status(self, device: str) -> str:
        """up / down / unreachable (without a topology every failed device is simply down)."""
        if self.assessment is not None and device in self.assessment.status:
            return self.assessment.status[device]
        return "down" if device in self.failed else "up"


def network_state(store: SeriesStore, topo: Topology | None) -> NetworkState:
    """Failed devices (govnet_up == 0) and failed links (either end's govnet_if_oper_up == 0)."""
    failed = frozenset(
        dict(labels)["device"]
        for labels, hist in store.series("govnet_up", {})
        if hist and hist[-1][1] == 0 and "device" in dict(labels)
    )
    if topo is None:
        return NetworkState(failed, frozenset(), None)
    links_down = set()
    for labels, hist in store.series("govnet_if_oper_up", {}):
        lab = dict(labels)
        link = topo.link_at(lab.get("device", ""), lab.get("ifname", ""))
        if link is not None and hist and hist[-1][1] == 0:
            links_down.add(link.id)
    cut = frozenset(links_down)
    return NetworkState(failed, cut, topo.assess(failed, cut))


def _causes_above(device: str, net: NetworkState, topo: Topology) -> str:
    assert net.assessment is not None
    causes = sorted(topo.ancestors(device) & net.assessment.causes())
    return ",".join(causes) if causes else "上游链路"


def inhibitor(rule: Rule, labels: dict[str, str], net: NetworkState, topo: Topology | None) -> str | None:
    """The device (or `上游链路`) whose failure explains this alert; None if the alert is a cause."""
    device = labels.get("device", "")
    if topo is None or not device or rule.condition.topology == "down":
        return None
    status = net.status(device)
    if status == "unreachable":
        return _causes_above(device, net, topo)
    if status == "down":
        return device  # the device-down alert covers everything else measured on it
    if rule.condition.topology == "degraded":
        lost = [
            link
            for link in topo.uplinks_of.get(device, ())
            if link.id in net.links_down or net.status(link.b) != "up"
        ]
        # Redundancy lost only because an upstream device failed: that device's alert is the page.
        if lost and all(link.id not in net.links_down and net.status(link.b) != "up" for link in lost):
            return ",".join(sorted({link.b for link in lost}))
        return None
    ifname = labels.get("ifname")
    if ifname:
        link = topo.link_at(device, ifname)
        if link is not None:
            other = link.b if link.a == device else link.a
            if net.status(other) != "up":
                return other
    return None
