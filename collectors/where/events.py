"""Address events from consecutive sweeps (pure; time passed in): each is held as a gauge series for
`hold` seconds so the alert rules fire once and resolve by themselves.

- an address answered by another MAC than in the previous sweep (address theft, ARP spoofing), or by
  two MACs at once;
- one MAC learned on several host-facing ports at once;
- a MAC not seen before on a port declared single-host (`single_host_ports` in the inventory);
- a port whose MAC count jumps (an unmanaged switch or a hub appeared, or MAC flooding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.where.resolve import Sweep
from collectors.where.tables import mac_text


@dataclass(frozen=True, slots=True)
class Event:
    """One address event; `labels` identify it (and name the MACs), `value` is its size."""

    kind: str  # address_mac_changed | mac_many_ports | single_host_new_mac | port_mac_jump
    device: str
    labels: tuple[tuple[str, str], ...]
    value: float
    at: float


@dataclass(slots=True)
class EventSettings:
    """Thresholds of the event detectors."""

    hold: float = 3600.0
    jump_min: int = 10  # a port's MAC count rises by at least this many ...
    jump_factor: float = 3.0  # ... and to at least this multiple of the previous count
    single_host_ports: dict[str, set[str]] = field(default_factory=dict)  # device -> ports


class EventDetector:
    """Compares each sweep with the previous one; keeps the events of the last `hold` seconds."""

    def __init__(self, settings: EventSettings) -> None:
        self.s = settings
        self.prev: Sweep | None = None
        self.port_seen: dict[tuple[str, str], set[int]] = {}  # single-host ports: MACs ever seen
        self.active: dict[tuple[str, tuple[tuple[str, str], ...]], Event] = {}
        self.total: dict[str, int] = {}

    def _emit(self, ev: Event) -> None:
        key = (ev.kind, ev.labels)
        if key not in self.active:
            self.total[ev.kind] = self.total.get(ev.kind, 0) + 1
        self.active[key] = ev

    def observe(self, sweep: Sweep, now: float) -> list[Event]:
        """Events new in this sweep (also kept in `active`)."""
        before = set(self.active)
        prev = self.prev
        for ip, macs in sweep.arp.items():
            router = sweep.arp_source.get(ip, [("", "")])[0][0]
            old = prev.arp.get(ip) if prev is not None else None
            if len(macs) > 1:
                a, b = sorted(macs)[:2]
                self._emit(self._mac_change(ip, router, a, b, now))
            elif old and len(old) == 1 and macs != old:
                (was,), (new,) = tuple(old), tuple(macs)
                self._emit(self._mac_change(ip, router, was, new, now))
        for mac, locs in sweep.edge.items():
            if len(locs) > 1:
                ports = ", ".join(f"{loc.device} {loc.port}" for loc in locs[:8])
                self._emit(
                    Event(
                        "mac_many_ports",
                        locs[0].device,
                        (("mac", mac_text(mac)), ("ports", ports)),
                        len(locs),
                        now,
                    )
                )
        for device, declared in self.s.single_host_ports.items():
            for port in declared:
                macs = sweep.port_macs.get((device, port), set())
                seen = self.port_seen.get((device, port))
                if seen is not None:
                    for mac in sorted(macs - seen):
                        self._emit(
                            Event(
                                "single_host_new_mac",
                                device,
                                (("port", port), ("mac", mac_text(mac))),
                                len(macs),
                                now,
                            )
                        )
                if macs:
                    self.port_seen[(device, port)] = (seen or set()) | macs
        if prev is not None:
            for (device, port), macs in sweep.port_macs.items():
                was = len(prev.port_macs.get((device, port), ()))
                n = len(macs)
                if n - was >= self.s.jump_min and n >= self.s.jump_factor * max(was, 1):
                    self._emit(Event("port_mac_jump", device, (("port", port), ("before", str(was))), n, now))
        self.prev = sweep
        for key, ev in list(self.active.items()):
            if now - ev.at > self.s.hold:
                del self.active[key]
        return [self.active[k] for k in self.active if k not in before]

    def _mac_change(self, ip: str, router: str, was: int, new: int, now: float) -> Event:
        # One series per address and pair of MACs: flapping back and forth stays one alert.
        for key, ev in self.active.items():
            lab = dict(ev.labels)
            if (
                key[0] == "address_mac_changed"
                and lab.get("ip") == ip
                and {lab.get("previous_mac"), lab.get("mac")} == {mac_text(was), mac_text(new)}
            ):
                return Event(ev.kind, ev.device, ev.labels, ev.value, now)
        labels = (("ip", ip), ("mac", mac_text(new)), ("previous_mac", mac_text(was)))
        return Event("address_mac_changed", router, labels, 1.0, now)
