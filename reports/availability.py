"""Time-weighted availability from the journal: exact seconds per state, outages, unknown spans."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from alerts.journal import StateChange

Span = tuple[float, float]
OUTAGE_STATES = frozenset({"down", "unreachable"})


def normalise(spans: Iterable[Span]) -> list[Span]:
    """Sorted, merged, non-empty spans."""
    out: list[Span] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def intersect(xs: Sequence[Span], ys: Sequence[Span]) -> list[Span]:
    """The parts of `xs` inside `ys` (both normalised)."""
    out: list[Span] = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if b > a:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(xs: Sequence[Span], ys: Sequence[Span]) -> list[Span]:
    """The parts of `xs` outside `ys` (both normalised)."""
    out: list[Span] = []
    for a, b in xs:
        cur = a
        for c, d in ys:
            if d <= cur or c >= b:
                continue
            if c > cur:
                out.append((cur, c))
            cur = max(cur, d)
        if cur < b:
            out.append((cur, b))
    return out


def length(spans: Iterable[Span]) -> float:
    """Total seconds."""
    return sum(b - a for a, b in spans)


@dataclass(frozen=True, slots=True)
class Outage:
    """A stretch a device was down or unreachable (merged across both states)."""

    start: float
    end: float
    state: str  # "down", "unreachable", or "down+unreachable"
    in_maintenance: bool  # entirely inside a declared maintenance window

    @property
    def seconds(self) -> float:
        """Its duration."""
        return self.end - self.start


@dataclass(slots=True)
class Availability:
    """One device over one period: seconds per state outside maintenance, and the rest."""

    device: str
    period: Span
    seconds: dict[str, float] = field(
        default_factory=dict
    )  # up/degraded/down/unreachable, outside maintenance
    unknown: float = 0.0  # govnet not running, or no evidence yet
    maintenance: float = 0.0  # known time inside declared maintenance (excluded from the ratios)
    outages: list[Outage] = field(default_factory=list)

    @property
    def known(self) -> float:
        """Seconds with a known state outside maintenance."""
        return sum(self.seconds.values())

    def ratio(self, *states: str) -> float | None:
        """Share of the known, non-maintenance time spent in `states`; None when nothing is known."""
        known = self.known
        return sum(self.seconds.get(s, 0.0) for s in states) / known if known > 0 else None

    @property
    def available(self) -> float | None:
        """Up or degraded (still serving) over the known, non-maintenance time."""
        return self.ratio("up", "degraded")


def timeline(changes: Sequence[StateChange], start: float, end: float) -> list[tuple[Span, str]]:
    """(span, state) pieces of [start, end) from a device's changes (the first may predate `start`)."""
    out: list[tuple[Span, str]] = []
    for i, ch in enumerate(changes):
        a = max(ch.at, start)
        b = min(changes[i + 1].at if i + 1 < len(changes) else end, end)
        if b > a:
            out.append(((a, b), ch.state))
    return out


def device_availability(
    device: str,
    changes: Sequence[StateChange],
    coverage: Sequence[Span],
    maintenance: Sequence[Span],
    start: float,
    end: float,
) -> Availability:
    """Exact availability of one device in [start, end)."""
    cov = normalise(coverage)
    maint = normalise(maintenance)
    av = Availability(device, (start, end), dict.fromkeys(("up", "degraded", "down", "unreachable"), 0.0))
    known_total: list[Span] = []
    bad: list[tuple[Span, str]] = []
    for span, state in timeline(changes, start, end):
        watched = intersect([span], cov)
        known_total.extend(watched)
        inside = intersect(watched, maint)
        av.maintenance += length(inside)
        av.seconds[state] = av.seconds.get(state, 0.0) + length(subtract(watched, maint))
        if state in OUTAGE_STATES:
            bad.extend((s, state) for s in watched)
    av.unknown = (end - start) - length(normalise(known_total))
    # Merge touching outage pieces (down then unreachable is one outage for the unit).
    merged: list[tuple[float, float, set[str]]] = []
    for (a, b), state in sorted(bad):
        if merged and a <= merged[-1][1] + 1e-9:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b), merged[-1][2] | {state})
        else:
            merged.append((a, b, {state}))
    for a, b, states in merged:
        covered = length(intersect([(a, b)], maint))
        av.outages.append(Outage(a, b, "+".join(sorted(states)), covered >= (b - a) - 1e-9))
    return av
