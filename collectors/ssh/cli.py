"""CLI entry points for `govnet ssh trust|backup|diff|history` (wired into govnet/cli.py by the lead).

Exit codes: 0 done; 1 a device failed (unreachable, changed host key, backup failed); 2 bad inventory,
device name or arguments. stdout carries results; errors go to stderr. No secret is ever printed.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
import time
from pathlib import Path
from typing import TextIO

import paramiko  # type: ignore[import-untyped]

from collectors.ssh.backup import BackupOutcome, ConfigBackup, StatePaths
from collectors.ssh.client import SshRunner, SshSettings
from collectors.ssh.configrepo import ConfigRepo
from collectors.ssh.hostkeys import KnownHosts, fetch_host_key, fingerprint
from inventory.model import Device, Inventory


def _inventory(path: Path, err: TextIO) -> Inventory | None:
    from inventory.cli import load_or_report

    return load_or_report(path, err)


def _ssh_devices(inv: Inventory, names: list[str], err: TextIO) -> list[Device] | None:
    if not names:
        return [d for d in inv.devices if inv.ssh_of(d) is not None]
    out = []
    for name in names:
        try:
            device = inv.device(name)
        except KeyError:
            err.write(f"govnet: no device {name!r} in the inventory\n")
            return None
        if inv.ssh_of(device) is None:
            err.write(f"govnet: device {name} has no ssh credentials\n")
            return None
        out.append(device)
    return out


def trust_command(
    inventory: Path, device: str, known_hosts: Path, replace: bool = False, timeout_s: float = 10.0
) -> int:
    """Record the host key a device presents now; a different recorded key is kept unless `replace`."""
    out, err = sys.stdout, sys.stderr
    inv = _inventory(inventory, err)
    if inv is None:
        return 2
    devices = _ssh_devices(inv, [device], err)
    if devices is None:
        return 2
    dev = devices[0]
    creds = inv.ssh_of(dev)
    assert creds is not None
    store = KnownHosts(known_hosts)
    recorded = store.lookup(dev.address, creds.port)
    try:
        # Ask for the type already recorded first, so a re-trust compares like with like; a server
        # that no longer offers that type is asked again with paramiko's defaults.
        try:
            key = fetch_host_key(dev.address, creds.port, timeout_s, [k.get_name() for k in recorded] or None)
        except paramiko.SSHException:
            if not recorded:
                raise
            key = fetch_host_key(dev.address, creds.port, timeout_s)
    except Exception as exc:  # unreachable, no SSH, timeout: reported, never a traceback
        err.write(f"govnet: cannot read the host key of {dev.name}: {type(exc).__name__}\n")
        return 1
    result = store.record(dev.address, creds.port, key, replace=replace)
    if result.status == "refused":
        err.write(
            f"govnet: HOST KEY CHANGED for {dev.name}: recorded {result.previous}, presented "
            f"{result.fingerprint}; not trusted (verify it, then re-run with --replace)\n"
        )
        return 1
    out.write(f"{dev.name} {key.get_name()} {result.fingerprint} {result.status}\n")
    return 0


def _author() -> str:
    user = re.sub(r"[^A-Za-z0-9_.\-]", "_", getpass.getuser())[:32] or "unknown"
    return f"{user} (manual) <{user}@localhost>"


def _line(outcome: BackupOutcome) -> str:
    if not outcome.ok:
        return f"{outcome.device}: FAILED {outcome.error_kind}: {outcome.error}"
    if outcome.changed and outcome.commit:
        return f"{outcome.device}: new version {outcome.commit[:12]}"
    return f"{outcome.device}: unchanged"


async def _backup_all(
    inv: Inventory, devices: list[Device], paths: StatePaths, settings: SshSettings
) -> list[BackupOutcome]:
    runner = SshRunner(paths.known_hosts, settings)
    try:
        service = ConfigBackup.open(paths, runner)
        now = time.time()
        return list(await asyncio.gather(*(service.backup(inv, d, now, _author()) for d in devices)))
    finally:
        runner.close()


def backup_command(
    inventory: Path, state_dir: Path, devices: list[str], settings: SshSettings | None = None
) -> int:
    """Back up the running configuration of the named (or every SSH-managed) device now."""
    out, err = sys.stdout, sys.stderr
    inv = _inventory(inventory, err)
    if inv is None:
        return 2
    chosen = _ssh_devices(inv, devices, err)
    if chosen is None:
        return 2
    outcomes = asyncio.run(_backup_all(inv, chosen, StatePaths(state_dir), settings or SshSettings()))
    for outcome in outcomes:
        (out if outcome.ok else err).write(_line(outcome) + "\n")
    return 0 if all(o.ok for o in outcomes) else 1


def diff_command(state_dir: Path, device: str, back: int = 1) -> int:
    """Print the unified diff of a device's configuration from `back` versions ago to the newest."""
    repo = ConfigRepo(StatePaths(state_dir).configs)
    try:
        repo.file_of(device)
    except ValueError:
        sys.stderr.write("govnet: invalid device name\n")
        return 2
    if back < 1:
        sys.stderr.write("govnet: --back must be at least 1\n")
        return 2
    if not repo.history(device):
        sys.stderr.write(f"govnet: no stored configuration for {device}\n")
        return 1
    sys.stdout.write(repo.diff(device, back))
    return 0


def history_command(state_dir: Path, device: str) -> int:
    """List a device's stored versions, newest first: commit, UTC time, author, subject."""
    repo = ConfigRepo(StatePaths(state_dir).configs)
    try:
        versions = repo.history(device)
    except ValueError:
        sys.stderr.write("govnet: invalid device name\n")
        return 2
    for v in versions:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v.timestamp))
        sys.stdout.write(f"{v.commit[:12]} {stamp} {v.author} {v.subject}\n")
    return 0 if versions else 1


__all__ = ["backup_command", "diff_command", "fingerprint", "history_command", "trust_command"]
