"""Lab devices that send SNMPv2c traps when a fault changes them: linkDown/linkUp, VRRP new master, restarts.

Each trap leaves from the device's own address (the receiver maps the UDP source to the inventory
device), with the varbinds the standard MIBs define: sysUpTime.0 and snmpTrapOID.0 first (RFC 3416),
then for link traps ifIndex, ifAdminStatus and ifOperStatus of the interface (IF-MIB), for
vrrpTrapNewMaster the new master's vrrpOperMasterIpAddr (RFC 2787).
"""

from __future__ import annotations

import itertools
import socket
import time

from lab.snmp.ber import (
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    enc_int,
    enc_oid,
    ip_address,
    parse_oid,
    timeticks,
    tlv,
)
from lab.state import LabDevice

TRAP_V2 = 0xA7
SYS_UPTIME_0 = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID_0 = "1.3.6.1.6.3.1.1.4.1.0"
COLD_START = "1.3.6.1.6.3.1.1.5.1"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
VRRP_NEW_MASTER = "1.3.6.1.2.1.68.0.1"
IF_INDEX, IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
VRRP_MASTER_IP = "1.3.6.1.2.1.68.1.3.1.7"  # vrrpOperMasterIpAddr.ifIndex.vrid

_request_ids = itertools.count(1)


def _varbind(oid: str, value: bytes) -> bytes:
    return tlv(SEQUENCE, enc_oid(parse_oid(oid)) + value)


def encode_trap(community: bytes, uptime_s: float, trap_oid: str, varbinds: list[tuple[str, bytes]]) -> bytes:
    """An SNMPv2c SNMPv2-Trap-PDU message."""
    vbs = _varbind(SYS_UPTIME_0, timeticks(int(uptime_s * 100) & 0xFFFFFFFF))
    vbs += _varbind(SNMP_TRAP_OID_0, enc_oid(parse_oid(trap_oid)))
    vbs += b"".join(_varbind(o, v) for o, v in varbinds)
    pdu = tlv(
        TRAP_V2, enc_int(next(_request_ids) & 0x7FFFFFFF) + enc_int(0) + enc_int(0) + tlv(SEQUENCE, vbs)
    )
    return tlv(SEQUENCE, enc_int(1) + tlv(OCTET_STRING, community) + pdu)


class TrapSender:
    """Sends the traps a fault implies to one receiver, from each device's own address."""

    def __init__(self, host: str, port: int, community: bytes) -> None:
        self.host, self.port, self.community = host, port, community
        self.sent = 0
        self.failed = 0

    def _send(self, dev: LabDevice, trap_oid: str, varbinds: list[tuple[str, bytes]], now: float) -> None:
        if dev.dead:  # a dead device sends nothing
            return
        msg = encode_trap(self.community, max(0.0, now - dev.boot_time), trap_oid, varbinds)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((dev.address, 0))
                s.sendto(msg, (self.host, self.port))
            self.sent += 1
        except OSError:
            self.failed += 1

    def link(self, dev: LabDevice, interface: str, up: bool, now: float | None = None) -> None:
        """linkUp/linkDown for one interface of `dev`."""
        now = time.time() if now is None else now
        try:
            iface = dev.interface(interface)
        except KeyError:
            return
        n = iface.index
        self._send(
            dev,
            LINK_UP if up else LINK_DOWN,
            [
                (f"{IF_INDEX}.{n}", enc_int(n, INTEGER)),
                (f"{IF_ADMIN}.{n}", enc_int(1)),
                (f"{IF_OPER}.{n}", enc_int(1 if up else 2)),
            ],
            now,
        )

    def new_master(self, dev: LabDevice, now: float | None = None) -> None:
        """vrrpTrapNewMaster from the member that became active."""
        now = time.time() if now is None else now
        self._send(dev, VRRP_NEW_MASTER, [(f"{VRRP_MASTER_IP}.1.1", ip_address(dev.address))], now)

    def cold_start(self, dev: LabDevice, now: float | None = None) -> None:
        """coldStart after a reboot."""
        self._send(dev, COLD_START, [], time.time() if now is None else now)
