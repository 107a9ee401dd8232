"""The `backups` section of `govnet run`: verify every backup job of the inventory on a schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from collectors.backup.source import LocalSource, Source, SshSource, split_path
from collectors.backup.store import BackupStore, CheckRecord
from collectors.backup.verify import BackupVerifier, JobResult, Policy, samples
from collectors.ssh.client import SshError, target_for
from collectors.ssh.exec import SshExec
from core.config import ConfigPath, Duration, Loc, Section, SectionError
from core.samples import Sample
from inventory.model import BackupJob, Inventory

log = logging.getLogger(__name__)


class BackupsSection(Section):
    """`backups:` in the run config."""

    state_dir: ConfigPath = Path(
        "state/backups"
    )  # backups.sqlite: every file seen, its checksum, each verdict
    # govnet's known_hosts (`govnet ssh trust`); default <state_dir>/known_hosts
    known_hosts: ConfigPath | None = None
    interval: Duration = 3600.0  # how often each job is checked
    jobs: list[str] | None = None  # default: every backup job of the inventory
    local_hosts: list[str] = Field(default_factory=list)  # job hosts whose paths are read on this machine
    history: int = Field(7, ge=1, le=365)
    size_drop_ratio: float = Field(0.5, gt=0, lt=1)
    rehash_every: Duration = 86400.0
    rehash_per_check: int = Field(2, ge=0, le=1000)
    ssh_timeout: Duration = 15.0
    restore_test: bool = True  # pg_restore -f /dev/null / gzip -t on each new backup, once

    def problems(self, inventory: Any) -> list[tuple[Loc, str]]:
        """Jobs and hosts named here exist in the inventory (as the service checks at start)."""
        if not isinstance(inventory, Inventory):
            return []
        try:
            backup_jobs(inventory, self)
        except SectionError as exc:
            return [(exc.loc, exc.message)]
        return []


def backup_jobs(inventory: Inventory, cfg: BackupsSection) -> list[BackupJob]:
    """The jobs to check (SectionError naming a job or local host the inventory does not have)."""
    jobs = {j.name: j for j in inventory.backup_jobs}
    for i, n in enumerate(cfg.jobs or []):
        if n not in jobs:
            raise SectionError(("jobs", i), f"no backup job {n!r} in the inventory")
    for i, host in enumerate(cfg.local_hosts):
        try:
            inventory.device(host)
        except KeyError:
            raise SectionError(("local_hosts", i), f"no device {host!r} in the inventory") from None
    return [jobs[n] for n in cfg.jobs] if cfg.jobs is not None else list(jobs.values())


class BackupChecker:
    """Everything needed to check the jobs of one deployment: store, verifier, sources."""

    def __init__(self, inventory: Inventory, cfg: BackupsSection) -> None:
        self.inventory, self.cfg = inventory, cfg
        self.jobs = backup_jobs(inventory, cfg)
        self.ssh = SshExec(cfg.known_hosts or cfg.state_dir / "known_hosts", timeout_s=cfg.ssh_timeout)
        self.store = BackupStore(cfg.state_dir / "backups.sqlite")
        policy = Policy(
            cfg.history, cfg.size_drop_ratio, cfg.rehash_every, cfg.rehash_per_check, cfg.restore_test
        )
        self.verifier = BackupVerifier(self.store, policy)

    def source(self, job: BackupJob) -> Source | SshError:
        """Where a job's files are read (an SshError when the host has no SSH access)."""
        directory, _ = split_path(job.path)
        if job.host in self.cfg.local_hosts:
            return LocalSource(directory)
        try:
            return SshSource(
                self.ssh, target_for(self.inventory, self.inventory.device(job.host), cli=False), directory
            )
        except (SshError, KeyError) as exc:
            return exc if isinstance(exc, SshError) else SshError("credentials", "host not in the inventory")

    async def check(self, job: BackupJob, now: float, trigger: str = "schedule") -> JobResult:
        """Check one job (a host without access becomes `unreachable`)."""
        source = self.source(job)
        if isinstance(source, SshError):
            result = JobResult(job.name, job.mode, "unreachable", [f"unreachable: {source.kind}"])
            previous = self.store.check(job.name)
            result.last_success = previous.last_success if previous else None
            self.store.put_check(CheckRecord(job.name, now, result.state, tuple(result.reasons), None, None,
                                             None, None, result.last_success, trigger))  # fmt: skip
            return result
        return await self.verifier.check(job, source, now, trigger)

    async def check_all(self, now: float, trigger: str = "schedule") -> list[JobResult]:
        """Check every job, a few at a time (hashing is disk-bound on the backup hosts)."""
        sem = asyncio.Semaphore(4)

        async def one(job: BackupJob) -> JobResult:
            async with sem:
                return await self.check(job, now, trigger)

        return list(await asyncio.gather(*(one(j) for j in self.jobs)))

    def close(self) -> None:
        """Close the store."""
        self.store.close()


class BackupService:
    """Checks every job each `interval`; the latest verdicts are on /metrics."""

    name = "backups"

    def __init__(self, checker: BackupChecker) -> None:
        self.checker = checker
        self._samples: list[Sample] = []
        self.results: dict[str, JobResult] = {}
        self.checks = 0

    async def run_once(self, now: float) -> list[JobResult]:
        """One pass over all jobs."""
        results = await self.checker.check_all(now)
        by_name = {j.name: j for j in self.checker.jobs}
        out: list[Sample] = []
        for r in results:
            self.results[r.job] = r
            out += samples(self.checker.inventory, by_name[r.job], r, now)
            if r.state != "ok":
                log.warning("backup job %s: %s (%s)", r.job, r.state, "; ".join(r.reasons)[:500])
        self._samples = out
        self.checks += 1
        return results

    async def run(self, stop: asyncio.Event) -> None:
        """Check at start, then every interval, until stopped."""
        try:
            while not stop.is_set():
                try:
                    await self.run_once(time.time())
                except Exception:  # a bug in one pass must not end the service
                    log.exception("backup verification pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.checker.cfg.interval)
        finally:
            self.checker.close()

    def internal_samples(self) -> list[Sample]:
        """The latest verdict samples of every job."""
        return list(self._samples)


def build(section: BackupsSection, *, inventory: Inventory) -> list[BackupService]:
    """The backup verification service (SectionError naming a job or host the inventory lacks)."""
    return [BackupService(BackupChecker(inventory, section))]
