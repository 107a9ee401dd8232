"""Build the lab's devices from an inventory and the MIB view each one serves."""

from __future__ import annotations

import ipaddress
import math
import random
import zlib
from collections.abc import Callable
from typing import Any

from inventory.model import Inventory
from lab import hardware, lldp, profiles
from lab.snmp import ber
from lab.snmp.ber import Oid, parse_oid
from lab.snmp.view import MibView, Value
from lab.state import LabDevice, LabInterface

SSH_VENDORS = {"huawei", "h3c", "cisco"}
SSH_ROLES = {"core_switch", "aggregation_switch", "access_switch", "firewall", "vpn_gateway"}
LLDP_VENDORS = {"huawei", "h3c", "ruijie", "cisco"}  # the vendors whose SNMP profiles read LLDP-MIB
SESSION_ROLES = {"firewall", "vpn_gateway", "ips", "isolation_gateway", "load_balancer"}


def _rng(*parts: str) -> random.Random:
    # crc32, not hash(): the same inventory gives the same lab in every process.
    return random.Random(zlib.crc32("/".join(parts).encode()))


def lab_addresses(base: str, count: int) -> list[str]:
    """`count` loopback addresses after `base`, skipping .0 and .255 host bytes."""
    start = int(ipaddress.IPv4Address(base))
    out: list[str] = []
    n = start + 1
    while len(out) < count:
        if n & 0xFF not in (0, 255):
            out.append(str(ipaddress.IPv4Address(n)))
        n += 1
    if out and not ipaddress.IPv4Address(out[-1]).is_loopback:
        raise ValueError(f"{count} devices do not fit in loopback after {base}")
    return out


def speed_of(name: str) -> int:
    """Interface speed in Mbit/s guessed from its name (vendor naming conventions)."""
    n = name.lower().replace("-", "")
    for prefix, mbps in (
        ("100ge", 100000), ("hundredgig", 100000), ("40ge", 40000), ("fortygig", 40000),
        ("25ge", 25000), ("twentyfivegig", 25000), ("xge", 10000), ("tengig", 10000),
        ("tengigabit", 10000), ("ten", 10000), ("xgigabit", 10000), ("lo", 10000),
    ):  # fmt: skip
        if n.startswith(prefix):
            return mbps
    return 1000


def build_devices(
    inv: Inventory, base: str, snmp_port: int, ssh_port: int | None, now: float
) -> list[LabDevice]:
    """One LabDevice per inventory device, with interfaces, links, HA roles and traffic rates."""
    addresses = lab_addresses(base, len(inv.devices))
    devices: list[LabDevice] = []
    by_name: dict[str, LabDevice] = {}
    for dev, addr in zip(inv.devices, addresses, strict=True):
        vendor, role = dev.vendor.value, dev.role.value
        model = profiles.model_for(vendor, role, dev.model)
        info = profiles.model_info(vendor, role, model)
        rng = _rng(dev.name)
        lab = LabDevice(
            name=dev.name,
            site=dev.site,
            role=role,
            vendor=vendor,
            model=model,
            address=addr,
            snmp_port=snmp_port,
            ssh_port=ssh_port if vendor in SSH_VENDORS and role in SSH_ROLES and ssh_port else None,
            boot_time=now - rng.uniform(3, 90) * 86400,
            cpu_base=rng.uniform(8, 35),
            mem_base=rng.uniform(25, 60),
            sessions_base=rng.randint(20000, 300000) if role in SESSION_ROLES else 0,
        )
        lab.snmprec = next((t.split(":", 1)[1] for t in dev.tags if t.startswith("snmprec:")), None)
        index = int(info["if_index_start"])
        mgmt = str(info["management_interface"])
        names = [mgmt] + [i for i in dev.interfaces if i != mgmt]
        for k, name in enumerate(names):
            lab.interfaces.append(
                LabInterface(
                    index=index + k,
                    name=name,
                    speed_mbps=speed_of(name),
                    management=k == 0,
                    since=lab.boot_time,
                )
            )
        devices.append(lab)
        by_name[lab.name] = lab
    for link in inv.links:
        ends = [(link.a.device, link.a.interface), (link.b.device, link.b.interface)]
        ifs: list[LabInterface] = []
        for dname, iname in ends:
            d = by_name.get(dname)
            if d is None:
                break
            try:
                ifs.append(d.interface(iname))
            except KeyError:
                idx = max(i.index for i in d.interfaces) + 1
                new = LabInterface(index=idx, name=iname, speed_mbps=speed_of(iname), since=d.boot_time)
                d.interfaces.append(new)
                ifs.append(new)
        if len(ifs) != 2:
            continue
        ifs[0].peer, ifs[1].peer = ends[1], ends[0]
        if link.speed_mbps:
            ifs[0].speed_mbps = ifs[1].speed_mbps = link.speed_mbps
    for d in devices:
        for i in d.interfaces:
            rng = _rng(d.name, i.name)
            share = 2e-5 if i.management else rng.uniform(0.05, 0.3) if i.peer else rng.uniform(0.002, 0.03)
            i.in_bps = i.speed_mbps * 1e6 * share
            i.out_bps = i.speed_mbps * 1e6 * share * rng.uniform(0.3, 1.2)
            i.alias = f"to {i.peer[0]} {i.peer[1]}" if i.peer else ("management" if i.management else "")
    for group in inv.ha_groups:
        for m in group.members:
            if m.device in by_name:
                by_name[m.device].ha_role = m.expected_role
                by_name[m.device].ha_group = group.name
    return devices


# ---- views -------------------------------------------------------------------------------------

_ACTIVE = {"active", "primary"}


def _cpu(d: LabDevice, now: float) -> float:
    if d.cpu_spike:
        return 95.0 + 2.0 * math.sin(now / 7.0)
    return max(1.0, d.cpu_base + 4.0 * math.sin(now / 97.0 + d.cpu_base))


def _mem(d: LabDevice, now: float) -> float:
    return d.mem_base + 2.0 * math.sin(now / 301.0 + d.mem_base)


def _encoder(kind: str) -> Callable[[Any], bytes]:
    def as_int(v: Any) -> int:
        return round(float(v))

    table: dict[str, Callable[[Any], bytes]] = {
        "int": lambda v: ber.enc_int(as_int(v)),
        "gauge": lambda v: ber.gauge32(as_int(v)),
        "counter32": lambda v: ber.counter32(as_int(v)),
        "counter64": lambda v: ber.counter64(as_int(v)),
        "ticks": lambda v: ber.timeticks(as_int(v)),
        "str": lambda v: ber.octets(str(v)),
        "hex": lambda v: ber.octets(bytes.fromhex(str(v))),
        "oid": lambda v: ber.enc_oid(parse_oid(str(v))),
        "ip": lambda v: ber.ip_address(str(v)),
    }
    return table[kind]


def _dynamic(d: LabDevice, spec: dict[str, Any]) -> Callable[[float], float | str]:
    kind = spec["dyn"]
    total = float(spec.get("total", 0))
    if kind == "cpu":
        return lambda now: _cpu(d, now)
    if kind == "mem":
        return lambda now: _mem(d, now)
    if kind == "temp":
        return lambda now: 36.0 + _cpu(d, now) / 8.0
    if kind == "sessions":
        return lambda now: d.sessions_base * (1.0 + 0.1 * math.sin(now / 60.0))
    if kind == "mem_used":
        return lambda now: total * _mem(d, now) / 100.0
    if kind in ("mem_free", "mem_free_kb"):
        return lambda now: total * (1.0 - _mem(d, now) / 100.0)
    if kind == "uptime":
        return lambda now: (now - d.boot_time) * 100.0
    if kind == "load1":
        return lambda now: f"{_cpu(d, now) / 25.0:.2f}"
    raise ValueError(f"unknown dynamic value {kind!r}")


def _object_value(d: LabDevice, obj: dict[str, Any], fmt: dict[str, str]) -> Value:
    enc = _encoder(str(obj.get("type", "int")))
    value = obj["value"]
    if isinstance(value, dict) and "dyn" in value:
        fn = _dynamic(d, value)
        return lambda now: enc(fn(now))
    if isinstance(value, dict) and "ha" in value:
        active, standby = enc(value["ha"]["active"]), enc(value["ha"]["standby"])
        return lambda now: active if (d.ha_role or "active") in _ACTIVE else standby
    if isinstance(value, str):
        value = value.format(**fmt)
    return enc(value)


_UP, _DOWN = ber.enc_int(1), ber.enc_int(2)
_IfArg = tuple[LabDevice, LabInterface]


def _counter(out: bool, div: int, c64: bool) -> Callable[[_IfArg, float], bytes]:
    tag = ber.COUNTER64 if c64 else ber.COUNTER32
    mask = 0xFFFFFFFFFFFFFFFF if c64 else 0xFFFFFFFF
    read = LabInterface.out_octets if out else LabInterface.in_octets
    enc = ber.enc_uint

    def value(arg: _IfArg, now: float) -> bytes:
        return enc((read(arg[1], now) // div) & mask, tag)

    return value


def _oper(arg: _IfArg, now: float) -> bytes:
    return _UP if arg[1].oper_up else _DOWN


def _admin(arg: _IfArg, now: float) -> bytes:
    return _UP if arg[1].admin_up else _DOWN


def _last_change(arg: _IfArg, now: float) -> bytes:
    return ber.timeticks(max(0, int((arg[1].since - arg[0].boot_time) * 100)))


# Shared column functions: a cell is (function, (device, interface)), far smaller than a closure.
_CTR = {(o, d, c): _counter(o, d, c) for o in (False, True) for d in (1, 800, 40000, 80000, 5 * 10**8, 10**9)
        for c in (False, True)}  # fmt: skip


def _iface_rows(d: LabDevice) -> list[tuple[Oid, Value]]:
    rows: list[tuple[Oid, Value]] = []
    IF, IFX = (1, 3, 6, 1, 2, 1, 2, 2, 1), (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)

    for i in d.interfaces:
        x = i.index
        arg = (d, i)
        loop = i.name == "lo" or i.name.lower().startswith(("loopback", "inloopback"))
        mac = bytes((0x00, 0xE0, 0xFC)) + zlib.crc32(f"{d.name}/{i.name}".encode()).to_bytes(4, "big")[1:]
        rows += [
            ((*IF, 1, x), ber.enc_int(x)),
            ((*IF, 2, x), ber.octets(i.name)),
            ((*IF, 3, x), ber.enc_int(24 if loop else 6)),
            ((*IF, 4, x), ber.enc_int(65536 if loop else 1500)),
            ((*IF, 5, x), ber.gauge32(i.speed_mbps * 1_000_000)),
            ((*IF, 6, x), ber.octets(b"" if loop else mac)),
            ((*IF, 7, x), (_admin, arg)),
            ((*IF, 8, x), (_oper, arg)),
            ((*IF, 9, x), (_last_change, arg)),
            ((*IF, 10, x), (_CTR[(False, 1, False)], arg)),
            ((*IF, 11, x), (_CTR[(False, 800, False)], arg)),
            ((*IF, 13, x), (_CTR[(False, 10**9, False)], arg)),
            ((*IF, 14, x), (_CTR[(False, 5 * 10**8, False)], arg)),
            ((*IF, 15, x), ber.counter32(0)),
            ((*IF, 16, x), (_CTR[(True, 1, False)], arg)),
            ((*IF, 17, x), (_CTR[(True, 800, False)], arg)),
            ((*IF, 19, x), (_CTR[(True, 10**9, False)], arg)),
            ((*IF, 20, x), (_CTR[(True, 5 * 10**8, False)], arg)),
            ((*IFX, 1, x), ber.octets(i.name)),
            ((*IFX, 2, x), (_CTR[(False, 80000, False)], arg)),
            ((*IFX, 3, x), (_CTR[(False, 40000, False)], arg)),
            ((*IFX, 4, x), (_CTR[(True, 80000, False)], arg)),
            ((*IFX, 5, x), (_CTR[(True, 40000, False)], arg)),
            ((*IFX, 6, x), (_CTR[(False, 1, True)], arg)),
            ((*IFX, 7, x), (_CTR[(False, 800, True)], arg)),
            ((*IFX, 8, x), (_CTR[(False, 80000, True)], arg)),
            ((*IFX, 9, x), (_CTR[(False, 40000, True)], arg)),
            ((*IFX, 10, x), (_CTR[(True, 1, True)], arg)),
            ((*IFX, 11, x), (_CTR[(True, 800, True)], arg)),
            ((*IFX, 12, x), (_CTR[(True, 80000, True)], arg)),
            ((*IFX, 13, x), (_CTR[(True, 40000, True)], arg)),
            ((*IFX, 14, x), ber.enc_int(2 if loop else 1)),
            ((*IFX, 15, x), ber.gauge32(i.speed_mbps)),
            ((*IFX, 16, x), ber.enc_int(2)),
            ((*IFX, 17, x), ber.enc_int(2 if loop else 1)),
            ((*IFX, 18, x), ber.octets(i.alias)),
            ((*IFX, 19, x), ber.timeticks(0)),
        ]
    return rows


def build_view(d: LabDevice) -> MibView:
    """The MIB view of a synthetic device, from its state and its vendor's data file."""
    info = profiles.model_info(d.vendor, d.role, d.model)
    fmt = {"model": d.model, "family": d.model.split("-")[0], "name": d.name, "site": d.site}
    descr = str(info.get("descr", "{model}")).format(**fmt)
    server = d.role in ("server", "db_server")
    SYS = (1, 3, 6, 1, 2, 1, 1)
    rows: list[tuple[Oid, Value]] = [
        ((*SYS, 1, 0), ber.octets(descr)),
        ((*SYS, 2, 0), ber.enc_oid(parse_oid(str(info["sys_object_id"])))),
        ((*SYS, 3, 0), lambda now: ber.timeticks(int((now - d.boot_time) * 100))),
        ((*SYS, 4, 0), ber.octets("noc@extranet.gov.cn")),
        ((*SYS, 5, 0), ber.octets(d.name)),
        ((*SYS, 6, 0), ber.octets(d.site)),
        ((*SYS, 7, 0), ber.enc_int(72 if server else 6)),
        ((1, 3, 6, 1, 2, 1, 2, 1, 0), ber.enc_int(len(d.interfaces))),
    ]
    rows += _iface_rows(d)
    ENT = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)
    ent = profiles.entity_rows(d.vendor)
    for k, row in enumerate(ent):
        x = int(row["index"])
        rows += [
            ((*ENT, 2, x), ber.octets(str(row.get("descr", "")).format(**fmt))),
            ((*ENT, 4, x), ber.enc_int(0 if k == 0 else int(ent[0]["index"]))),
            ((*ENT, 5, x), ber.enc_int(int(row.get("class", 1)))),
            ((*ENT, 7, x), ber.octets(str(row.get("name", "")).format(**fmt))),
            ((*ENT, 11, x), ber.octets(f"SN{zlib.crc32(f'{d.name}/{x}'.encode()):010d}" if k == 0 else "")),
            ((*ENT, 13, x), ber.octets(d.model if k == 0 else "")),
        ]
    rows += hardware.hardware_rows(d, int(ent[0]["index"]) if ent else 1)
    if d.vendor in LLDP_VENDORS:
        rows += lldp.lldp_rows(d)
    for obj in profiles.objects_for(d.vendor, d.role, d.model):
        rows.append((parse_oid(str(obj["oid"])), _object_value(d, obj, fmt)))
    return MibView(rows)
