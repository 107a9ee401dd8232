"""Device status from the latest samples and the topology: up, degraded, unreachable, down, unknown."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from core.samples import Sample
from inventory.model import Inventory
from inventory.topology import Topology

STATES = ("up", "degraded", "unreachable", "down", "unknown")


@dataclass
class DeviceStatus:
    """What the console shows about one device."""

    name: str
    site: str
    role: str
    vendor: str
    model: str
    address: str
    status: str = "unknown"
    last_poll: float | None = None
    ha_group: str | None = None
    ha_role: str | None = None
    ha_expected: str | None = None
    info: dict[str, str] = field(default_factory=dict)  # govnet_device_info labels: untrusted device text
    uplinks: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return dict(self.__dict__)


@dataclass
class NetworkView:
    """Status of every device and every link at one moment."""

    devices: dict[str, DeviceStatus]
    links_down: frozenset[str]


def network_view(inventory: Inventory, topology: Topology, samples: list[Sample]) -> NetworkView:
    """Combine the inventory, the topology and the latest samples into per-device status."""
    by_dev: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        dev = s.label_dict.get("device")
        if dev:
            by_dev[dev].append(s)
    failed, links_down = set(), set()
    reported: dict[str, str] = {}
    out: dict[str, DeviceStatus] = {}
    for d in inventory.devices:
        st = DeviceStatus(d.name, d.site, d.role.value, d.vendor.value, d.model, d.address)
        st.ha_group = topology.ha_group_of(d.name)
        for g in inventory.ha_groups:
            for m in g.members:
                if m.device == d.name:
                    st.ha_expected = m.expected_role
        for s in by_dev.get(d.name, []):
            labels = s.label_dict
            if s.metric == "govnet_up":
                st.last_poll = s.timestamp
                if s.value == 0:
                    failed.add(d.name)
            elif s.metric == "govnet_if_oper_up" and s.value == 0:
                link = topology.link_at(d.name, labels.get("ifname", ""))
                if link is not None:
                    links_down.add(link.id)
            elif s.metric == "govnet_ha_role" and s.value == 1:
                st.ha_role = labels.get("state")
            elif s.metric == "govnet_reachability_state" and s.value == 1:
                reported[d.name] = labels.get("state", "")
            elif s.metric == "govnet_device_info":
                st.info = {k: v for k, v in labels.items() if k not in ("device", "site", "role", "vendor")}
        out[d.name] = st
    assessment = topology.assess(failed, links_down)
    for name, st in out.items():
        st.uplinks = [
            {"to": link.b, "interface": link.a_interface, "state": "down" if link.id in links_down else "up"}
            for link in topology.uplinks_of.get(name, ())
        ]
        if st.last_poll is None and name not in reported:
            continue  # never polled: unknown
        verdict: str = assessment.status.get(name, "up")
        if verdict == "up" and name in assessment.degraded:
            verdict = "degraded"
        # A state the scheduler publishes itself wins when it is one we know.
        st.status = reported[name] if reported.get(name) in STATES else verdict
    return NetworkView(out, frozenset(links_down))
