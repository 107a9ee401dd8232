"""Read one device's ARP and forwarding tables over SNMP (gufo-snmp; pysnmp only for v3 contexts).

Cisco IOS keeps one bridge instance per VLAN: its BRIDGE-MIB answers for VLAN N under the community
`community@N` (v2c) or the SNMPv3 context `vlan-N`. gufo-snmp 0.13 cannot send a context name, so
those per-VLAN walks go through pysnmp, whose CPU cost is paid only for Cisco access switches on v3.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from gufo.snmp import SnmpError, SnmpVersion
from gufo.snmp.aio.client import SnmpSession

from collectors.snmp.engine import DeadlineExceeded, Fetcher, WeakCryptoRefused, make_session
from collectors.snmp.evaluate import Value
from collectors.where import tables as t
from core.secrets import SecretError
from inventory.model import Device, SnmpV2c, SnmpV3

Columns = dict[str, dict[str, Value]]


@dataclass(slots=True)
class DeviceTables:
    """What one sweep read from one device."""

    device: str
    ok: bool = False
    error: str | None = None
    arp: list[t.ArpRow] = field(default_factory=list)
    fdb: list[t.FdbRow] = field(default_factory=list)
    if_names: dict[int, str] = field(default_factory=dict)
    lldp_ports: set[str] = field(default_factory=set)  # ports with an LLDP neighbour (not host-facing)
    varbinds: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


async def _walk_all(fetch: Fetcher, roots: list[str], problems: list[str]) -> Columns:
    out: Columns = {}
    for root in roots:
        try:
            got = await fetch.walk(root)
        except TimeoutError:
            problems.append(f"{root}: gave up after timeouts")
            got = {}
        cut = len(root) + 1
        out[root] = {oid[cut:]: v for oid, v in got.items()}
    return out


def _v2c_vlan_session(
    address: str, creds: SnmpV2c, vlan: int, timeout_s: float, max_repetitions: int
) -> SnmpSession:
    return SnmpSession(
        addr=address,
        port=creds.port,
        community=f"{creds.community.resolve()}@{vlan}",
        version=SnmpVersion.v2c,
        timeout=timeout_s,
        max_repetitions=max_repetitions,
    )


async def _v3_context_walk(
    engine: Any,
    address: str,
    creds: SnmpV3,
    context: str,
    roots: list[str],
    timeout_s: float,
    retries: int,
    reps: int,
) -> Columns:
    """Walk `roots` in an SNMPv3 context with pysnmp (gufo-snmp sends no context name).

    `engine` is one pysnmp SnmpEngine kept for the poller's life: creating one loads (and the first
    time compiles) its MIB modules, which costs far more than the walk.
    """
    from pysnmp.hlapi.v3arch.asyncio import (
        ContextData,
        ObjectIdentity,
        ObjectType,
        UdpTransportTarget,
        UsmUserData,
        bulk_walk_cmd,
        usmAesCfb128Protocol,
        usmAesCfb192Protocol,
        usmAesCfb256Protocol,
        usmDESPrivProtocol,
        usmHMAC128SHA224AuthProtocol,
        usmHMAC192SHA256AuthProtocol,
        usmHMAC256SHA384AuthProtocol,
        usmHMAC384SHA512AuthProtocol,
        usmHMACMD5AuthProtocol,
        usmHMACSHAAuthProtocol,
    )

    auth = {
        "md5": usmHMACMD5AuthProtocol, "sha": usmHMACSHAAuthProtocol, "sha224": usmHMAC128SHA224AuthProtocol,
        "sha256": usmHMAC192SHA256AuthProtocol, "sha384": usmHMAC256SHA384AuthProtocol,
        "sha512": usmHMAC384SHA512AuthProtocol,
    }  # fmt: skip
    priv = {
        "des": usmDESPrivProtocol, "aes": usmAesCfb128Protocol, "aes128": usmAesCfb128Protocol,
        "aes192": usmAesCfb192Protocol, "aes256": usmAesCfb256Protocol,
    }  # fmt: skip
    assert creds.auth_key is not None and creds.priv_key is not None and creds.priv_protocol is not None
    user = UsmUserData(
        creds.user,
        authKey=creds.auth_key.resolve(),
        privKey=creds.priv_key.resolve(),
        authProtocol=auth[creds.auth_protocol],
        privProtocol=priv[creds.priv_protocol],
    )
    target = await UdpTransportTarget.create((address, creds.port), timeout=timeout_s, retries=retries)
    out: Columns = {}
    for root in roots:
        col: dict[str, Value] = {}
        cut = len(root) + 1
        async for err_ind, err_status, _idx, vbs in bulk_walk_cmd(
            engine,
            user,
            target,
            ContextData(contextName=context.encode()),
            0,
            reps,
            ObjectType(ObjectIdentity(root)),
            lexicographicMode=False,
            lookupMib=False,
        ):
            if err_ind:
                raise TimeoutError(str(err_ind))
            if err_status:
                raise SnmpError(str(err_status.prettyPrint()))
            for oid, val in vbs:
                o = str(oid)
                if not o.startswith(root + "."):
                    continue
                col[o[cut:]] = _pysnmp_value(val)
        out[root] = col
    return out


def _pysnmp_value(val: Any) -> Value:
    """pysnmp values as gufo returns them (int, bytes)."""
    tag = val.__class__.__name__
    if tag in ("Integer", "Integer32", "Unsigned32", "Gauge32", "Counter32", "Counter64", "TimeTicks"):
        return int(val)
    if tag == "OctetString":
        return bytes(val.asOctets())
    return str(val.prettyPrint())


FDB_ROOTS = [t.DOT1D_BASE_PORT_IFINDEX, t.DOT1D_TP_FDB_PORT, t.DOT1D_TP_FDB_STATUS]


class TablesPoller:
    """Reads ARP and FDB tables device by device; sessions are made per sweep (a sweep is minutes apart)."""

    def __init__(self, *, timeout_s: float = 2.0, retries: int = 1, max_repetitions: int = 25) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_repetitions = max_repetitions
        self._pysnmp_engine: Any = None
        self._pysnmp_loop: asyncio.AbstractEventLoop | None = None

    def _engine(self) -> Any:
        # pysnmp binds its transport to the running loop: a new loop (tests, tools) needs a new engine.
        loop = asyncio.get_running_loop()
        if self._pysnmp_engine is None or self._pysnmp_loop is not loop:
            from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

            self.close()
            self._pysnmp_engine, self._pysnmp_loop = SnmpEngine(), loop
        return self._pysnmp_engine

    def close(self) -> None:
        """Close pysnmp's dispatcher (if a v3 context walk ever opened one)."""
        if self._pysnmp_engine is not None:
            with contextlib.suppress(Exception):  # its loop may be closed already
                self._pysnmp_engine.close_dispatcher()
            self._pysnmp_engine = None

    async def read(
        self,
        device: Device,
        creds: SnmpV2c | SnmpV3 | None,
        *,
        arp: bool,
        fdb: bool,
        budget_s: float,
    ) -> DeviceTables:
        """One device's tables within `budget_s`; never raises for device faults."""
        out = DeviceTables(device.name)
        if creds is None:
            out.error = "no SNMP credentials"
            return out
        try:
            session = make_session(device.address, creds, self.timeout_s, self.max_repetitions)
        except (SecretError, WeakCryptoRefused, ValueError) as exc:
            out.error = f"credentials: {exc}"
            return out
        deadline = time.monotonic() + budget_s
        fetch = Fetcher(
            session,
            deadline=deadline,
            timeout_s=self.timeout_s,
            retries=self.retries,
            max_repetitions=self.max_repetitions,
        )
        try:
            if isinstance(creds, SnmpV3):
                await fetch.refresh()
            roots = [t.IF_NAME, t.IF_DESCR]
            if arp:
                roots += [t.IP_NET_TO_PHYSICAL_PHYS, t.IP_NET_TO_PHYSICAL_TYPE]
            if fdb:
                roots += [
                    t.DOT1D_BASE_PORT_IFINDEX,
                    t.DOT1Q_TP_FDB_PORT,
                    t.DOT1Q_TP_FDB_STATUS,
                    t.DOT1Q_VLAN_FDB_ID,
                ]
                roots += [t.DOT1D_TP_FDB_PORT, t.DOT1D_TP_FDB_STATUS]
                roots += [t.LLDP_REM_CHASSIS_SUBTYPE, t.LLDP_LOC_PORT_ID, t.LLDP_LOC_PORT_DESC]
                if device.vendor.value == "cisco":
                    roots.append(t.VTP_VLAN_STATE)
            cols = await _walk_all(fetch, roots, out.problems)
            if arp and not cols[t.IP_NET_TO_PHYSICAL_PHYS]:
                cols.update(
                    await _walk_all(fetch, [t.IP_NET_TO_MEDIA_PHYS, t.IP_NET_TO_MEDIA_TYPE], out.problems)
                )
            out.if_names = t.interface_names(cols[t.IF_NAME], cols[t.IF_DESCR])
            if fdb and cols[t.LLDP_REM_CHASSIS_SUBTYPE]:
                lldp = t.lldp_if_indexes(
                    cols[t.LLDP_REM_CHASSIS_SUBTYPE], cols[t.LLDP_LOC_PORT_ID], cols[t.LLDP_LOC_PORT_DESC],
                    cols[t.IF_NAME], cols[t.IF_DESCR],
                )  # fmt: skip
                out.lldp_ports = {out.if_names[i] for i in lldp if i in out.if_names}
            if arp:
                got = t.parse_arp(
                    cols[t.IP_NET_TO_PHYSICAL_PHYS],
                    cols[t.IP_NET_TO_PHYSICAL_TYPE],
                    cols.get(t.IP_NET_TO_MEDIA_PHYS, {}),
                    cols.get(t.IP_NET_TO_MEDIA_TYPE, {}),
                )
                out.arp, out.skipped = got.arp, out.skipped + got.skipped
            if fdb:
                await self._fdb(device, creds, cols, fetch, out, deadline)
            out.ok = True
        except DeadlineExceeded:
            out.error = f"deadline of {budget_s:g}s exceeded"
        except TimeoutError:
            out.error = "timeout"
        except SnmpError as exc:
            out.error = f"snmp error: {type(exc).__name__}: {exc}"[:300]
        except OSError as exc:
            out.error = f"network error: {exc.strerror or exc}"
        except BaseException as exc:
            if type(exc).__name__ != "PanicException":  # gufo's decoder panics on garbage
                raise
            out.error = "malformed response from agent (decoder panic)"
        out.varbinds += fetch.stats.varbinds
        out.problems += fetch.stats.problems
        return out

    async def _fdb(
        self,
        device: Device,
        creds: SnmpV2c | SnmpV3,
        cols: dict[str, dict[str, Value]],
        fetch: Fetcher,
        out: DeviceTables,
        deadline: float,
    ) -> None:
        base = t.base_port_map(cols[t.DOT1D_BASE_PORT_IFINDEX])
        if cols[t.DOT1Q_TP_FDB_PORT]:
            got = t.parse_qbridge(
                cols[t.DOT1Q_TP_FDB_PORT],
                cols[t.DOT1Q_TP_FDB_STATUS],
                base,
                t.vlan_of_fdb_id(cols[t.DOT1Q_VLAN_FDB_ID]),
            )
            out.fdb += got.fdb
            out.skipped += got.skipped
            return
        vlans = t.operational_vlans(cols.get(t.VTP_VLAN_STATE, {}))
        # Without per-VLAN instances the default bridge table belongs to no known VLAN; on Cisco the
        # default community/context is VLAN 1's instance.
        default_vlan = 1 if vlans else None
        got = t.parse_dot1d(cols[t.DOT1D_TP_FDB_PORT], cols[t.DOT1D_TP_FDB_STATUS], base, default_vlan)
        out.fdb += got.fdb
        out.skipped += got.skipped
        for vlan in vlans:
            if vlan == 1:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded
            try:
                if isinstance(creds, SnmpV2c):
                    sess = _v2c_vlan_session(
                        device.address, creds, vlan, self.timeout_s, self.max_repetitions
                    )
                    vf = Fetcher(
                        sess, deadline=deadline, timeout_s=self.timeout_s, retries=self.retries,
                        max_repetitions=self.max_repetitions,
                    )  # fmt: skip
                    first = await vf.walk(FDB_ROOTS[0])  # a timeout here: no community indexing at all
                    vcols = {FDB_ROOTS[0]: {o[len(FDB_ROOTS[0]) + 1 :]: v for o, v in first.items()}}
                    vcols.update(await _walk_all(vf, FDB_ROOTS[1:], out.problems))
                    out.varbinds += vf.stats.varbinds
                else:
                    vcols = await asyncio.wait_for(
                        _v3_context_walk(
                            self._engine(),
                            device.address, creds, f"vlan-{vlan}", FDB_ROOTS, self.timeout_s, self.retries,
                            self.max_repetitions,
                        ),
                        timeout=left,
                    )  # fmt: skip
                    out.varbinds += sum(len(c) for c in vcols.values())
            except TimeoutError:
                # The agent does not index its bridge tables by VLAN (or is gone): the other VLANs
                # would cost a timeout each for nothing.
                out.problems.append(f"VLAN {vlan} bridge table: no answer; per-VLAN tables skipped")
                break
            except (SnmpError, OSError) as exc:
                out.problems.append(f"VLAN {vlan} bridge table: {type(exc).__name__}")
                continue
            vbase = t.base_port_map(vcols[t.DOT1D_BASE_PORT_IFINDEX]) or base
            got = t.parse_dot1d(vcols[t.DOT1D_TP_FDB_PORT], vcols[t.DOT1D_TP_FDB_STATUS], vbase, vlan)
            out.fdb += got.fdb
            out.skipped += got.skipped


def report(tables: DeviceTables) -> dict[str, Any]:
    """The rows of one device as govnet reports them (`govnet where-tables`, tests): names, not indexes."""
    names = tables.if_names
    arp = [
        {"ip": r.ip, "mac": t.mac_text(r.mac), "interface": names.get(r.if_index), "if_index": r.if_index,
         "type": r.status}
        for r in tables.arp
    ]  # fmt: skip
    fdb = [
        {"mac": t.mac_text(r.mac), "vlan": r.vlan, "bridge_port": r.bridge_port, "if_index": r.if_index,
         "interface": names.get(r.if_index) if r.if_index is not None else None, "status": r.status}
        for r in tables.fdb
    ]  # fmt: skip
    return {"arp": arp, "fdb": fdb, "lldp_ports": sorted(tables.lldp_ports)}
