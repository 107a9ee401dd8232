"""HA pair state over the CLI (`display hrp state`, `show failover`, RBM status)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from collectors.base import device_labels
from collectors.ssh.client import SshError, SshRunner, target_for
from collectors.ssh.platform import MAX_LINE, Platform
from core.samples import Sample, labels_of
from inventory.model import HaGroup, Inventory

MemberRole = Literal["active", "standby", "down", "unknown"]
PairState = Literal["normal", "failed_over", "degraded", "split_brain", "no_active", "down"]
MEMBER_ROLES: tuple[MemberRole, ...] = ("active", "standby", "down", "unknown")
PAIR_STATES: tuple[PairState, ...] = ("normal", "failed_over", "degraded", "split_brain", "no_active", "down")
_KNOWN: dict[str, MemberRole] = {"active": "active", "standby": "standby", "down": "down"}
_EXPECTED = {"active": "active", "primary": "active", "standby": "standby", "secondary": "standby"}


@dataclass(frozen=True)
class HaReading:
    """What one member says about itself (and its peer, when the command shows it)."""

    role: MemberRole
    peer: MemberRole | None = None


def _role(platform: Platform, word: str) -> MemberRole:
    assert platform.ha is not None
    mapped = platform.ha.roles.get(" ".join(word.lower().split()), "")
    return _KNOWN.get(mapped, "unknown")


def parse_ha(platform: Platform, text: str) -> HaReading | None:
    """This member's role from the platform's `ha` command output; None when HA is off or not shown."""
    if platform.ha is None:
        return None
    role: MemberRole | None = None
    peer: MemberRole | None = None
    for line in text.splitlines():
        line = line[:MAX_LINE]
        if role is None and (m := platform.ha.role.search(line)):
            role = _role(platform, m.group("role"))
            if "peer" in m.re.groupindex and m.group("peer"):
                peer = _role(platform, m.group("peer"))
        if platform.ha.peer is not None and peer is None and (p := platform.ha.peer.search(line)):
            peer = _role(platform, p.group("peer"))
    return None if role is None else HaReading(role, peer)


def pair_state(members: list[tuple[str, MemberRole]]) -> PairState:
    """The pair verdict from (expected role, observed role) per member; `down` covers unreachable members."""
    up = [(exp, obs) for exp, obs in members if obs in ("active", "standby")]
    actives = [exp for exp, obs in up if obs == "active"]
    if len(actives) >= 2:
        return "split_brain"
    if not up:
        return "down"
    if len(up) < len(members):
        return "degraded" if actives else "down"
    if not actives:
        return "no_active"
    return "normal" if _EXPECTED.get(actives[0]) == "active" else "failed_over"


class HaCollector:
    """Reads every member of an HA group over SSH and turns the readings into samples."""

    def __init__(self, runner: SshRunner) -> None:
        self.runner = runner

    async def _member(self, inventory: Inventory, name: str) -> tuple[MemberRole, str | None]:
        try:
            target = target_for(inventory, inventory.device(name))
            command = target.cli.command("ha")
            if command is None:
                return "unknown", "no_platform"
            (text,) = await self.runner.run(target, [command])
        except SshError as exc:
            return "down", exc.kind  # unreachable over SSH: treated as a member down
        reading = parse_ha(target.cli, text)
        return (reading.role if reading else "unknown"), None

    async def poll_group(
        self, inventory: Inventory, group: HaGroup, now: float
    ) -> tuple[PairState, list[Sample]]:
        """The group's state and its samples: member role statesets and the pair state stateset."""
        results = await asyncio.gather(*(self._member(inventory, m.device) for m in group.members))
        samples: list[Sample] = []
        for member, (role, _error) in zip(group.members, results, strict=True):
            labels = device_labels(inventory.device(member.device))
            for state in MEMBER_ROLES:
                samples.append(
                    Sample(
                        "govnet_ha_member_role",
                        tuple(sorted((*labels, ("group", group.name), ("state", state)))),
                        1.0 if role == state else 0.0,
                        now,
                        help="HA role of a member read over the CLI (stateset)",
                    )
                )
        verdict = pair_state([(m.expected_role, r) for m, (r, _) in zip(group.members, results, strict=True)])
        for pstate in PAIR_STATES:
            samples.append(
                Sample(
                    "govnet_ha_group_state",
                    labels_of(group=group.name, kind=group.kind, state=pstate),
                    1.0 if verdict == pstate else 0.0,
                    now,
                    help="HA pair verdict read over the CLI (stateset)",
                )
            )
        return verdict, samples
