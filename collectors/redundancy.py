"""Redundancy groups and per-device reachability from the latest samples: a pure function and a service.

Evidence, per device: `govnet_up` (its last SNMP poll) and `probe_up` (its last ICMP round). A device
is *alive* when any evidence says so (a firewall may drop ICMP, an agent may hang while the box
forwards), *failed* when there is evidence and all of it is negative, and assumed alive without any
evidence yet. A link is *down* when `govnet_if_oper_up` of either end's interface (matched by ifName,
else ifDescr) is 0; an end without a sample (device not polled, poll failed) says nothing. The
topology rules (inventory/topology.py, Icinga parents) then give up / degraded / down / unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from collectors.base import device_labels
from core.latest import LatestStore
from core.samples import Sample
from inventory.model import Inventory
from inventory.topology import Topology

log = logging.getLogger(__name__)

DeviceState = Literal["up", "degraded", "down", "unreachable"]
GroupState = Literal["ok", "degraded", "down"]
DEVICE_STATES: tuple[DeviceState, ...] = ("up", "degraded", "down", "unreachable")
GROUP_STATES: tuple[GroupState, ...] = ("ok", "degraded", "down")

HELP = {
    "govnet_redundancy_members_up": "Healthy members of the redundancy group (links or HA devices).",
    "govnet_redundancy_members_expected": "Members the redundancy group has when all is well.",
    "govnet_redundancy_state": "Redundancy group state (stateset: 1 for the current state).",
    "govnet_reachability_state": "Device reachability from the topology (stateset: 1 for the current state).",
    "govnet_reachability_transitions_total": "Reachability state changes of the device since start.",
}


@dataclass(frozen=True, slots=True)
class GroupHealth:
    """One redundancy group: healthy members out of expected and the resulting state."""

    name: str
    kind: Literal["links", "ha", "devices"]
    up: int
    expected: int

    @property
    def state(self) -> GroupState:
        """ok when all members are healthy, down when none is, else degraded."""
        if self.up >= self.expected:
            return "ok"
        return "down" if self.up == 0 else "degraded"


@dataclass(frozen=True, slots=True)
class Report:
    """The states computed from one set of samples."""

    devices: dict[str, DeviceState]
    groups: dict[tuple[str, str], GroupHealth]  # (kind, name) -> health
    failed: frozenset[str] = field(default_factory=frozenset)
    links_down: frozenset[str] = field(default_factory=frozenset)


def _oper_by_interface(samples: Iterable[Sample]) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """(device, interface) -> govnet_if_oper_up, and device -> govnet_up, from a sample set."""
    oper: dict[tuple[str, str], float] = {}
    up: dict[str, float] = {}
    for s in samples:
        if s.metric == "govnet_if_oper_up":
            labels = s.label_dict
            dev = labels.get("device")
            if dev is None:
                continue
            # ifDescr first so that ifName (the inventory's usual naming) wins when both exist.
            for key in ("ifdescr", "ifname"):
                name = labels.get(key)
                if name:
                    oper[(dev, name)] = s.value
        elif s.metric == "govnet_up":
            dev = s.label_dict.get("device")
            if dev is not None:
                up[dev] = s.value
    return oper, up


def evaluate(
    topology: Topology,
    samples: Iterable[Sample],
    probe_up: Mapping[str, bool] | None = None,
    device_groups: Mapping[str, Sequence[str]] | None = None,
) -> Report:
    """Reachability of every device and health of every redundancy group, from the latest samples.

    Groups: the topology's link groups (kind `links`), its HA groups (`ha`) and `device_groups`
    (kind `devices`, e.g. the core pair); a device member is healthy when its state is `up`.
    """
    oper, polled = _oper_by_interface(samples)
    probes = probe_up or {}
    failed: set[str] = set()
    for dev in topology.devices:
        evidence = []
        if dev in polled:
            evidence.append(polled[dev] >= 1.0)
        if dev in probes:
            evidence.append(bool(probes[dev]))
        if evidence and not any(evidence):
            failed.add(dev)
    links_down = {
        link.id
        for link in topology.links
        if oper.get((link.a, link.a_interface), 1.0) < 1.0 or oper.get((link.b, link.b_interface), 1.0) < 1.0
    }
    assessment = topology.assess(failed, links_down)
    devices: dict[str, DeviceState] = {}
    for dev, status in assessment.status.items():
        devices[dev] = "degraded" if status == "up" and dev in assessment.degraded else status
    groups: dict[tuple[str, str], GroupHealth] = {}
    for name, (working, expected) in assessment.redundancy.items():
        groups[("links", name)] = GroupHealth(name, "links", working, expected)
    for name, members in topology.ha_groups.items():
        healthy = sum(1 for m in members if assessment.status.get(m) == "up")
        groups[("ha", name)] = GroupHealth(name, "ha", healthy, len(members))
    for name, devs in (device_groups or {}).items():
        healthy = sum(1 for m in devs if assessment.status.get(m) == "up")
        groups[("devices", name)] = GroupHealth(name, "devices", healthy, len(devs))
    return Report(devices, groups, frozenset(failed), frozenset(links_down))


def report_samples(report: Report, inventory: Inventory, timestamp: float) -> list[Sample]:
    """The report as samples: redundancy gauges and statesets, per-device reachability stateset."""
    out: list[Sample] = []
    for health in report.groups.values():
        labels = (("group", health.name), ("kind", health.kind))
        out.append(
            Sample(
                "govnet_redundancy_members_up",
                labels,
                float(health.up),
                timestamp,
                "gauge",
                HELP["govnet_redundancy_members_up"],
            )
        )
        out.append(
            Sample(
                "govnet_redundancy_members_expected",
                labels,
                float(health.expected),
                timestamp,
                "gauge",
                HELP["govnet_redundancy_members_expected"],
            )
        )
        for st in GROUP_STATES:
            out.append(
                Sample(
                    "govnet_redundancy_state",
                    (*labels, ("state", st)),
                    1.0 if health.state == st else 0.0,
                    timestamp,
                    "gauge",
                    HELP["govnet_redundancy_state"],
                )
            )
    known = {d.name: d for d in inventory.devices}
    for dev, state in report.devices.items():
        device = known.get(dev)
        if device is None:
            continue
        base = device_labels(device)
        for dst in DEVICE_STATES:
            out.append(
                Sample(
                    "govnet_reachability_state",
                    tuple(sorted((*base, ("state", dst)))),
                    1.0 if state == dst else 0.0,
                    timestamp,
                    "gauge",
                    HELP["govnet_reachability_state"],
                )
            )
    return out


def core_groups(inventory: Inventory) -> dict[str, list[str]]:
    """The core pair as a device group (`cores`) when the inventory has two or more core switches."""
    cores = [d.name for d in inventory.devices if d.role.value == "core_switch"]
    return {"cores": cores} if len(cores) >= 2 else {}


@dataclass(frozen=True, slots=True)
class Transition:
    """A device or group changed state."""

    at: float
    subject: str  # device name, or `kind:group`
    old: str
    new: str


class StateTracker:
    """Remembers the last states and lists each change exactly once."""

    def __init__(self) -> None:
        self.devices: dict[str, DeviceState] = {}
        self.groups: dict[tuple[str, str], GroupState] = {}
        self.transitions: list[Transition] = []
        self.counts: dict[str, int] = {}

    def update(self, report: Report, now: float) -> list[Transition]:
        """Record the report; the changes since the previous one (the first report sets the baseline)."""
        new: list[Transition] = []
        for dev, state in report.devices.items():
            old = self.devices.get(dev)
            if old is not None and old != state:
                new.append(Transition(now, dev, old, state))
                self.counts[dev] = self.counts.get(dev, 0) + 1
            self.devices[dev] = state
        for key, health in report.groups.items():
            old_g = self.groups.get(key)
            if old_g is not None and old_g != health.state:
                new.append(Transition(now, f"{key[0]}:{key[1]}", old_g, health.state))
            self.groups[key] = health.state
        self.transitions.extend(new)
        del self.transitions[:-1000]  # bounded history
        return new


class ReachabilityService:
    """Recomputes redundancy and reachability every `interval` seconds from the latest samples and probes."""

    name = "reachability"

    def __init__(
        self,
        inventory: Inventory,
        latest: LatestStore,
        probe_up: Callable[[], Mapping[str, bool]] | None = None,
        interval: float = 5.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.inventory = inventory
        self.topology = Topology.from_inventory(inventory)
        self.latest = latest
        self.probe_up = probe_up
        self.interval = interval
        self.wall = wall
        self.tracker = StateTracker()
        self.device_groups = core_groups(inventory)
        self._samples: list[Sample] = []
        self.report: Report | None = None

    def recompute(self) -> Report:
        """Evaluate now, log and record the transitions, refresh the samples."""
        now = self.wall()
        probes = self.probe_up() if self.probe_up is not None else None
        report = evaluate(self.topology, self.latest.snapshot(), probes, self.device_groups)
        for t in self.tracker.update(report, now):
            log.info("reachability: %s %s -> %s", t.subject, t.old, t.new)
        samples = report_samples(report, self.inventory, now)
        for dev, count in self.tracker.counts.items():
            if dev in self.topology.devices:
                d = self.inventory.device(dev)
                samples.append(
                    Sample(
                        "govnet_reachability_transitions_total",
                        device_labels(d),
                        float(count),
                        now,
                        "counter",
                        HELP["govnet_reachability_transitions_total"],
                    )
                )
        self.report, self._samples = report, samples
        return report

    async def run(self, stop: asyncio.Event) -> None:
        """Recompute until `stop` is set; an evaluation bug is logged, never fatal."""
        while not stop.is_set():
            try:
                self.recompute()
            except Exception:
                log.exception("reachability evaluation failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    def internal_samples(self) -> list[Sample]:
        """The samples of the last evaluation."""
        return list(self._samples)
