"""Cross-entry checks: unique names and addresses, references, links, HA groups, backup jobs."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inventory.model import BackupJob, Defaults, Device, HaGroup, Link, Site
from inventory.problems import Problem, safe_text
from inventory.services import ServiceEntry
from inventory.source import Collected, Item

ACTIVE_ROLES = frozenset({"active", "primary"})


def semantic_problems(c: Collected) -> list[Problem]:
    """Every cross-entry problem of a collected inventory (entries that failed schema are skipped)."""
    sites: list[Item[Site]] = c.sections["sites"]
    devices: list[Item[Device]] = c.sections["devices"]
    links: list[Item[Link]] = c.sections["links"]
    groups: list[Item[HaGroup]] = c.sections["ha_groups"]
    jobs: list[Item[BackupJob]] = c.sections["backup_jobs"]
    device_names = c.raw_names["devices"]
    by_name = {item.model.name: item.model for item in devices}
    defaults = c.defaults.model if c.defaults else Defaults()
    out: list[Problem] = []
    for items, what in ((sites, "site"), (devices, "device"), (groups, "HA group"), (jobs, "backup job")):
        out += _unique_names(items, what)
    out += _site_parents(sites, c.raw_names["sites"])
    for d in devices:
        out += _reference(d, ("site",), d.model.site, c.raw_names["sites"], "site")
    out += _addresses(devices, defaults)
    out += _links(links, by_name, device_names)
    out += _uplink_loops(links, device_names)
    out += _redundancy_groups(links)
    out += _ha_groups(groups, device_names)
    for j in jobs:
        out += _reference(j, ("host",), j.model.host, device_names, "device")
    out += _services(c.sections["services"], c.raw_names["sites"])
    return out


def _services(services: list[Item[ServiceEntry]], sites: set[str]) -> list[Problem]:
    out: list[Problem] = []
    first: dict[str, Item[ServiceEntry]] = {}
    for item in services:
        check = item.model.root
        if check.name in first:
            out.append(
                item.problem(
                    ("name",),
                    f"duplicate service name; first defined at {first[check.name].where()}",
                    check.name,
                )
            )
        else:
            first[check.name] = item
        out += _reference(item, ("owner", "site"), check.owner.site, sites, "site")
        ca = getattr(getattr(check, "tls", None), "ca_file", None)
        if ca is not None:
            base = Path(item.doc.file).parent
            path = Path(ca) if Path(ca).is_absolute() else base / ca
            if not path.is_file():
                out.append(item.problem(("tls", "ca_file"), "no such CA file (relative to this file)", ca))
    return out


def _reference(
    item: Item[Any], keys: tuple[str | int, ...], name: str, known: Iterable[str], what: str
) -> list[Problem]:
    if name in known:
        return []
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; declare it under {what}s first"
    return [item.problem(keys, f"no {what} of that name{hint}", safe_text(name, 80))]


def _unique_names(items: list[Item[Any]], what: str) -> list[Problem]:
    first: dict[str, Item[Any]] = {}
    out = []
    for item in items:
        name = item.model.name
        if name in first:
            out.append(
                item.problem(
                    ("name",), f"duplicate {what} name; first defined at {first[name].where()}", name
                )
            )
        else:
            first[name] = item
    return out


def _site_parents(sites: list[Item[Site]], known: set[str]) -> list[Problem]:
    out = []
    parent_of = {s.model.name: s.model.parent for s in sites}
    reported: set[str] = set()
    for s in sites:
        parent = s.model.parent
        if parent is None:
            continue
        if parent == s.model.name:
            out.append(s.problem(("parent",), "a site cannot be its own parent", parent))
            continue
        if parent not in known:
            out += _reference(s, ("parent",), parent, known, "site")
            continue
        # Walk up; a walk that comes back to this site is a loop (reported once per loop).
        chain: list[str] = [s.model.name]
        node: str | None = parent
        while node is not None and node not in chain and node in parent_of:
            chain.append(node)
            node = parent_of[node]
        if node == s.model.name and not reported & set(chain):
            reported |= set(chain)
            loop = " -> ".join([*chain, node])
            out.append(s.problem(("parent",), f"site parents form a loop: {loop}", parent))
    return out


def _endpoint(device: Device, defaults: Defaults) -> tuple[str, str, int]:
    """What identifies a device on the management network: its address and polled port."""
    snmp = device.snmp or defaults.snmp
    if snmp is not None:
        return device.address, "SNMP port", snmp.port
    ssh = device.ssh or defaults.ssh
    if ssh is not None:
        return device.address, "SSH port", ssh.port
    return device.address, "", 0


def _addresses(devices: list[Item[Device]], defaults: Defaults) -> list[Problem]:
    first: dict[tuple[str, str, int], Item[Device]] = {}
    out = []
    for d in devices:
        key = _endpoint(d.model, defaults)
        if key in first:
            other = first[key]
            port = f" {key[1]} {key[2]}" if key[1] else ""
            out.append(
                d.problem(
                    ("address",),
                    f"management address{port} already used by device '{other.model.name}' "
                    f"({other.where()}); each device needs its own address (or port)",
                    key[0],
                )
            )
        else:
            first[key] = d
    return out


def _links(links: list[Item[Link]], by_name: dict[str, Device], known: set[str]) -> list[Problem]:
    out = []
    used: dict[tuple[str, str], Item[Link]] = {}
    for link in links:
        ends = (("a", link.model.a), ("b", link.model.b))
        if link.model.a.device == link.model.b.device:
            out.append(
                link.problem(
                    ("b", "device"),
                    "both ends of a link are the same device; a link joins two different devices",
                    link.model.b.device,
                )
            )
        for side, end in ends:
            if end.device not in known:
                out += _reference(link, (side, "device"), end.device, known, "device")
                continue
            device = by_name.get(end.device)
            if device is not None and device.interfaces and end.interface not in device.interfaces:
                close = difflib.get_close_matches(end.interface, device.interfaces, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                out.append(
                    link.problem(
                        (side, "interface"),
                        f"device '{end.device}' declares no such interface{hint}",
                        safe_text(end.interface, 80),
                    )
                )
            key = (end.device, end.interface)
            if key in used:
                out.append(
                    link.problem(
                        (side, "interface"),
                        f"interface already used by the link at {used[key].where()}; "
                        "an interface is one end of one link",
                        safe_text(end.interface, 80),
                    )
                )
            else:
                used[key] = link
    return out


def _uplink_loops(links: list[Item[Link]], known: set[str]) -> list[Problem]:
    up: dict[str, list[Item[Link]]] = defaultdict(list)
    for link in links:
        m = link.model
        if m.kind == "uplink" and m.a.device != m.b.device and {m.a.device, m.b.device} <= known:
            up[m.a.device].append(link)
    out = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(device: str, path: list[tuple[str, Item[Link]]]) -> None:
        state[device] = 1
        for link in up.get(device, []):
            upper = link.model.b.device
            if state.get(upper) == 1:
                names = [d for d, _ in path] + [device]
                loop = " -> ".join([*names[names.index(upper) :], upper])
                out.append(
                    link.problem(
                        ("b", "device"),
                        f"uplinks form a loop: {loop}; `b` of an uplink is upstream of `a` "
                        "(use kind: peer between equals)",
                        upper,
                    )
                )
            elif upper not in state:
                visit(upper, [*path, (device, link)])
        state[device] = 2

    for device in sorted(up):
        if device not in state:
            visit(device, [])
    return out


def _redundancy_groups(links: list[Item[Link]]) -> list[Problem]:
    members: dict[str, list[Item[Link]]] = defaultdict(list)
    for link in links:
        if link.model.redundancy_group is not None:
            members[link.model.redundancy_group].append(link)
    out = []
    for name, group in members.items():
        if len(group) < 2:
            out.append(
                group[0].problem(
                    ("redundancy_group",),
                    "redundancy group has only this link; a redundancy group needs at least two links",
                    safe_text(name, 80),
                )
            )
        kinds = {link.model.kind for link in group}
        if len(kinds) > 1:
            out.append(
                group[-1].problem(
                    ("redundancy_group",),
                    "redundancy group mixes uplink and peer links; its links must be of one kind",
                    safe_text(name, 80),
                )
            )
    return out


def _ha_groups(groups: list[Item[HaGroup]], known: set[str]) -> list[Problem]:
    out = []
    for group in groups:
        members = group.model.members
        if len(members) < 2:
            out.append(
                group.problem(
                    ("members",),
                    f"an HA group needs at least two members, found {len(members)}",
                )
            )
        seen: set[str] = set()
        active: list[str] = []
        for i, member in enumerate(members):
            if member.device not in known:
                out += _reference(group, ("members", i, "device"), member.device, known, "device")
            if member.device in seen:
                out.append(
                    group.problem(
                        ("members", i, "device"),
                        "device listed twice in this HA group",
                        safe_text(member.device, 80),
                    )
                )
            seen.add(member.device)
            if member.expected_role in ACTIVE_ROLES:
                if active:
                    out.append(
                        group.problem(
                            ("members", i, "expected_role"),
                            f"'{member.device}' and '{active[0]}' are both expected active/primary; "
                            "exactly one member should be active or primary, the others standby/secondary",
                            member.expected_role,
                        )
                    )
                active.append(member.device)
        if members and not active:
            out.append(
                group.problem(("members",), "no member is expected active or primary; exactly one should be")
            )
    return out
