"""Configuration backup: fetch over SSH, normalise, version in git, and report it as samples."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from collectors.base import PollResult, device_labels
from collectors.ssh.client import SshError, SshRunner, target_for
from collectors.ssh.configrepo import DEFAULT_AUTHOR, ConfigRepo, ConfigRepoError
from collectors.ssh.normalize import Masker, normalize_config
from core.samples import Sample
from inventory.model import Device, Inventory

log = logging.getLogger(__name__)

DAY_S = 86400.0
FETCH_ATTEMPTS = 2


@dataclass(frozen=True)
class StatePaths:
    """Where one deployment keeps its SSH state: known hosts, the config repository, the mask key."""

    root: Path

    @property
    def known_hosts(self) -> Path:
        """govnet's own known_hosts file."""
        return self.root / "known_hosts"

    @property
    def configs(self) -> Path:
        """The git repository of configuration versions."""
        return self.root / "configs"

    @property
    def mask_key(self) -> Path:
        """The HMAC key for secret fingerprints (outside the repository, 0600)."""
        return self.root / "mask_key"


def load_mask_key(path: Path) -> bytes:
    """The deployment's mask key, created (32 random bytes, mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


@dataclass
class SshEvent:
    """Something an operator must hear about (a changed host key, a new configuration version)."""

    device: str
    kind: str
    message: str
    timestamp: float


@dataclass
class BackupOutcome:
    """The result of backing up one device once."""

    device: str
    ok: bool
    changed: bool = False
    commit: str | None = None
    error_kind: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    events: list[SshEvent] = field(default_factory=list)


class ConfigBackup:
    """Backs up devices' running configurations into one git repository per deployment."""

    def __init__(self, runner: SshRunner, repo: ConfigRepo, masker: Masker) -> None:
        self.runner = runner
        self.repo = repo
        self.masker = masker

    @classmethod
    def open(cls, paths: StatePaths, runner: SshRunner | None = None) -> ConfigBackup:
        """A backup service over the state directory (runner defaults to one on its known_hosts)."""
        return cls(
            runner or SshRunner(paths.known_hosts),
            ConfigRepo(paths.configs),
            Masker(load_mask_key(paths.mask_key)),
        )

    async def backup(
        self, inventory: Inventory, device: Device, now: float, author: str = DEFAULT_AUTHOR
    ) -> BackupOutcome:
        """Fetch, normalise and store one device's configuration; device faults are reported, not raised."""
        start = time.monotonic()
        outcome = BackupOutcome(device.name, ok=False)
        try:
            target = target_for(inventory, device)
            command = target.cli.command("config")
            if command is None:
                raise SshError("no_platform", f"platform {target.cli.name} has no config command")
            for attempt in range(1, FETCH_ATTEMPTS + 1):
                (raw,) = await self.runner.run(target, [command])
                if target.cli.config_is_complete(raw):
                    break
                # netmiko can return early (seen under CPU load: only the prompt came back); storing
                # that would record a bogus "change" and then its undo.
                log.info("configuration of %s came back incomplete (attempt %d)", device.name, attempt)
            else:
                raise SshError("incomplete", "configuration output incomplete")
            text = normalize_config(raw, target.cli, self.masker)
            if not text.strip():
                raise SshError("error", "empty configuration")
            commit = await asyncio.to_thread(self.repo.save, device.name, text, now, author)
        except SshError as exc:
            outcome.error_kind, outcome.error = exc.kind, str(exc)
            if exc.kind == "hostkey_mismatch":
                outcome.events.append(SshEvent(device.name, "ssh_hostkey_mismatch", str(exc), now))
                log.warning("ssh host key of %s changed: connection refused", device.name)
        except ConfigRepoError as exc:
            outcome.error_kind, outcome.error = "repository", str(exc)
        else:
            outcome.ok, outcome.commit, outcome.changed = True, commit, commit is not None
            if commit is not None:
                outcome.events.append(
                    SshEvent(device.name, "config_changed", f"new version {commit[:12]}", now)
                )
        outcome.duration_s = time.monotonic() - start
        return outcome

    def samples(self, device: Device, outcome: BackupOutcome, now: float) -> list[Sample]:
        """The backup's metrics for one device (repository facts included even when the fetch failed)."""
        labels = device_labels(device)
        versions = self.repo.history(device.name)
        out = [
            Sample("govnet_config_backup_ok", labels, 1.0 if outcome.ok else 0.0, now,
                   help="1 if the last configuration backup succeeded"),
            Sample("govnet_config_backup_duration_seconds", labels, outcome.duration_s, now,
                   help="wall time of the last configuration backup"),
            Sample("govnet_config_versions_total", labels, float(len(versions)), now, "counter",
                   help="stored configuration versions"),
            Sample("govnet_ssh_hostkey_mismatch", labels,
                   1.0 if outcome.error_kind == "hostkey_mismatch" else 0.0, now,
                   help="1 if the device presented a host key other than the trusted one"),
            Sample("govnet_ssh_hostkey_unknown", labels,
                   1.0 if outcome.error_kind == "hostkey_unknown" else 0.0, now,
                   help="1 if no host key is trusted for the device yet"),
        ]  # fmt: skip
        if versions:
            out.append(
                Sample("govnet_config_last_change_timestamp_seconds", labels, versions[0].timestamp, now,
                       help="time the newest configuration version was stored")
            )  # fmt: skip
        return out


class ConfigBackupCollector:
    """A Collector for the scheduler: backs a device up when due (daily by default), else reports state."""

    def __init__(self, backup: ConfigBackup, every_s: float = DAY_S) -> None:
        self.backup = backup
        self.every_s = every_s
        self._last: dict[str, tuple[float, BackupOutcome]] = {}

    def due(self, device: str, now: float) -> bool:
        """Whether the device's next backup is due at `now` (a failed backup is retried next poll)."""
        last = self._last.get(device)
        return last is None or not last[1].ok or now - last[0] >= self.every_s

    def last_outcome(self, device: str) -> tuple[float, BackupOutcome] | None:
        """(time, outcome) of the device's last backup attempt, None before the first."""
        return self._last.get(device)

    async def poll(self, inventory: Inventory, device: Device, now: float) -> PollResult:
        """Back up when due; always return the backup samples."""
        start = time.monotonic()
        if self.due(device.name, now):
            outcome = await self.backup.backup(inventory, device, now)
            self._last[device.name] = (now, outcome)
        else:
            outcome = self._last[device.name][1]
        samples = await asyncio.to_thread(self.backup.samples, device, outcome, now)
        return PollResult(
            device=device.name,
            ok=outcome.ok,
            samples=samples,
            error=outcome.error_kind,
            duration_s=time.monotonic() - start,
            timeouts=1 if outcome.error_kind == "timeout" else 0,
        )
