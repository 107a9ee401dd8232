"""Link verification: the inventory's declared links checked against the LLDP/CDP neighbours devices report.

Each declared link is `confirmed` (an end sees the other device on the declared port), `wrong_port`
(an end sees the other device on another port, or its declared port sees another device: miswired),
`down` (an end's interface is oper down), `missing` (the ends speak LLDP/CDP but neither sees the
other) or `unknown` (neither end reports any neighbour: LLDP off or not polled - absent, not wrong).
Neighbours on ports no declared link names are listed as undeclared; `govnet links discover` prints
those between inventory devices as a YAML fragment to paste. Pure functions; the service re-checks
from the latest samples every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.base import device_labels
from core.config import Duration, Section
from core.latest import LatestStore
from core.samples import Sample
from inventory.model import Inventory, Link

STATES = ("confirmed", "wrong_port", "down", "missing", "unknown")
NEIGHBOR = "govnet_neighbor_info"
_PREFIX = re.compile(r"^([a-z\-]*)\s*(.*)$")
# Vendors spell the same port differently across LLDP, ifName and configs: "XGigabitEthernet0/0/1",
# "XGE0/0/1", "Gi1/0/1", "GigabitEthernet1/0/1", "GigabitEthernet 0/25" (Ruijie). Compare a short
# family prefix and the numbers.
_FAMILIES = {
    "gigabitethernet": "ge", "gi": "ge", "ge": "ge", "gig": "ge",
    "xgigabitethernet": "xge", "xge": "xge", "tengigabitethernet": "te", "te": "te",
    "ten-gigabitethernet": "te",
    "fastethernet": "fa", "fa": "fa", "ethernet": "eth", "eth": "eth",
    "fortygige": "fo", "fo": "fo", "fortygigabitethernet": "fo", "hundredgige": "hu", "hu": "hu",
    "meth": "meth", "mgmt": "mgmt", "bridge-aggregation": "bagg", "eth-trunk": "eth-trunk",
}  # fmt: skip


def port_key(name: str) -> str:
    """A vendor-neutral key for an interface name ("Gi1/0/1" and "GigabitEthernet1/0/1" agree)."""
    m = _PREFIX.match(name.strip().lower())
    if m is None:
        return name.strip().lower()
    family, rest = m.group(1), m.group(2).replace(" ", "")
    return _FAMILIES.get(family, family) + rest


@dataclass(frozen=True, slots=True)
class Seen:
    """One neighbour a device reports on one of its ports."""

    device: str
    ifname: str
    remote_sysname: str
    remote_port: str
    remote_port_desc: str
    remote_device: str | None  # the inventory device the remote name resolves to


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """The verdict on one declared link, with what was seen instead when it is not confirmed."""

    link: Link
    state: str
    seen: str = ""


@dataclass(frozen=True, slots=True)
class Verification:
    """Every declared link's verdict and every neighbour no declared link explains."""

    links: list[LinkCheck]
    undeclared: list[Seen]


def by_device(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    """Samples grouped by their `device` label (the latest store's snapshot is one flat list)."""
    out: dict[str, list[Sample]] = {}
    for s in samples:
        dev = s.label_dict.get("device")
        if dev:
            out.setdefault(dev, []).append(s)
    return out


def _resolver(inventory: Inventory, snapshot: Mapping[str, Sequence[Sample]]) -> Callable[[str], str | None]:
    names: dict[str, str] = {}
    for d in inventory.devices:
        names[d.name.lower()] = d.name
        for s in snapshot.get(d.name, ()):
            if s.metric == "govnet_device_info":
                sysname = s.label_dict.get("sysname", "").lower()
                if sysname:
                    names.setdefault(sysname, d.name)
                    names.setdefault(sysname.split(".")[0], d.name)

    def resolve(sysname: str) -> str | None:
        low = sysname.strip().lower()
        return names.get(low) or names.get(low.split(".")[0]) if low else None

    return resolve


def neighbours(inventory: Inventory, snapshot: Mapping[str, Sequence[Sample]]) -> dict[str, list[Seen]]:
    """Per device, the neighbours it reports (only devices that report at least one)."""
    resolve = _resolver(inventory, snapshot)
    out: dict[str, list[Seen]] = {}
    for device, samples in snapshot.items():
        for s in samples:
            if s.metric != NEIGHBOR:
                continue
            lab = s.label_dict
            name = lab.get("remote_sysname", "")
            out.setdefault(device, []).append(
                Seen(
                    device,
                    lab.get("ifname", ""),
                    name,
                    lab.get("remote_port", ""),
                    lab.get("remote_port_desc", ""),
                    resolve(name),
                )
            )
    return out


def _oper(snapshot: Mapping[str, Sequence[Sample]]) -> dict[tuple[str, str], float]:
    return {
        (device, port_key(s.label_dict.get("ifname", ""))): s.value
        for device, samples in snapshot.items()
        for s in samples
        if s.metric == "govnet_if_oper_up"
    }


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _port_of(n: Seen) -> str:
    """The neighbour's port name: its port id, or its description when the id is a MAC address."""
    if n.remote_port and not _MAC.match(n.remote_port.lower()):
        return n.remote_port
    return n.remote_port_desc or n.remote_port


def _side(seen: list[Seen] | None, local: str, peer: str, peer_port: str) -> tuple[str | None, str]:
    """What one end says: confirmed / wrong_port / None (nothing about this link), and what it saw."""
    if seen is None:
        return None, ""
    here = [n for n in seen if port_key(n.ifname) == port_key(local)]
    for n in here:
        if n.remote_device == peer and port_key(peer_port) == port_key(_port_of(n)):
            return "confirmed", ""
    for n in here:
        if n.remote_device == peer:
            return "wrong_port", f"{n.ifname} -> {peer} {n.remote_port}"
    if here:
        n = here[0]
        return "wrong_port", f"{n.ifname} -> {n.remote_sysname or n.remote_port} {n.remote_port}"
    for n in seen:
        if n.remote_device == peer and port_key(peer_port) == port_key(_port_of(n)):
            return "wrong_port", f"{n.ifname} -> {peer} {n.remote_port}"
    return None, ""


def verify(inventory: Inventory, snapshot: Mapping[str, Sequence[Sample]]) -> Verification:
    """Check every declared link against the neighbours in `snapshot` (device -> latest samples)."""
    seen = neighbours(inventory, snapshot)
    oper = _oper(snapshot)
    checks: list[LinkCheck] = []
    declared: set[tuple[str, str]] = set()
    for link in inventory.links:
        a, b = link.a, link.b
        declared |= {(a.device, port_key(a.interface)), (b.device, port_key(b.interface))}
        va, wa = _side(seen.get(a.device), a.interface, b.device, b.interface)
        vb, wb = _side(seen.get(b.device), b.interface, a.device, a.interface)
        if "wrong_port" in (va, vb):
            state, what = "wrong_port", wa or wb
        elif "confirmed" in (va, vb):
            state, what = "confirmed", ""
        elif (
            oper.get((a.device, port_key(a.interface))) == 0
            or oper.get((b.device, port_key(b.interface))) == 0
        ):
            state, what = "down", ""
        elif a.device in seen or b.device in seen:
            state, what = "missing", ""
        else:
            state, what = "unknown", ""
        checks.append(LinkCheck(link, state, what))
    undeclared = [
        n for device in sorted(seen) for n in seen[device] if (device, port_key(n.ifname)) not in declared
    ]
    return Verification(checks, undeclared)


def link_samples(inventory: Inventory, result: Verification, now: float) -> list[Sample]:
    """govnet_link_state (stateset per declared link, labelled as a device series of its `a` end) and
    govnet_neighbor_undeclared (one per neighbour no declared link explains)."""
    out: list[Sample] = []
    known = {d.name for d in inventory.devices}
    for c in result.links:
        a, b = c.link.a, c.link.b
        base = device_labels(inventory.device(a.device)) if a.device in known else (("device", a.device),)
        extra = (
            ("a_interface", a.interface),
            ("b_device", b.device),
            ("b_interface", b.interface),
            ("redundancy_group", c.link.redundancy_group or ""),
        )
        for state in STATES:
            labels = tuple(sorted((*base, *extra, ("state", state))))
            out.append(Sample("govnet_link_state", labels, 1.0 if c.state == state else 0.0, now, help=HELP))
    for n in result.undeclared:
        base = device_labels(inventory.device(n.device)) if n.device in known else (("device", n.device),)
        seen = (("ifname", n.ifname), ("remote_sysname", n.remote_sysname), ("remote_port", n.remote_port))
        out.append(
            Sample(
                "govnet_neighbor_undeclared",
                tuple(sorted((*base, *seen))),
                1.0,
                now,
                help="A neighbour LLDP/CDP sees on a port no declared link names (value is always 1).",
            )
        )
    return out


HELP = "Declared link checked against LLDP/CDP: confirmed, wrong_port, down, missing, unknown (stateset)."


def discover_fragment(inventory: Inventory, result: Verification) -> str:
    """The links LLDP/CDP sees between inventory devices that the inventory lacks, as YAML to paste.

    Each physical link is reported once (both ends usually see each other); neighbours that are not
    inventory devices are listed as comments (add the device first).
    """
    import yaml

    pairs: dict[frozenset[tuple[str, str]], dict[str, Any]] = {}
    unknown: list[str] = []
    for n in result.undeclared:
        if n.remote_device is None:
            unknown.append(
                f"# {n.device} {n.ifname} -> {n.remote_sysname or '?'} {n.remote_port} (not in the inventory)"
            )
            continue
        key = frozenset({(n.device, port_key(n.ifname)), (n.remote_device, port_key(n.remote_port))})
        pairs.setdefault(
            key,
            {
                "a": {"device": n.device, "interface": n.ifname},
                "b": {"device": n.remote_device, "interface": n.remote_port},
            },
        )
    body = (
        yaml.safe_dump({"links": list(pairs.values())}, allow_unicode=True, sort_keys=False) if pairs else ""
    )
    return "\n".join([*unknown, body.rstrip()]).strip() + "\n"


class LinkCheckService:
    """Re-verifies the declared links from the latest samples every `interval` seconds (`links:`)."""

    name = "links"

    def __init__(
        self,
        inventory: Inventory,
        latest: LatestStore,
        interval: float = 30.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.inventory = inventory
        self.latest = latest
        self.interval = interval
        self.wall = wall
        self.result: Verification | None = None
        self._samples: list[Sample] = []

    def recompute(self) -> Verification:
        """Verify now and refresh the samples."""
        self.result = verify(self.inventory, by_device(self.latest.snapshot()))
        self._samples = link_samples(self.inventory, self.result, self.wall())
        return self.result

    async def run(self, stop: asyncio.Event) -> None:
        """Recompute until `stop` is set; a bug is logged, never fatal."""
        import logging

        while not stop.is_set():
            try:
                self.recompute()
            except Exception:
                logging.getLogger(__name__).exception("link verification failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    def internal_samples(self) -> list[Sample]:
        """The samples of the last check."""
        return list(self._samples)


class LinksSection(Section):
    """`links:`: verify the declared links against LLDP/CDP every `interval`."""

    interval: Duration = 30.0


def build(section: LinksSection, *, inventory: Inventory, latest: LatestStore) -> list[LinkCheckService]:
    """The link check service of a `links:` section."""
    return [LinkCheckService(inventory, latest, section.interval)]


def states_by_link(result: Verification) -> Iterable[tuple[str, str, str, str, str, str]]:
    """(a device, a interface, b device, b interface, state, seen) rows, for the API and the console."""
    for c in result.links:
        yield (c.link.a.device, c.link.a.interface, c.link.b.device, c.link.b.interface, c.state, c.seen)


def links_command(inventory: Path, discover: bool) -> int:
    """`govnet links check|discover --inventory F`: poll every device once, verify the declared links.

    check: one line per declared link (state, and what was seen instead) and the undeclared
    neighbours; exit 1 when a link is wrong_port or missing. discover: the YAML fragment only.
    """
    import sys

    from collectors.cli import poll_cycle, pollable, snmp_collector
    from collectors.scheduler import SchedulerSettings
    from inventory.cli import load_or_report

    err, out = sys.stderr, sys.stdout
    inv = load_or_report(inventory, err)
    if inv is None:
        return 2
    chosen = pollable(inv, [], err) or []
    settings = SchedulerSettings()
    err.write(f"govnet: polling {len(chosen)} device(s) for LLDP/CDP neighbours...\n")
    results = asyncio.run(poll_cycle(inv, chosen, snmp_collector(settings), settings))
    snapshot = {device.name: samples for device, result, samples in results if result.ok}
    for device, result, _ in results:
        if not result.ok:
            err.write(f"govnet: {device.name}: poll failed: {result.error or 'unknown error'}\n")
    found = verify(inv, snapshot)
    if discover:
        out.write(discover_fragment(inv, found))
        return 0
    bad = 0
    for a_dev, a_if, b_dev, b_if, state, seen in states_by_link(found):
        bad += state in ("wrong_port", "missing")
        out.write(f"{state:<11} {a_dev} {a_if} -- {b_dev} {b_if}{'  (seen: ' + seen + ')' if seen else ''}\n")
    for n in found.undeclared:
        out.write(f"undeclared  {n.device} {n.ifname} -> {n.remote_sysname or '?'} {n.remote_port}\n")
    return 1 if bad else 0
