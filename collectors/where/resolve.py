"""From one sweep's tables to host locations: IP -> MAC (ARP) -> the edge port where the MAC is learned.

An edge port is a switch port that is neither an inventory link end (uplinks, peer links, trunks to
other managed devices) nor a port with an LLDP neighbour; among a MAC's edge sightings, access
switches come before aggregation switches, which come before cores (a MAC seen on an access port is
behind it; the same MAC on an aggregation switch's port is usually on its way there).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from collectors.where.poll import DeviceTables
from inventory.model import Inventory

_RANK = {"access_switch": 0, "aggregation_switch": 1, "core_switch": 2}
_IGNORED_FDB = {"self", "mgmt", "invalid"}


@dataclass(frozen=True, slots=True)
class Location:
    """Where a MAC was learned on a port that faces hosts."""

    device: str
    port: str
    vlan: int | None


@dataclass(frozen=True, slots=True)
class Host:
    """One resolved tuple of a sweep: what the history stores (ip '' when no ARP names the MAC)."""

    ip: str
    mac: int
    device: str
    port: str
    vlan: int | None


@dataclass(slots=True)
class Sweep:
    """The resolved picture of one sweep."""

    arp: dict[str, set[int]] = field(default_factory=dict)  # ip -> MACs (normally one)
    arp_source: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # ip -> (router, interface)
    edge: dict[int, list[Location]] = field(default_factory=dict)  # mac -> edge locations (best rank)
    port_macs: dict[tuple[str, str], set[int]] = field(default_factory=dict)  # edge port -> MACs
    hosts: set[Host] = field(default_factory=set)
    fdb_rows: int = 0
    arp_rows: int = 0


def uplink_ports(inventory: Inventory, lldp: Iterable[tuple[str, str]] = ()) -> set[tuple[str, str]]:
    """(device, interface) of every inventory link end, plus ports with an LLDP neighbour."""
    out = {(end.device, end.interface) for link in inventory.links for end in (link.a, link.b)}
    out.update(lldp)
    return out


def resolve(
    inventory: Inventory, tables: Iterable[DeviceTables], lldp: Iterable[tuple[str, str]] = ()
) -> Sweep:
    """Resolve one sweep (pure: the same tables give the same answer).

    `lldp` adds (device, port) pairs known to face another device; each table's LLDP ports count too.
    """
    roles = {d.name: d.role.value for d in inventory.devices}
    uplinks = uplink_ports(inventory, lldp)
    sweep = Sweep()
    candidates: dict[int, list[tuple[int, Location]]] = defaultdict(list)
    for tab in tables:
        if not tab.ok:
            continue
        names = tab.if_names
        for a in tab.arp:
            if a.status == "invalid":
                continue
            sweep.arp_rows += 1
            sweep.arp.setdefault(a.ip, set()).add(a.mac)
            sweep.arp_source.setdefault(a.ip, []).append((tab.device, names.get(a.if_index, str(a.if_index))))
        rank = _RANK.get(roles.get(tab.device, ""), 3)
        uplinks.update((tab.device, p) for p in tab.lldp_ports)
        for f in tab.fdb:
            sweep.fdb_rows += 1
            if f.status in _IGNORED_FDB or f.if_index is None:
                continue
            port = names.get(f.if_index)
            if port is None or (tab.device, port) in uplinks:
                continue
            candidates[f.mac].append((rank, Location(tab.device, port, f.vlan)))
    for mac, ranked in candidates.items():
        best = min(r for r, _ in ranked)
        chosen = sorted(
            {loc for r, loc in ranked if r == best}, key=lambda x: (x.device, x.port, x.vlan or 0)
        )
        sweep.edge[mac] = chosen
        for loc in chosen:
            sweep.port_macs.setdefault((loc.device, loc.port), set()).add(mac)
    ips_of: dict[int, list[str]] = defaultdict(list)
    for ip, macs in sweep.arp.items():
        for mac in macs:
            ips_of[mac].append(ip)
    for mac, where in sweep.edge.items():
        for loc in where:
            for ip in ips_of.get(mac) or [""]:
                sweep.hosts.add(Host(ip, mac, loc.device, loc.port, loc.vlan))
    for ip, macs in sweep.arp.items():
        for mac in macs:
            if mac not in sweep.edge:
                sweep.hosts.add(Host(ip, mac, "", "", None))
    return sweep
