"""Who is in the cluster: heartbeat rows in, live members out; time is passed in (tested without sleeping)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Member:
    """One `govnet run` node as its heartbeat row says (last_seen in the store's clock, seconds)."""

    node_id: str
    address: str
    last_seen: float


@dataclass(frozen=True, slots=True)
class Change:
    """A membership change: the live member ids now, and who joined or left since the last view."""

    members: tuple[str, ...]
    joined: tuple[str, ...]
    left: tuple[str, ...]


class Membership:
    """The live-member state machine of one node.

    A member is live while its last heartbeat is at most `missed_heartbeats` intervals old (judged in
    the store's clock, so node clocks may drift). This node counts itself live while it keeps
    heartbeating, even before its own row is read back.
    """

    def __init__(self, self_id: str, heartbeat_interval: float, missed_heartbeats: int) -> None:
        if heartbeat_interval <= 0 or missed_heartbeats < 1:
            raise ValueError("heartbeat_interval must be > 0 and missed_heartbeats >= 1")
        self.self_id = self_id
        self.expiry = heartbeat_interval * missed_heartbeats
        self.members: tuple[str, ...] = ()
        self.rebalances = 0

    def live(self, rows: Iterable[Member], now: float) -> tuple[str, ...]:
        """Sorted ids of the members whose last heartbeat is recent enough at `now`, plus self."""
        ids = {m.node_id for m in rows if now - m.last_seen <= self.expiry}
        ids.add(self.self_id)
        return tuple(sorted(ids))

    def observe(self, rows: Iterable[Member], now: float) -> Change | None:
        """Take the heartbeat rows read at `now`; a Change when the live set differs from the last one."""
        current = self.live(rows, now)
        if current == self.members:
            return None
        before = set(self.members)
        change = Change(
            current,
            tuple(m for m in current if m not in before),
            tuple(m for m in self.members if m not in set(current)),
        )
        self.members = current
        self.rebalances += 1
        return change

    def expired(self, rows: Iterable[Member], now: float, factor: float = 10.0) -> list[str]:
        """Rows dead for `factor` expiry periods: safe for any node to delete (keeps the table small)."""
        return [
            m.node_id for m in rows if m.node_id != self.self_id and now - m.last_seen > factor * self.expiry
        ]
