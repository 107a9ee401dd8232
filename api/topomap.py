"""Server-side layout of the extranet map: cores on top, security edge and data centre beside them,
aggregation points below with both uplinks drawn, access sites grouped under their aggregation point."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from api.status import NetworkView
from inventory.model import Inventory
from inventory.topology import Topology

EDGE_ROLES = frozenset({"firewall", "isolation_gateway", "vpn_gateway", "ips", "load_balancer"})
DC_ROLES = frozenset({"db_server", "server", "ups"})
COLOURS = {
    "up": "#2e7d32",
    "degraded": "#f9a825",
    "unreachable": "#9e9e9e",
    "down": "#c62828",
    "unknown": "#e0e0e0",
}
AGG_W, ACCESS_COLS, ACCESS_STEP = 120, 4, 24


@dataclass
class Node:
    """A device on the map."""

    name: str
    x: float
    y: float
    r: float
    status: str
    colour: str
    label: bool  # draw the name under it (access sites only get a tooltip)


@dataclass
class Edge:
    """A link on the map."""

    x1: float
    y1: float
    x2: float
    y2: float
    down: bool
    peer: bool
    lldp: str = "unknown"  # LLDP/CDP verdict: confirmed, wrong_port, down, missing, unknown


@dataclass
class Box:
    """A labelled area (security edge, data centre)."""

    key: str
    x: float
    y: float
    w: float
    h: float


@dataclass
class MapLayout:
    """Everything the SVG template draws."""

    width: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    link_counts: dict[str, int] = field(default_factory=dict)  # declared links miswired / unconfirmed


def layout(
    inventory: Inventory, topo: Topology, view: NetworkView, lldp: Mapping[str, str] | None = None
) -> MapLayout:
    """Place every device; colour by status; draw non-access links (access sites sit under their parent).

    `lldp` (link id -> verdict) marks links LLDP/CDP shows miswired (wrong_port) or does not confirm
    (missing); unknown and confirmed links are drawn as before.
    """
    lldp = lldp or {}
    roles = {d.name: d.role.value for d in inventory.devices}
    status = {n: s.status for n, s in view.devices.items()}
    cores = [n for n, r in roles.items() if r == "core_switch"]
    aggs = [n for n, r in roles.items() if r == "aggregation_switch"]
    edge = [n for n, r in roles.items() if r in EDGE_ROLES]
    dc = [n for n, r in roles.items() if r in DC_ROLES]
    placed: dict[str, tuple[float, float]] = {}
    nodes: list[Node] = []
    boxes: list[Box] = []

    def put(name: str, x: float, y: float, r: float = 14, label: bool = True) -> None:
        placed[name] = (x, y)
        st = status.get(name, "unknown")
        nodes.append(Node(name, x, y, r, st, COLOURS.get(st, COLOURS["unknown"]), label))

    side = 250.0
    width = max(2 * side + 300, 40 + AGG_W * max(len(aggs), 1))
    mid = width / 2
    for i, name in enumerate(cores):
        put(name, mid + (i - (len(cores) - 1) / 2) * 160, 90, 18)
    # Security edge (left) and data centre (right): two columns of devices in a labelled box.
    for key, members, x0 in (("edge", edge, 20.0), ("dc", dc, width - side - 20)):
        rows = (len(members) + 1) // 2
        boxes.append(Box(key, x0, 20, side, 50 + rows * 55))
        for i, name in enumerate(members):
            put(name, x0 + 65 + (i % 2) * 120, 75 + (i // 2) * 55, 11)
    top = max([b.y + b.h for b in boxes] + [150.0])
    agg_y = top + 90
    access_of: dict[str, list[str]] = {}
    for i, name in enumerate(aggs):
        x = 20 + AGG_W / 2 + i * AGG_W
        put(name, x, agg_y, 13)
        below = [
            d for d in topo.downstream(name) if roles.get(d) not in ("core_switch", "aggregation_switch")
        ]
        access_of[name] = [d for d in below if d not in placed]
        for j, child in enumerate(access_of[name]):
            cx = x - (ACCESS_COLS - 1) * ACCESS_STEP / 2 + (j % ACCESS_COLS) * ACCESS_STEP
            put(child, cx, agg_y + 60 + (j // ACCESS_COLS) * ACCESS_STEP, 8, label=False)
    rest = [n for n in roles if n not in placed]
    bottom = max([y for _, y in placed.values()] + [agg_y]) + 60
    for i, name in enumerate(rest):
        put(name, 40 + (i % 20) * 50, bottom + (i // 20) * 50, 8)
    height = max([y for _, y in placed.values()] + [agg_y]) + 60
    edges = []
    for link in topo.links:
        if link.a not in placed or link.b not in placed or roles.get(link.a) == "access_switch":
            continue
        (x1, y1), (x2, y2) = placed[link.a], placed[link.b]
        down = link.id in view.links_down or "down" in (status.get(link.a), status.get(link.b))
        edges.append(Edge(x1, y1, x2, y2, down, link.kind == "peer", lldp.get(link.id, "unknown")))
    counts = {s: sum(1 for v in status.values() if v == s) for s in COLOURS}
    m = MapLayout(width, height, nodes, edges, boxes, counts)
    m.link_counts = {s: sum(1 for v in lldp.values() if v == s) for s in ("wrong_port", "missing")}
    return m
