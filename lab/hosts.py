"""Synthetic hosts behind the lab's access switches: their FDB rows, their gateways' ARP rows, and the
`host_move` and `arp_spoof` faults.

Each access switch has a few hosts on its host-facing ports (ports on no inventory link). The switch
learns them in its forwarding table (Q-BRIDGE on Huawei, H3C and Ruijie; per-VLAN BRIDGE-MIB on Cisco,
reached with `community@VLAN` or the SNMPv3 context `vlan-VLAN`) and learns its gateway's MAC on its
uplink; the aggregation switch above it (the hosts' gateway) has them in its ARP table
(ipNetToPhysicalTable on Cisco, ipNetToMediaTable elsewhere) and learns their MACs on its downlink.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inventory.model import Inventory
from lab.snmp import ber
from lab.snmp.ber import Oid
from lab.snmp.view import MibView, Value
from lab.state import LabDevice, LabInterface

KINDS = ("host_move", "arp_spoof")
HOSTS_PER_SWITCH = 6
# Real OUIs of PC and phone makers, so the vendor lookup has something to say.
OUIS = (0x54EE75, 0x3C52A1, 0x98FA9B, 0x001B21, 0xE4B97A, 0x00E0FC)

QFDB_PORT = (1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1, 2)
QFDB_STATUS = (1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1, 3)
DFDB_PORT = (1, 3, 6, 1, 2, 1, 17, 4, 3, 1, 2)
DFDB_STATUS = (1, 3, 6, 1, 2, 1, 17, 4, 3, 1, 3)
BASE_IFINDEX = (1, 3, 6, 1, 2, 1, 17, 1, 4, 1, 2)
VTP_STATE = (1, 3, 6, 1, 4, 1, 9, 9, 46, 1, 3, 1, 1, 2, 1)
IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
ARP_PHYS = (1, 3, 6, 1, 2, 1, 4, 35, 1, 4)
ARP_PHYS_TYPE = (1, 3, 6, 1, 2, 1, 4, 35, 1, 6)
ARP_MEDIA = (1, 3, 6, 1, 2, 1, 4, 22, 1, 2)
ARP_MEDIA_TYPE = (1, 3, 6, 1, 2, 1, 4, 22, 1, 4)
LEARNED, SELF, DYNAMIC = ber.enc_int(3), ber.enc_int(4), ber.enc_int(3)


class HostFaultError(ValueError):
    """A host fault names an unknown device or host, or there is nowhere to move to."""


@dataclass
class Host:
    """One synthetic host: where it is plugged in and which gateway answers for it."""

    ip: str
    mac: bytes
    vlan: int
    switch: str
    port: str


@dataclass
class _Switch:
    device: LabDevice
    uplink: LabInterface | None
    gateway: str | None  # the aggregation switch above it
    vlan: int
    free: list[LabInterface] = field(default_factory=list)  # host-facing ports without a host


def _mac(*parts: str) -> bytes:
    h = zlib.crc32("/".join(parts).encode())
    oui = OUIS[h % len(OUIS)]
    return oui.to_bytes(3, "big") + zlib.crc32(("mac/" + "/".join(parts)).encode()).to_bytes(4, "big")[1:]


def _gateway_mac(name: str) -> bytes:
    return bytes((0x00, 0xE0, 0xFC)) + zlib.crc32(f"{name}/gateway".encode()).to_bytes(4, "big")[1:]


class LabHosts:
    """The hosts of the whole lab, their tables per device, and the faults that move or fake them."""

    def __init__(self, inv: Inventory, devices: list[LabDevice], per_switch: int = HOSTS_PER_SWITCH) -> None:
        self.devices = {d.name: d for d in devices}
        self.switches: dict[str, _Switch] = {}
        self.hosts: list[Host] = []
        self.spoofs: dict[
            str, tuple[str, bytes, str, str]
        ] = {}  # victim ip -> (switch, attacker mac, sw, port)
        self.moves: dict[str, tuple[str, str]] = {}  # host ip -> (original switch, port)
        self.listeners: list[Callable[[set[str]], None]] = []
        linked = {(e.device, e.interface) for link in inv.links for e in (link.a, link.b)}
        up: dict[str, tuple[str, str]] = {}
        for link in inv.links:
            if link.kind == "uplink":
                up.setdefault(link.a.device, (link.a.interface, link.b.device))
        n = 0
        for d in devices:
            if d.role != "access_switch" or d.snmprec:
                continue
            iface, gw = up.get(d.name, (None, None))
            uplink = next((i for i in d.interfaces if i.name == iface), None)
            if gw is not None and (gw not in self.devices or self.devices[gw].snmprec):
                gw = None
            n += 1
            sw = _Switch(d, uplink, gw, 100 + n % 50)
            sw.free = [i for i in d.interfaces if not i.management and (d.name, i.name) not in linked]
            self.switches[d.name] = sw
            net = ipaddress.IPv4Network(f"10.{64 + n // 250}.{n % 250}.0/24")
            for k in range(min(per_switch, len(sw.free))):
                port = sw.free.pop(0)
                self.hosts.append(Host(str(net[10 + k]), _mac(d.name, str(k)), sw.vlan, d.name, port.name))

    # ---- tables -----------------------------------------------------------------------------

    def _ports(self, d: LabDevice) -> dict[str, int]:
        """Interface name -> dot1dBasePort (1.. in interface order, management excluded)."""
        return {i.name: k for k, i in enumerate((i for i in d.interfaces if not i.management), 1)}

    def _learned(self, name: str) -> list[tuple[bytes, int, str]]:
        """(mac, vlan, port) entries in `name`'s forwarding table."""
        out: list[tuple[bytes, int, str]] = []
        sw = self.switches.get(name)
        for h in self.hosts:
            if h.switch == name:
                out.append((h.mac, h.vlan, h.port))
            elif sw is None:
                hsw = self.switches[h.switch]
                if hsw.gateway == name and hsw.uplink is not None:
                    # The aggregation switch learns its access switches' hosts on the downlink.
                    down = next(
                        (i for i in self.devices[name].interfaces if i.peer == (h.switch, hsw.uplink.name)),
                        None,
                    )
                    if down is not None:
                        out.append((h.mac, h.vlan, down.name))
        for victim, (sname, mac, _sw, port) in self.spoofs.items():
            if sname == name:
                vlan = next((h.vlan for h in self.hosts if h.ip == victim), 1)
                out.append((mac, vlan, port))
        if sw is not None and sw.gateway is not None and sw.uplink is not None:
            out.append((_gateway_mac(sw.gateway), sw.vlan, sw.uplink.name))
        return out

    def _arp(self, name: str) -> list[tuple[str, bytes, int]]:
        """(ip, mac, vlan) entries in `name`'s ARP table (it is the gateway of these hosts)."""
        out = []
        for h in self.hosts:
            if self.switches[h.switch].gateway == name:
                spoof = self.spoofs.get(h.ip)
                out.append((h.ip, spoof[1] if spoof else h.mac, h.vlan))
        return out

    def rows(self, name: str) -> list[tuple[Oid, Value]]:
        """The rows `name` adds to its main view (default community / context)."""
        d = self.devices[name]
        ports = self._ports(d)
        rows: list[tuple[Oid, Value]] = []
        learned = self._learned(name)
        arp = self._arp(name)
        if not learned and not arp:
            return rows
        rows += [((*BASE_IFINDEX, bp), ber.enc_int(self._ifindex(d, iname))) for iname, bp in ports.items()]
        if d.vendor == "cisco":
            vlans = sorted({v for _, v, _ in learned} | {1})
            rows += [((*VTP_STATE, v), ber.enc_int(1)) for v in vlans]
        else:
            for mac, vlan, port in learned:
                idx = (vlan, *mac)
                rows += [((*QFDB_PORT, *idx), ber.enc_int(ports[port])), ((*QFDB_STATUS, *idx), LEARNED)]
        if arp:
            vlanif = {v: self._vlanif(d, v) for _, _, v in arp}
            for v, x in vlanif.items():  # the gateway's VLAN interfaces, named like the vendor names them
                name = (
                    f"Vlan{v}"
                    if d.vendor == "cisco"
                    else f"Vlan-interface{v}"
                    if d.vendor == "h3c"
                    else f"Vlanif{v}"
                )
                rows += [((*IF_DESCR, x), ber.octets(name)), ((*IF_NAME, x), ber.octets(name))]
            for ip, mac, vlan in arp:
                a = tuple(int(x) for x in ip.split("."))
                if d.vendor == "cisco":
                    idx = (vlanif[vlan], 1, 4, *a)
                    rows += [((*ARP_PHYS, *idx), ber.octets(mac)), ((*ARP_PHYS_TYPE, *idx), DYNAMIC)]
                else:
                    idx = (vlanif[vlan], *a)
                    rows += [((*ARP_MEDIA, *idx), ber.octets(mac)), ((*ARP_MEDIA_TYPE, *idx), DYNAMIC)]
        return rows

    def vlan_rows(self, name: str) -> dict[int, list[tuple[Oid, Value]]]:
        """Cisco: each VLAN's bridge instance (served under community@VLAN and context vlan-VLAN)."""
        d = self.devices[name]
        if d.vendor != "cisco":
            return {}
        ports = self._ports(d)
        out: dict[int, list[tuple[Oid, Value]]] = {}
        for mac, vlan, port in self._learned(name):
            rows = out.setdefault(vlan, [])
            rows += [((*DFDB_PORT, *mac), ber.enc_int(ports[port])), ((*DFDB_STATUS, *mac), LEARNED)]
            rows.append(((*BASE_IFINDEX, ports[port]), ber.enc_int(self._ifindex(d, port))))
        return out

    @staticmethod
    def _ifindex(d: LabDevice, name: str) -> int:
        return d.interface(name).index

    @staticmethod
    def _vlanif(d: LabDevice, vlan: int) -> int:
        # The VLAN interface's ifIndex: one past the physical ones, stable per VLAN.
        return 1000 + vlan

    def affected(self) -> set[str]:
        """Every device whose tables come from here."""
        names = set(self.switches) | {s.gateway for s in self.switches.values() if s.gateway}
        return names

    # ---- faults -----------------------------------------------------------------------------

    def _host(self, switch: str, ref: str | None) -> Host:
        mine = [h for h in self.hosts if h.switch == switch]
        if not mine:
            raise HostFaultError(f"{switch} has no lab hosts")
        if ref is None:
            return mine[0]
        for h in self.hosts:
            if ref in (h.ip, h.mac.hex(":")):
                return h
        raise HostFaultError(f"no lab host {ref!r}")

    def apply(self, device: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Inject `kind` at access switch `device`; returns what changed (and the devices to refresh)."""
        if device not in self.switches:
            raise HostFaultError(f"{device} is not a lab access switch with hosts")
        if kind == "host_move":
            h = self._host(device, params.get("host"))
            to = (
                params.get("to")
                or next(
                    (
                        n
                        for n, s in self.switches.items()
                        if n != h.switch and s.free and s.vlan == self.switches[h.switch].vlan
                    ),
                    None,
                )
                or next((n for n, s in self.switches.items() if n != h.switch and s.free), None)
            )
            if to not in self.switches or not self.switches[to].free:
                raise HostFaultError(f"no free host port on {to!r}")
            old_sw = self.switches[h.switch]
            self.moves.setdefault(h.ip, (h.switch, h.port))
            new_sw = self.switches[to]
            port = new_sw.free.pop(0)
            old_sw.free.insert(0, old_sw.device.interface(h.port))
            before = (h.switch, h.port)
            h.switch, h.port, h.vlan = to, port.name, new_sw.vlan
            return {"host": h.ip, "mac": h.mac.hex(":"), "from": list(before), "to": [to, port.name]}
        if kind == "arp_spoof":
            sw = self.switches[device]
            victim = self._host(device, params.get("host"))
            if not sw.free:
                raise HostFaultError(f"{device} has no free port for the attacker")
            port = sw.free[0]
            attacker = _mac(device, "attacker", victim.ip)
            self.spoofs[victim.ip] = (device, attacker, device, port.name)
            return {"host": victim.ip, "victim_mac": victim.mac.hex(":"), "attacker_mac": attacker.hex(":"),
                    "attacker_port": port.name}  # fmt: skip
        raise HostFaultError(f"unknown host fault {kind!r}")

    def clear(self, device: str, kind: str | None) -> list[str]:
        """Undo host faults started at `device` (one kind or both)."""
        cleared = []
        if kind in (None, "arp_spoof"):
            for ip in [ip for ip, s in self.spoofs.items() if s[0] == device]:
                del self.spoofs[ip]
                cleared.append("arp_spoof")
        if kind in (None, "host_move"):
            for ip, (sw_name, port) in list(self.moves.items()):
                h = next(h for h in self.hosts if h.ip == ip)
                if device not in (sw_name, h.switch):
                    continue
                cur = self.switches[h.switch]
                cur.free.insert(0, cur.device.interface(h.port))
                orig = self.switches[sw_name]
                orig.free = [i for i in orig.free if i.name != port]
                h.switch, h.port, h.vlan = sw_name, port, orig.vlan
                del self.moves[ip]
                cleared.append("host_move")
        return sorted(set(cleared))

    def status(self) -> list[dict[str, Any]]:
        """Every host and where it is (for `lab status --json` and tests)."""
        return [
            {"ip": h.ip, "mac": h.mac.hex(":"), "vlan": h.vlan, "switch": h.switch, "port": h.port,
             "gateway": self.switches[h.switch].gateway}
            for h in self.hosts
        ]  # fmt: skip


def with_hosts(base: MibView, rows: list[tuple[Oid, Value]]) -> MibView:
    """`base` plus host rows (a new view; the agent swaps it in whole)."""
    if not rows:
        return base
    return MibView([*zip(base.oids, base.values, strict=True), *rows])


def install(hosts: LabHosts, agent: Any, base: MibView, community: bytes) -> None:
    """Point `agent` (a DeviceAgent) at its views with hosts: main view, community@VLAN and vlan-VLAN."""
    name = agent.name
    view = with_hosts(base, hosts.rows(name))
    agent.views = {community: view}
    agent.v3_view = view
    contexts: dict[bytes, MibView] = {}
    for vlan, rows in hosts.vlan_rows(name).items():
        vv = MibView(rows)
        agent.views[community + b"@" + str(vlan).encode()] = vv
        contexts[f"vlan-{vlan}".encode()] = vv
    agent.v3_contexts = contexts
