"""The dual-node database verdict and its samples and events (role changes, failover, split brain)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from collectors.base import device_labels
from collectors.db.access import DbError, NodeReader
from collectors.db.status import NodeStatus
from collectors.ssh.ha import PAIR_STATES, PairState
from core.samples import Sample, labels_of
from inventory.model import HaGroup, Inventory

log = logging.getLogger(__name__)

DbRole = Literal["primary", "standby", "down", "unknown"]
DB_ROLES: tuple[DbRole, ...] = ("primary", "standby", "down", "unknown")
_EXPECT_PRIMARY = {"active", "primary"}


@dataclass(frozen=True)
class MemberReading:
    """One member's status this poll (None with an error kind when it could not be read)."""

    device: str
    expected_role: str
    status: NodeStatus | None
    error: str | None = None

    @property
    def role(self) -> DbRole:
        """primary/standby when read; down when unreachable."""
        if self.status is None:
            return "down"
        return "standby" if self.status.in_recovery else "primary"


def db_pair_state(members: list[MemberReading]) -> PairState:
    """The pair verdict; unlike the firewall rule a moved primary is `failed_over` even with the old one down.

    For a database the first thing the on-call must know is that the primary moved (clients,
    backups and the old node's rejoin all depend on it); the down member shows in govnet_db_role.
    A standby that is up but not streaming makes the pair `degraded`.
    """
    primaries = [m for m in members if m.role == "primary"]
    if len(primaries) >= 2:
        return "split_brain"
    if not primaries:
        return "no_active" if any(m.status is not None for m in members) else "down"
    if primaries[0].expected_role not in _EXPECT_PRIMARY:
        return "failed_over"
    for m in members:
        if m is primaries[0]:
            continue
        if m.status is None or m.status.receiver != "streaming":
            return "degraded"
    return "normal"


def lag(standby: NodeStatus, primary: NodeStatus | None) -> tuple[float | None, float | None]:
    """(bytes, seconds) a standby is behind: against the primary's WAL position when it was read."""
    if standby.replay_lsn is None:
        return None, None
    head = primary.current_lsn if primary is not None else None
    if head is None:
        head = standby.receive_lsn  # primary unreadable: what arrived but is not replayed yet
    if head is None:
        return None, None
    nbytes = float(max(0, head - standby.replay_lsn))
    if nbytes == 0:
        return 0.0, 0.0
    if standby.last_replay_ts is None:
        # Nothing replayed since the standby started: the primary's own measure, when it has one standby.
        if primary is not None and len(primary.replicas) == 1 and primary.replicas[0].replay_lag is not None:
            return nbytes, primary.replicas[0].replay_lag
        return nbytes, None
    # Both times are on the standby's clock side: no dependency on govnet's clock.
    return nbytes, max(0.0, standby.now - standby.last_replay_ts)


@dataclass
class DbEvent:
    """Something the on-call must hear about: a role change, a failover, a split brain."""

    group: str
    device: str
    kind: str
    message: str
    timestamp: float


@dataclass
class GroupResult:
    """One poll of one database pair."""

    verdict: PairState
    members: list[MemberReading]
    samples: list[Sample]
    events: list[DbEvent] = field(default_factory=list)


class DbPairCollector:
    """Reads every member of database HA groups and keeps the previous roles to report changes."""

    def __init__(self, readers: Mapping[str, NodeReader]) -> None:
        self.readers = dict(readers)
        self._roles: dict[tuple[str, str], DbRole] = {}
        self._verdicts: dict[str, PairState] = {}
        self._changes: dict[tuple[str, str], int] = {}

    async def _read(self, device: str, expected: str) -> MemberReading:
        reader = self.readers.get(device)
        if reader is None:
            return MemberReading(device, expected, None, "no_access")
        try:
            return MemberReading(device, expected, await reader.read())
        except DbError as exc:
            log.info("database node %s unreadable: %s", device, exc.kind)
            return MemberReading(device, expected, None, exc.kind)

    async def poll_group(self, inventory: Inventory, group: HaGroup, now: float) -> GroupResult:
        """Read the members concurrently; return verdict, samples and events for this poll."""
        members = list(await asyncio.gather(*(self._read(m.device, m.expected_role) for m in group.members)))
        verdict = db_pair_state(members)
        events = self._events(group, members, verdict, now)
        return GroupResult(verdict, members, self._samples(inventory, group, members, verdict, now), events)

    def _events(
        self, group: HaGroup, members: list[MemberReading], verdict: PairState, now: float
    ) -> list[DbEvent]:
        out: list[DbEvent] = []
        for m in members:
            key = (group.name, m.device)
            before = self._roles.get(key)
            if before is not None and before != m.role:
                self._changes[key] = self._changes.get(key, 0) + 1
                out.append(DbEvent(group.name, m.device, "db_role_changed", f"{before} -> {m.role}", now))
            self._roles[key] = m.role
        previous = self._verdicts.get(group.name)
        if verdict != previous and (previous is not None or verdict != "normal"):
            primaries = ",".join(m.device for m in members if m.role == "primary") or "none"
            kind = {"failed_over": "db_failover", "split_brain": "db_split_brain"}.get(
                verdict, "db_pair_state"
            )
            out.append(DbEvent(group.name, primaries, kind, f"{previous or 'start'} -> {verdict}", now))
        self._verdicts[group.name] = verdict
        for e in out:
            log.warning("database pair %s: %s %s (%s)", e.group, e.kind, e.message, e.device)
        return out

    def _samples(
        self,
        inventory: Inventory,
        group: HaGroup,
        members: list[MemberReading],
        verdict: PairState,
        now: float,
    ) -> list[Sample]:
        out: list[Sample] = []
        primaries = [m.status for m in members if m.role == "primary" and m.status is not None]
        primary = primaries[0] if len(primaries) == 1 else None
        for m in members:
            labels = (*device_labels(inventory.device(m.device)), ("group", group.name))
            base = tuple(sorted(labels))

            def add(
                metric: str,
                value: float,
                help_: str,
                type_: Literal["gauge", "counter"] = "gauge",
                extra: tuple[tuple[str, str], ...] = (),
                base: tuple[tuple[str, str], ...] = base,
            ) -> None:
                out.append(Sample(metric, tuple(sorted((*base, *extra))), value, now, type_, help=help_))

            add("govnet_db_up", 0.0 if m.status is None else 1.0, "1 if the database node answered")
            for state in DB_ROLES:
                add("govnet_db_role", 1.0 if m.role == state else 0.0,
                    "role of a database node (stateset)", extra=(("state", state),))  # fmt: skip
            add("govnet_db_role_changes_total", float(self._changes.get((group.name, m.device), 0)),
                "role changes seen since govnet started", "counter")  # fmt: skip
            st = m.status
            if st is None:
                continue
            if st.timeline is not None:
                add("govnet_db_timeline", float(st.timeline), "WAL timeline (grows at every promotion)")
            if not st.in_recovery:
                continue
            add("govnet_db_standby_read_only", 1.0 if st.read_only else 0.0,
                "1 if the standby refuses writes (transaction_read_only)")  # fmt: skip
            add("govnet_db_replication_streaming", 1.0 if st.receiver == "streaming" else 0.0,
                "1 if the standby's WAL receiver is streaming")  # fmt: skip
            add("govnet_db_wal_replay_paused", 1.0 if st.replay_paused else 0.0,
                "1 if WAL replay is paused on the standby")  # fmt: skip
            nbytes, seconds = lag(st, primary)
            if nbytes is not None:
                add("govnet_db_replication_lag_bytes", nbytes, "WAL bytes the standby has not replayed yet")
            if seconds is not None:
                add("govnet_db_replication_lag_seconds", seconds,
                    "age of the newest replayed transaction while the standby is behind, else 0")  # fmt: skip
        for pstate in PAIR_STATES:
            labels = labels_of(group=group.name, kind=group.kind, state=pstate)
            value = 1.0 if verdict == pstate else 0.0
            out.append(Sample("govnet_ha_group_state", labels, value, now, help="HA pair verdict (stateset)"))
        return out
