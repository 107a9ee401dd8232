"""The `db` part of the `ssh` section: which database pairs, how often, how each node is reached."""

from __future__ import annotations

from pydantic import Field

from collectors.db.access import DbAccess, NodeReader, PsqlOverSsh, SqlReader
from collectors.ssh.client import SshError, target_for
from collectors.ssh.exec import SshExec
from core.config import Duration, Section, SectionError
from inventory.model import HaGroup, Inventory


class DbSection(Section):
    """`ssh.db`: database pairs (ha_groups of kind database) polled every `interval`."""

    interval: Duration = 15.0
    groups: list[str] | None = None  # default: every ha_group of kind database
    default: DbAccess = Field(default_factory=DbAccess)
    access: dict[str, DbAccess] = Field(default_factory=dict)  # per device name


def db_groups(inventory: Inventory, names: list[str] | None) -> list[HaGroup]:
    """The database groups to watch (SectionError, within the `ssh` section, naming an unknown group)."""
    groups = {g.name: g for g in inventory.ha_groups}
    if names is None:
        return [g for g in inventory.ha_groups if g.kind == "database"]
    for i, n in enumerate(names):
        if n not in groups:
            raise SectionError(("db", "groups", i), f"no HA group {n!r} in the inventory")
    return [groups[n] for n in names]


def readers_for(
    inventory: Inventory, groups: list[HaGroup], section: DbSection, ssh: SshExec
) -> dict[str, NodeReader]:
    """One reader per member: SQL where `transport: sql`, psql over SSH otherwise.

    A member with ssh transport but no ssh credentials gets no reader (reported as down, `no_access`).
    """
    out: dict[str, NodeReader] = {}
    for group in groups:
        for member in group.members:
            device = inventory.device(member.device)
            access = section.access.get(device.name, section.default)
            if access.transport == "sql":
                out[device.name] = SqlReader(device.address, access)
                continue
            try:
                out[device.name] = PsqlOverSsh(ssh, target_for(inventory, device, cli=False), access)
            except SshError:
                continue
    return out
