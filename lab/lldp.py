"""LLDP neighbours of synthetic lab devices, from the inventory's links, and the `miswire` fault.

Each device serves LLDP-MIB: lldpLocPortTable (port number = ifIndex, port id = interface name,
subtype interfaceName(5)) and one lldpRemTable row per linked interface naming the peer device
(lldpRemSysName), its chassis MAC and its port. `miswire` makes one uplink report another port of
its peer, as if the cable had been moved: exactly what link verification must catch.
"""

from __future__ import annotations

import zlib

from lab.snmp import ber
from lab.snmp.ber import Oid
from lab.snmp.view import Value
from lab.state import LabDevice, LabInterface

LOC_PORT = (1, 0, 8802, 1, 1, 2, 1, 3, 7, 1)  # lldpLocPortEntry
REM = (1, 0, 8802, 1, 1, 2, 1, 4, 1, 1)  # lldpRemEntry
LOC_CHASSIS = (1, 0, 8802, 1, 1, 2, 1, 3)
INTERFACE_NAME, MAC_ADDRESS = 5, 4  # LldpPortIdSubtype interfaceName(5); LldpChassisIdSubtype macAddress(4)


def chassis_mac(device: str) -> bytes:
    """The chassis MAC address a lab device advertises (Huawei OUI, then a hash of the name)."""
    return bytes((0x00, 0xE0, 0xFC)) + zlib.crc32(device.encode()).to_bytes(4, "big")[1:]


def _remote_port(arg: tuple[LabDevice, LabInterface], now: float) -> bytes:
    d, i = arg
    fault = d.faults.get("miswire")
    if fault and fault.get("interface") == i.name:
        return ber.octets(str(fault["port"]))
    assert i.peer is not None
    return ber.octets(i.peer[1])


def lldp_rows(d: LabDevice) -> list[tuple[Oid, Value]]:
    """LLDP-MIB rows of a synthetic device (its own ports and the neighbour on each linked one)."""
    rows: list[tuple[Oid, Value]] = [
        ((*LOC_CHASSIS, 1, 0), ber.enc_int(MAC_ADDRESS)),
        ((*LOC_CHASSIS, 2, 0), ber.octets(chassis_mac(d.name))),
        ((*LOC_CHASSIS, 3, 0), ber.octets(d.name)),
    ]
    for i in d.interfaces:
        rows += [
            ((*LOC_PORT, 2, i.index), ber.enc_int(INTERFACE_NAME)),
            ((*LOC_PORT, 3, i.index), ber.octets(i.name)),
            ((*LOC_PORT, 4, i.index), ber.octets(i.alias or i.name)),
        ]
    for i in d.interfaces:
        if i.peer is None:
            continue
        peer = i.peer[0]
        x = (0, i.index, 1)
        rows += [
            ((*REM, 4, *x), ber.enc_int(MAC_ADDRESS)),
            ((*REM, 5, *x), ber.octets(chassis_mac(peer))),
            ((*REM, 6, *x), ber.enc_int(INTERFACE_NAME)),
            ((*REM, 7, *x), (_remote_port, (d, i))),
            ((*REM, 8, *x), (_remote_port, (d, i))),  # the port description names the port too
            ((*REM, 9, *x), ber.octets(peer)),
        ]
    return rows


def apply_miswire(d: LabDevice, peer: LabDevice | None, interface: str | None) -> dict[str, object]:
    """Start `miswire`: the uplink (default: the first linked interface) now reports another peer port.

    The new port is one of the peer's interfaces that no link uses (a free port), so no other declared
    link changes: the fault shows up as exactly one miswired link.
    """
    linked = [i for i in d.interfaces if i.peer and not i.management]
    if interface is not None:
        linked = [i for i in linked if i.name == interface]
    if not linked:
        raise ValueError(f"{d.name} has no linked interface {interface or ''}".strip())
    iface = linked[0]
    assert iface.peer is not None
    free = [p.name for p in (peer.interfaces if peer else []) if p.peer is None and not p.management]
    port = free[0] if free else f"{iface.peer[1]}-spare"
    d.faults["miswire"] = {"interface": iface.name, "port": port}
    return {"interface": iface.name, "peer": iface.peer[0], "declared_port": iface.peer[1], "seen_port": port}
