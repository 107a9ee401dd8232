"""The shape of the network: who is upstream of whom, redundancy groups, HA partners, reachability.

Rules (Icinga parents, adapted to multi-homing):
- An `uplink` link makes `b` upstream (a parent) of `a`; `peer` links carry no hierarchy.
- Roots are devices without uplinks (the cores, and anything not linked): the monitor reaches them
  directly.
- A device has a working path when it is a root, or when one of its uplinks is not down and leads
  to an upstream device that is itself up (recursively).
- `down` is the set of devices whose own check failed. Such a device is reported `down` when it
  still has a working path (it is the cause) and `unreachable` when every path is broken above it
  (it is a consequence: do not page for it). A device not in `down` is `up` with a working path,
  `unreachable` without one (so a what-if question, "if core-1 fails...", needs only the causes).
- A device that is up but has lost some (not all) of its uplinks is `degraded`: redundancy lost.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from inventory.model import Inventory

Status = Literal["up", "down", "unreachable"]


@dataclass(frozen=True, slots=True)
class TopoLink:
    """A link between two devices; for an uplink, `b` is upstream of `a`."""

    a: str
    a_interface: str
    b: str
    b_interface: str
    kind: Literal["uplink", "peer"]
    redundancy_group: str | None = None

    @property
    def id(self) -> str:
        """Stable identifier, `a:interface--b:interface` (device names never contain ':')."""
        return f"{self.a}:{self.a_interface}--{self.b}:{self.b_interface}"


@dataclass(frozen=True, slots=True)
class RedundancyGroup:
    """Links that back each other up (e.g. an aggregation switch's dual uplinks)."""

    name: str
    links: tuple[TopoLink, ...]

    @property
    def expected(self) -> int:
        """How many links should be working when all is well."""
        return len(self.links)


@dataclass(frozen=True, slots=True)
class Assessment:
    """The state of the network given what failed."""

    status: dict[str, Status]
    degraded: frozenset[str]
    # redundancy group -> (links working, links expected); a link works when it is not down and
    # both its ends are up.
    redundancy: dict[str, tuple[int, int]]

    def unreachable(self) -> frozenset[str]:
        """Devices cut off behind something else that failed."""
        return frozenset(d for d, s in self.status.items() if s == "unreachable")

    def causes(self) -> frozenset[str]:
        """Devices that failed while still having a working path: the ones worth paging for."""
        return frozenset(d for d, s in self.status.items() if s == "down")


class Topology:
    """Upstream/downstream relations, redundancy groups and HA partners of an inventory."""

    def __init__(self, devices: Iterable[str], links: Iterable[TopoLink], ha_groups: dict[str, list[str]]):
        self.links: tuple[TopoLink, ...] = tuple(links)
        names = dict.fromkeys(devices)
        for link in self.links:  # a link may name a device the caller did not list
            names.update(dict.fromkeys((link.a, link.b)))
        self.devices: tuple[str, ...] = tuple(names)
        uplinks: dict[str, list[TopoLink]] = defaultdict(list)
        downlinks: dict[str, list[TopoLink]] = defaultdict(list)
        peers: dict[str, list[TopoLink]] = defaultdict(list)
        groups: dict[str, list[TopoLink]] = defaultdict(list)
        self._by_interface: dict[tuple[str, str], TopoLink] = {}
        for link in self.links:
            if link.kind == "uplink":
                uplinks[link.a].append(link)
                downlinks[link.b].append(link)
            else:
                peers[link.a].append(link)
                peers[link.b].append(link)
            if link.redundancy_group is not None:
                groups[link.redundancy_group].append(link)
            self._by_interface[(link.a, link.a_interface)] = link
            self._by_interface[(link.b, link.b_interface)] = link
        self.uplinks_of: dict[str, tuple[TopoLink, ...]] = {d: tuple(uplinks[d]) for d in self.devices}
        self.downlinks_of: dict[str, tuple[TopoLink, ...]] = {d: tuple(downlinks[d]) for d in self.devices}
        self.peer_links_of: dict[str, tuple[TopoLink, ...]] = {d: tuple(peers[d]) for d in self.devices}
        self.redundancy_groups: dict[str, RedundancyGroup] = {
            name: RedundancyGroup(name, tuple(members)) for name, members in groups.items()
        }
        self.ha_groups: dict[str, tuple[str, ...]] = {g: tuple(m) for g, m in ha_groups.items()}
        self._ha_group_of = {member: g for g, members in ha_groups.items() for member in members}

    @classmethod
    def from_inventory(cls, inventory: Inventory) -> Topology:
        """Build the topology of a (validated) inventory."""
        links = [
            TopoLink(
                link.a.device,
                link.a.interface,
                link.b.device,
                link.b.interface,
                link.kind,
                link.redundancy_group,
            )
            for link in inventory.links
        ]
        ha = {g.name: [m.device for m in g.members] for g in inventory.ha_groups}
        return cls((d.name for d in inventory.devices), links, ha)

    # -- structure ---------------------------------------------------------------------------

    def upstream(self, device: str) -> tuple[str, ...]:
        """Devices directly upstream of `device` (its parents), in link order, without repeats."""
        return tuple(dict.fromkeys(link.b for link in self.uplinks_of.get(device, ())))

    def parents(self, device: str) -> tuple[str, ...]:
        """Same as `upstream`: the Icinga-style parents of a node."""
        return self.upstream(device)

    def downstream(self, device: str) -> tuple[str, ...]:
        """Devices directly below `device` (it is their upstream)."""
        return tuple(dict.fromkeys(link.a for link in self.downlinks_of.get(device, ())))

    def peers(self, device: str) -> tuple[str, ...]:
        """Devices joined to `device` by peer links (no hierarchy)."""
        links = self.peer_links_of.get(device, ())
        return tuple(dict.fromkeys(link.b if link.a == device else link.a for link in links))

    def roots(self) -> tuple[str, ...]:
        """Devices without uplinks: where every path starts."""
        return tuple(d for d in self.devices if not self.uplinks_of[d])

    def ancestors(self, device: str) -> frozenset[str]:
        """Every device on some path above `device`."""
        return self._closure(device, self.upstream)

    def descendants(self, device: str) -> frozenset[str]:
        """Every device with some path through `device`."""
        return self._closure(device, self.downstream)

    def _closure(self, device: str, step: Callable[[str], tuple[str, ...]]) -> frozenset[str]:
        seen: set[str] = set()
        todo = deque([device])
        while todo:
            for nxt in step(todo.popleft()):
                if nxt not in seen and nxt != device:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def link_at(self, device: str, interface: str) -> TopoLink | None:
        """The link that has `interface` of `device` as one end, if any."""
        return self._by_interface.get((device, interface))

    def ha_group_of(self, device: str) -> str | None:
        """Name of the HA group `device` belongs to, if any."""
        return self._ha_group_of.get(device)

    def ha_partners(self, device: str) -> tuple[str, ...]:
        """The other members of `device`'s HA group (empty if it has none)."""
        group = self._ha_group_of.get(device)
        return tuple(m for m in self.ha_groups.get(group, ()) if m != device) if group else ()

    def ha_partner(self, device: str) -> str | None:
        """The (first) HA partner of `device`, if any."""
        partners = self.ha_partners(device)
        return partners[0] if partners else None

    # -- state -------------------------------------------------------------------------------

    def reachability(self, down: Iterable[str] = (), links_down: Iterable[str] = ()) -> dict[str, Status]:
        """`up`, `down` or `unreachable` per device, given failed devices and failed link ids."""
        failed, cut = frozenset(down), frozenset(links_down)
        has_path: set[str] = set()
        reachable: deque[str] = deque()
        for root in self.roots():
            has_path.add(root)
            if root not in failed:
                reachable.append(root)
        while reachable:
            upper = reachable.popleft()
            for link in self.downlinks_of[upper]:
                if link.id in cut or link.a in has_path:
                    continue
                has_path.add(link.a)
                if link.a not in failed:
                    reachable.append(link.a)
        return {
            d: ("unreachable" if d not in has_path else "down" if d in failed else "up") for d in self.devices
        }

    def degraded(self, down: Iterable[str] = (), links_down: Iterable[str] = ()) -> frozenset[str]:
        """Up devices that lost at least one, but not all, of their uplinks."""
        return self.assess(down, links_down).degraded

    def assess(self, down: Iterable[str] = (), links_down: Iterable[str] = ()) -> Assessment:
        """Status, degraded devices and redundancy-group health in one pass."""
        cut = frozenset(links_down)
        status = self.reachability(down, cut)

        def works(link: TopoLink) -> bool:
            return link.id not in cut and status[link.a] == "up" and status[link.b] == "up"

        degraded = frozenset(
            d
            for d in self.devices
            if status[d] == "up" and any(not works(link) for link in self.uplinks_of[d])
        )
        redundancy = {
            name: (sum(works(link) for link in group.links), group.expected)
            for name, group in self.redundancy_groups.items()
        }
        return Assessment(status, degraded, redundancy)
