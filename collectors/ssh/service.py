"""The `ssh` section of `govnet run`: config backups on schedule, HA pairs over the CLI, database pairs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from collectors.db.config import DbSection, db_groups, readers_for
from collectors.db.pair import DbEvent, DbPairCollector
from collectors.ssh.backup import ConfigBackup, ConfigBackupCollector, SshEvent, StatePaths
from collectors.ssh.client import SshRunner, SshSettings
from collectors.ssh.exec import SshExec
from collectors.ssh.ha import HaCollector
from collectors.ssh.platform import platform_for
from core.config import ConfigPath, Duration, Loc, Section, SectionError
from core.samples import Sample
from inventory.model import Device, HaGroup, Inventory

log = logging.getLogger(__name__)

EVENTS_KEPT = 1000


class SettingsSection(Section):
    """`ssh.settings`: session limits (see collectors.ssh.client.SshSettings)."""

    max_workers: int = Field(16, ge=1, le=256)
    per_device: int = Field(1, ge=1, le=8)
    conn_timeout: Duration = 5.0
    banner_timeout: Duration = 10.0
    auth_timeout: Duration = 10.0
    read_timeout: Duration = 30.0
    deadline: Duration = 90.0


class ConfigBackupSection(Section):
    """`ssh.config_backup`: fetch running configurations every `every`, retry failures every `retry`."""

    enabled: bool = True
    every: Duration = 86400.0
    retry: Duration = 300.0
    devices: list[str] | None = None  # default: every device with ssh credentials and a CLI platform


class HaSection(Section):
    """`ssh.ha`: non-database HA groups read over the CLI every `interval`."""

    enabled: bool = True
    interval: Duration = 30.0
    groups: list[str] | None = None  # default: every ha_group whose kind is not database


class DbPart(DbSection):
    """`ssh.db`: as DbSection, plus an on/off switch."""

    enabled: bool = True


class SshSection(Section):
    """`ssh:` in the run config."""

    state_dir: ConfigPath = Path("state/ssh")  # known_hosts, configs/ (git), mask_key
    settings: SettingsSection = Field(default_factory=SettingsSection)
    config_backup: ConfigBackupSection = Field(default_factory=ConfigBackupSection)
    ha: HaSection = Field(default_factory=HaSection)
    db: DbPart = Field(default_factory=DbPart)

    def problems(self, inventory: Any) -> list[tuple[Loc, str]]:
        """Devices and groups named here exist in the inventory (as the service checks at start)."""
        if not isinstance(inventory, Inventory):
            return []
        out: list[tuple[Loc, str]] = []
        for check in (
            lambda: backup_devices(inventory, self.config_backup.devices),
            lambda: ha_groups(inventory, self.ha.groups),
            lambda: db_groups(inventory, self.db.groups),
        ):
            try:
                check()
            except SectionError as exc:
                out.append((exc.loc, exc.message))
        return out


def backup_devices(inventory: Inventory, names: list[str] | None) -> list[Device]:
    """Devices whose configuration is backed up (SectionError naming an unknown device)."""
    if names is None:
        out = []
        for d in inventory.devices:
            creds = inventory.ssh_of(d)
            platform = platform_for(d.vendor.value, creds.platform) if creds else None
            if platform is not None and platform.command("config"):
                out.append(d)
        return out
    devices = []
    for i, n in enumerate(names):
        try:
            devices.append(inventory.device(n))
        except KeyError:
            raise SectionError(("config_backup", "devices", i), f"no device {n!r} in the inventory") from None
    return devices


def ha_groups(inventory: Inventory, names: list[str] | None) -> list[HaGroup]:
    """Non-database HA groups to read over the CLI (SectionError naming an unknown group)."""
    known = {g.name: g for g in inventory.ha_groups}
    if names is None:
        return [g for g in inventory.ha_groups if g.kind != "database"]
    for i, n in enumerate(names):
        if n not in known:
            raise SectionError(("ha", "groups", i), f"no HA group {n!r} in the inventory")
    return [known[n] for n in names]


class SshService:
    """Runs the three SSH jobs as loops of one service; the latest samples of each are on /metrics."""

    name = "ssh"

    def __init__(self, inventory: Inventory, cfg: SshSection) -> None:
        self.inventory, self.cfg = inventory, cfg
        paths = StatePaths(cfg.state_dir)
        s = cfg.settings
        self.runner = SshRunner(paths.known_hosts, SshSettings(
            s.max_workers, s.per_device, s.conn_timeout, s.banner_timeout, s.auth_timeout, s.read_timeout,
            s.deadline))  # fmt: skip
        self.backup_devices = backup_devices(inventory, cfg.config_backup.devices)
        self.ha_groups = ha_groups(inventory, cfg.ha.groups)
        self.db_groups = db_groups(inventory, cfg.db.groups)
        self.config_collector: ConfigBackupCollector | None = None
        if cfg.config_backup.enabled and self.backup_devices:
            self.config_collector = ConfigBackupCollector(
                ConfigBackup.open(paths, self.runner), cfg.config_backup.every
            )
        self.ha = HaCollector(self.runner)
        readers = readers_for(inventory, self.db_groups, cfg.db, SshExec(paths.known_hosts))
        self.db = DbPairCollector(readers)
        self._samples: dict[tuple[str, str], list[Sample]] = {}
        self.events: deque[SshEvent | DbEvent] = deque(maxlen=EVENTS_KEPT)
        self.passes: dict[str, int] = {"config_backup": 0, "ha": 0, "db": 0}

    async def config_pass(self, now: float) -> None:
        """Back up every due device (ConfigBackupCollector decides what is due)."""
        assert self.config_collector is not None
        collector = self.config_collector

        async def one(device: Device) -> None:
            before = collector.last_outcome(device.name)
            result = await collector.poll(self.inventory, device, now)
            self._samples[("config", device.name)] = list(result.samples)
            after = collector.last_outcome(device.name)
            if after is not None and after is not before:
                self.events.extend(after[1].events)

        await asyncio.gather(*(one(d) for d in self.backup_devices))
        self.passes["config_backup"] += 1

    async def ha_pass(self, now: float) -> None:
        """Read every HA group once."""
        for group in self.ha_groups:
            _verdict, samples = await self.ha.poll_group(self.inventory, group, now)
            self._samples[("ha", group.name)] = samples
        self.passes["ha"] += 1

    async def db_pass(self, now: float) -> None:
        """Read every database pair once."""
        results = await asyncio.gather(*(self.db.poll_group(self.inventory, g, now) for g in self.db_groups))
        for group, result in zip(self.db_groups, results, strict=True):
            self._samples[("db", group.name)] = result.samples
            self.events.extend(result.events)
        self.passes["db"] += 1

    async def _loop(self, stop: asyncio.Event, what: str, step: Callable[[float], Awaitable[None]],
                    interval: float) -> None:  # fmt: skip
        while not stop.is_set():
            try:
                await step(time.time())
            except Exception:  # a bug in one pass must not end the service; device faults never get here
                log.exception("ssh %s pass failed", what)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def run(self, stop: asyncio.Event) -> None:
        """Run the enabled loops until `stop` is set."""
        loops = []
        if self.config_collector is not None:
            loops.append(self._loop(stop, "config_backup", self.config_pass, self.cfg.config_backup.retry))
        if self.cfg.ha.enabled and self.ha_groups:
            loops.append(self._loop(stop, "ha", self.ha_pass, self.cfg.ha.interval))
        if self.cfg.db.enabled and self.db_groups:
            loops.append(self._loop(stop, "db", self.db_pass, self.cfg.db.interval))
        try:
            await asyncio.gather(*loops)
        finally:
            self.runner.close()

    def internal_samples(self) -> list[Sample]:
        """The latest samples of every device and group."""
        return [s for samples in list(self._samples.values()) for s in samples]


def build(section: SshSection, *, inventory: Inventory) -> list[SshService]:
    """The SSH service (SectionError naming a device or group the inventory lacks)."""
    return [SshService(inventory, section)]
