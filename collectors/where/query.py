"""Answer "where is this address": an IP or a MAC to its MAC(s), vendor, edge port(s), VLAN and history."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from collectors.where.history import History, Seen
from collectors.where.oui import vendor_of
from collectors.where.resolve import Sweep
from collectors.where.tables import mac_text, parse_mac
from inventory.model import Inventory

MAX_QUERY = 64


class QueryError(ValueError):
    """The query is neither an IP address nor a MAC address."""


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: kind is 'ip' or 'mac'."""

    kind: str
    ip: str = ""
    mac: int = 0


def parse_query(text: str) -> Query:
    """An IPv4/IPv6 address or a MAC in any common notation; QueryError (naming what is accepted) else."""
    s = text.strip()
    if not s or len(s) > MAX_QUERY:
        raise QueryError("give an IPv4/IPv6 address or a MAC address (e.g. 10.1.2.3 or 00:e0:fc:12:34:56)")
    try:
        return Query("ip", ip=str(ipaddress.ip_address(s)))
    except ValueError:
        pass
    mac = parse_mac(s)
    if mac is None:
        raise QueryError(
            "not an IPv4/IPv6 address or a MAC address; MACs are accepted as 00:e0:fc:12:34:56, "
            "00-E0-FC-12-34-56, 00e0.fc12.3456, 00e0-fc12-3456 or 00e0fc123456"
        )
    return Query("mac", mac=mac)


def _seen(s: Seen, inventory: Inventory | None) -> dict[str, Any]:
    site = ""
    if inventory is not None and s.device:
        try:
            site = inventory.device(s.device).site
        except KeyError:
            site = ""
    return {
        "ip": s.ip or None, "mac": mac_text(s.mac), "device": s.device or None, "site": site or None,
        "port": s.port or None, "vlan": s.vlan, "first_seen": s.first_seen, "last_seen": s.last_seen,
    }  # fmt: skip


def answer(
    q: Query,
    history: History,
    inventory: Inventory | None = None,
    sweep: Sweep | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    """The JSON answer: `location` (the newest edge sighting), `macs` with vendors, `history` newest first."""
    rows = history.by_ip(q.ip, limit) if q.kind == "ip" else history.by_mac(q.mac, limit)
    macs = sorted({r.mac for r in rows} | ({q.mac} if q.kind == "mac" else set()))
    if q.kind == "ip" and sweep is not None:
        macs = sorted(set(macs) | sweep.arp.get(q.ip, set()))
    edge = [r for r in rows if r.device]
    location = _seen(edge[0], inventory) if edge else None
    out: dict[str, Any] = {
        "query": q.ip if q.kind == "ip" else mac_text(q.mac),
        "kind": q.kind,
        "found": bool(rows),
        "location": location,
        "macs": [{"mac": mac_text(m), "vendor": vendor_of(m)} for m in macs],
        "history": [_seen(r, inventory) for r in rows],
    }
    if sweep is not None:
        if q.kind == "ip":
            out["arp"] = [{"device": d, "interface": i} for d, i in sweep.arp_source.get(q.ip, [])]
        else:
            out["ips"] = sorted(ip for ip, ms in sweep.arp.items() if q.mac in ms)
    return out
