"""ARP (IP-MIB) and forwarding (BRIDGE-MIB, Q-BRIDGE-MIB) tables: the OIDs and their parsing into rows.

The parsers take walked columns as `{row index: value}` (what `Fetcher.walk` gives once the column
prefix is cut) and never guess: a row whose index or value does not decode is left out and counted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from collectors.snmp.evaluate import Value

Column = Mapping[str, Value]

# IP-MIB
IP_NET_TO_PHYSICAL_PHYS = "1.3.6.1.2.1.4.35.1.4"  # ipNetToPhysicalPhysAddress (ifIndex.type[.len].addr)
IP_NET_TO_PHYSICAL_TYPE = "1.3.6.1.2.1.4.35.1.6"  # ipNetToPhysicalType
IP_NET_TO_MEDIA_PHYS = "1.3.6.1.2.1.4.22.1.2"  # ipNetToMediaPhysAddress (ifIndex.a.b.c.d)
IP_NET_TO_MEDIA_TYPE = "1.3.6.1.2.1.4.22.1.4"  # ipNetToMediaType
# BRIDGE-MIB / Q-BRIDGE-MIB
DOT1D_BASE_PORT_IFINDEX = "1.3.6.1.2.1.17.1.4.1.2"  # dot1dBasePortIfIndex (basePort -> ifIndex)
DOT1D_TP_FDB_PORT = "1.3.6.1.2.1.17.4.3.1.2"  # dot1dTpFdbPort (mac -> basePort)
DOT1D_TP_FDB_STATUS = "1.3.6.1.2.1.17.4.3.1.3"  # dot1dTpFdbStatus
DOT1Q_TP_FDB_PORT = "1.3.6.1.2.1.17.7.1.2.2.1.2"  # dot1qTpFdbPort (fdbId.mac -> basePort)
DOT1Q_TP_FDB_STATUS = "1.3.6.1.2.1.17.7.1.2.2.1.3"  # dot1qTpFdbStatus
DOT1Q_VLAN_FDB_ID = "1.3.6.1.2.1.17.7.1.4.2.1.3"  # dot1qVlanFdbId (timeMark.vlan -> fdbId)
# Interface names
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
# LLDP-MIB: ports with a neighbour are not host-facing
LLDP_REM_CHASSIS_SUBTYPE = "1.0.8802.1.1.2.1.4.1.1.4"  # lldpRemChassisIdSubtype (timeMark.localPort.remIndex)
LLDP_LOC_PORT_ID = "1.0.8802.1.1.2.1.3.7.1.3"  # lldpLocPortId (localPort -> often the ifName)
LLDP_LOC_PORT_DESC = "1.0.8802.1.1.2.1.3.7.1.4"  # lldpLocPortDesc (localPort -> often the ifDescr)
# CISCO-VTP-MIB vtpVlanState (domain.vlan -> 1 operational): the VLANs whose bridge tables to read
VTP_VLAN_STATE = "1.3.6.1.4.1.9.9.46.1.3.1.1.2"

ARP_STATUS = {1: "other", 2: "invalid", 3: "dynamic", 4: "static", 5: "local"}
FDB_STATUS = {1: "other", 2: "invalid", 3: "learned", 4: "self", 5: "mgmt"}

_MAC_TEXT = re.compile(r"^[0-9a-fA-F]{1,2}([:\-])(?:[0-9a-fA-F]{1,2}\1){4}[0-9a-fA-F]{1,2}$")
_MAC_DOTTED = re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$")
_MAC_BARE = re.compile(r"^[0-9a-fA-F]{12}$")
_MAC_HUAWEI = re.compile(r"^[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}$")


def mac_text(mac: int) -> str:
    """`aa:bb:cc:dd:ee:ff` for a 48-bit MAC held as an int."""
    h = f"{mac:012x}"
    return ":".join(h[i : i + 2] for i in range(0, 12, 2))


def parse_mac(text: str) -> int | None:
    """A MAC typed by a person or printed by a device (`0:1b:c:fb:28:18`, `001b.0cfb.2818`,
    `001b-0cfb-2818`, `00-1B-0C-FB-28-18`, `001b0cfb2818`) as an int; None if it is not one."""
    s = text.strip()
    if _MAC_TEXT.match(s):
        return int("".join(f"{int(p, 16):02x}" for p in re.split(r"[:\-]", s)), 16)
    if _MAC_DOTTED.match(s) or _MAC_HUAWEI.match(s) or _MAC_BARE.match(s):
        return int(s.replace(".", "").replace("-", ""), 16)
    return None


def mac_value(v: Value) -> int | None:
    """A PhysAddress value as a MAC int: 6 raw octets, or (some agents) the MAC as text."""
    if isinstance(v, bytes):
        if len(v) == 6:
            return int.from_bytes(v, "big")
        try:
            return parse_mac(v.decode("ascii"))
        except UnicodeDecodeError:
            return None
    if isinstance(v, str):
        return parse_mac(v)
    return None


def _ints(index: str) -> list[int] | None:
    try:
        parts = [int(p) for p in index.split(".")]
    except ValueError:
        return None
    return parts if all(p >= 0 for p in parts) else None


def _mac_of_index(parts: list[int]) -> int | None:
    if len(parts) != 6 or any(p > 255 for p in parts):
        return None
    return int.from_bytes(bytes(parts), "big")


@dataclass(frozen=True, slots=True)
class ArpRow:
    """One neighbour entry: the address, its MAC, the interface it was learned on, its type."""

    ip: str
    mac: int
    if_index: int
    status: str | None = None


@dataclass(frozen=True, slots=True)
class FdbRow:
    """One forwarding entry: a MAC learned on a bridge port (mapped to an ifIndex when the agent says)."""

    mac: int
    vlan: int | None
    bridge_port: int
    if_index: int | None
    status: str | None = None
    fdb_id: int | None = None


@dataclass(slots=True)
class Parsed:
    """Rows of one device, and how many index/value pairs did not decode."""

    arp: list[ArpRow] = field(default_factory=list)
    fdb: list[FdbRow] = field(default_factory=list)
    skipped: int = 0


def _phys_index_ip(parts: list[int]) -> tuple[int, str] | None:
    """ifIndex and address of an ipNetToPhysicalTable index; the address length prefix is optional
    (RFC 4293 says length-prefixed; Cisco ASA omits it)."""
    if len(parts) < 3:
        return None
    if_index, kind, rest = parts[0], parts[1], parts[2:]
    size = {1: 4, 2: 16}.get(kind)  # ipv4, ipv6 (the z-types with a zone index are skipped)
    if size is None:
        return None
    if len(rest) == size + 1 and rest[0] == size:
        rest = rest[1:]
    if len(rest) != size or any(p > 255 for p in rest):
        return None
    return if_index, str(ipaddress.ip_address(bytes(rest)))


def parse_arp(phys: Column, phys_type: Column, media: Column, media_type: Column) -> Parsed:
    """ARP rows from ipNetToPhysicalTable, or ipNetToMediaTable when the former is empty."""
    out = Parsed()
    if phys:
        for index, value in phys.items():
            parts = _ints(index)
            got = _phys_index_ip(parts) if parts is not None else None
            mac = mac_value(value)
            if got is None or mac is None:
                out.skipped += 1
                continue
            t = phys_type.get(index)
            out.arp.append(ArpRow(got[1], mac, got[0], ARP_STATUS.get(t) if isinstance(t, int) else None))
        return out
    for index, value in media.items():
        parts = _ints(index)
        mac = mac_value(value)
        if parts is None or len(parts) != 5 or any(p > 255 for p in parts[1:]) or mac is None:
            out.skipped += 1
            continue
        t = media_type.get(index)
        ip = str(ipaddress.IPv4Address(bytes(parts[1:])))
        out.arp.append(ArpRow(ip, mac, parts[0], ARP_STATUS.get(t) if isinstance(t, int) else None))
    return out


def base_port_map(column: Column) -> dict[int, int]:
    """dot1dBasePort -> ifIndex."""
    out = {}
    for index, value in column.items():
        if index.isdigit() and isinstance(value, int):
            out[int(index)] = value
    return out


def vlan_of_fdb_id(column: Column) -> dict[int, int]:
    """fdbId -> VLAN from dot1qVlanFdbId, keeping only fdbIds that belong to one VLAN (IVL)."""
    seen: dict[int, set[int]] = {}
    for index, value in column.items():
        parts = _ints(index)
        if parts is None or len(parts) != 2 or not isinstance(value, int):
            continue
        seen.setdefault(value, set()).add(parts[1])
    return {fdb: next(iter(vlans)) for fdb, vlans in seen.items() if len(vlans) == 1}


def parse_qbridge(
    port: Column, status: Column, base_ports: dict[int, int], fdb_vlan: dict[int, int]
) -> Parsed:
    """dot1qTpFdbTable rows; the VLAN is dot1qVlanFdbId's, else the fdbId itself (IVL bridges number
    their filtering databases by VLAN) when the agent has no dot1qVlanFdbId at all."""
    out = Parsed()
    for index, value in port.items():
        parts = _ints(index)
        mac = _mac_of_index(parts[1:]) if parts is not None and len(parts) == 7 else None
        if parts is None or mac is None or not isinstance(value, int):
            out.skipped += 1
            continue
        fdb_id = parts[0]
        vlan = fdb_vlan.get(fdb_id) if fdb_vlan else (fdb_id if 1 <= fdb_id <= 4094 else None)
        st = status.get(index)
        out.fdb.append(
            FdbRow(
                mac,
                vlan,
                value,
                base_ports.get(value),
                FDB_STATUS.get(st) if isinstance(st, int) else None,
                fdb_id,
            )
        )
    return out


def parse_dot1d(port: Column, status: Column, base_ports: dict[int, int], vlan: int | None) -> Parsed:
    """dot1dTpFdbTable rows (one bridge instance: the VLAN is known only from the context read)."""
    out = Parsed()
    for index, value in port.items():
        parts = _ints(index)
        mac = _mac_of_index(parts) if parts is not None else None
        if mac is None or not isinstance(value, int):
            out.skipped += 1
            continue
        st = status.get(index)
        out.fdb.append(
            FdbRow(
                mac, vlan, value, base_ports.get(value), FDB_STATUS.get(st) if isinstance(st, int) else None
            )
        )
    return out


def operational_vlans(column: Column) -> list[int]:
    """VLANs in vtpVlanState that are operational(1), without the FDDI/Token Ring defaults 1002-1005."""
    out = set()
    for index, value in column.items():
        parts = _ints(index)
        if parts and len(parts) == 2 and value == 1 and not 1002 <= parts[1] <= 1005:
            out.add(parts[1])
    return sorted(out)


def _text(v: Value) -> str | None:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v if isinstance(v, str) else None


def lldp_if_indexes(
    rem: Column, loc_id: Column, loc_desc: Column, if_name: Column, if_descr: Column
) -> set[int]:
    """ifIndexes of the ports with an LLDP neighbour; a local port is matched to an interface by name
    (lldpLocPortId or lldpLocPortDesc equal to its ifName or ifDescr), never guessed from its number."""
    by_name: dict[str, int] = {}
    for col in (if_descr, if_name):
        for index, value in col.items():
            text = _text(value)
            if index.isdigit() and text:
                by_name.setdefault(text, int(index))
    out = set()
    for index in rem:
        parts = _ints(index)
        if parts is None or len(parts) != 3:
            continue
        local = str(parts[1])
        for col in (loc_id, loc_desc):
            text = _text(col.get(local))
            if text and text in by_name:
                out.add(by_name[text])
                break
    return out


def interface_names(if_name: Column, if_descr: Column) -> dict[int, str]:
    """ifIndex -> ifName, else ifDescr."""
    out: dict[int, str] = {}
    for col in (if_descr, if_name):  # ifName wins
        for index, value in col.items():
            if index.isdigit() and isinstance(value, bytes | str):
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                if text:
                    out[int(index)] = text
    return out
