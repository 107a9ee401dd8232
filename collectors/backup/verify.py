"""One verification pass of a backup job: list, record new files, re-check checksums, judge, emit samples."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import Literal

import asyncssh

from collectors.backup.source import (
    SUMS_FILES,
    FileEntry,
    Session,
    Source,
    is_backup_name,
    sidecar_digest,
    split_path,
)
from collectors.backup.store import BackupStore, CheckRecord, FileRecord
from collectors.base import device_labels
from collectors.ssh.client import SshError
from core.samples import Sample, labels_of
from inventory.model import BackupJob, Inventory

log = logging.getLogger(__name__)

BackupState = Literal["ok", "unreachable", "missing", "corrupt", "truncated", "stale", "overdue"]
# Worst first: the job's state is the worst of its findings.
STATES: tuple[BackupState, ...] = ("unreachable", "missing", "corrupt", "truncated", "stale", "overdue", "ok")


@dataclass(frozen=True)
class Policy:
    """How strictly backups are judged."""

    history: int = 7  # previous backups whose median size is the baseline
    size_drop_ratio: float = 0.5  # newest smaller than baseline * (1 - ratio) is truncated
    rehash_every_s: float = 86400.0  # re-hash a recorded file at most this often
    rehash_per_check: int = 2  # older files re-hashed per check (rolling), besides the newest
    restore_test: bool = True  # read each new backup once with its format's tool (pg_restore, gzip -t)


@dataclass
class JobResult:
    """The verdict of one check of one job."""

    job: str
    mode: str
    state: BackupState
    reasons: list[str] = field(default_factory=list)
    newest: str | None = None
    age_s: float | None = None
    size: int | None = None
    baseline: float | None = None
    checksum_ok: bool | None = None
    last_success: float | None = None
    files: int = 0
    hashed: int = 0


def judge(findings: list[BackupState]) -> BackupState:
    """The worst finding (ok when none)."""
    return min(findings, key=STATES.index) if findings else "ok"


class BackupVerifier:
    """Checks backup jobs against their recorded history in a BackupStore."""

    def __init__(self, store: BackupStore, policy: Policy | None = None) -> None:
        self.store = store
        self.policy = policy or Policy()

    async def check(self, job: BackupJob, source: Source, now: float, trigger: str = "schedule") -> JobResult:
        """Verify one job now; never raises for host or file faults (they become the verdict)."""
        result = JobResult(job.name, job.mode, "ok")
        try:
            async with source.open() as session:
                await self._verify(job, session, now, result)
        except (SshError, OSError, asyncssh.Error) as exc:
            kind = exc.kind if isinstance(exc, SshError) else type(exc).__name__
            result.state, result.reasons = "unreachable", [f"unreachable: {kind}"]
            log.warning("backup job %s: cannot read %s (%s)", job.name, source.directory, kind)
            previous = self.store.check(job.name)
            result.last_success = previous.last_success if previous else None
        self.store.put_check(CheckRecord(job.name, now, result.state, tuple(result.reasons), result.newest,
                                         result.age_s, result.size, result.checksum_ok, result.last_success,
                                         trigger))  # fmt: skip
        return result

    async def _verify(self, job: BackupJob, session: Session, now: float, result: JobResult) -> None:
        _, pattern = split_path(job.path)
        entries = await session.list()
        sidecars: dict[str, str] = {}
        for e in entries:
            if e.name.endswith((".sha256", ".sha256sum")) or e.name in SUMS_FILES:
                text = await session.read_small(e.name)
                if text is not None:
                    sidecars[e.name] = text
        backups = sorted(
            (e for e in entries if is_backup_name(e.name, pattern)), key=lambda e: (e.mtime, e.name)
        )
        known = {r.name: r for r in self.store.files(job.name)}
        findings: list[BackupState] = []
        previous_check = self.store.check(job.name)
        # Files recorded before that are gone now: a deleted newest backup is named.
        present = {e.name for e in backups}
        for rec in known.values():
            if rec.gone is None and rec.name not in present:
                self.store.put_file(_replace(rec, gone=now))
                if previous_check is not None and previous_check.newest == rec.name:
                    findings.append("missing")
                    result.reasons.append(f"deleted: {rec.name}")
        recs: dict[str, FileRecord] = {}
        to_rehash = self._rehash_plan(backups, known, now)
        for e in backups:
            recs[e.name] = await self._record(job, session, e, known.get(e.name), sidecars, now,
                                              e.name in to_rehash, result)  # fmt: skip
        for e in backups:
            rec = recs[e.name]
            if not rec.verify_ok:
                findings.append("corrupt")
                result.reasons.append(f"corrupt: {e.name} ({rec.problem})")
        result.files = len(backups)
        if not backups:
            findings.append("missing")
            result.reasons.append(f"missing: no backup in {job.path}")
            result.last_success = previous_check.last_success if previous_check else None
            result.state = judge(findings)
            return
        newest = backups[-1]
        rec = recs[newest.name]
        result.newest, result.size = newest.name, newest.size
        result.age_s = max(0.0, now - newest.mtime)
        result.checksum_ok = rec.verify_ok
        history = [r.size for r in self.store.files(job.name) if r.mtime < newest.mtime][
            -self.policy.history :
        ]
        truncated = newest.size == 0
        if history:
            result.baseline = float(statistics.median(history))
            truncated = truncated or newest.size < result.baseline * (1 - self.policy.size_drop_ratio)
        if truncated:
            findings.append("truncated")
            result.reasons.append(f"truncated: {newest.name} is {newest.size} B, recent median "
                                  f"{result.baseline or 0:.0f} B")  # fmt: skip
        if result.age_s > job.max_age:
            # A manual series that fell behind is an operator's overdue task, not broken automation.
            late: BackupState = "overdue" if job.mode == "manual" else "stale"
            findings.append(late)
            hours, limit = result.age_s / 3600, job.max_age / 3600
            result.reasons.append(f"{late}: newest {newest.name} is {hours:.1f} h old (max {limit:.1f} h)")
        good = [e for e in backups if recs[e.name].verify_ok and not (e is newest and truncated)]
        result.last_success = (
            good[-1].mtime if good else (previous_check.last_success if previous_check else None)
        )
        result.state = judge(findings)

    def _rehash_plan(self, backups: list[FileEntry], known: dict[str, FileRecord], now: float) -> set[str]:
        """The newest backup when due, plus the least recently verified older ones (rolling)."""
        due = [
            e
            for e in backups
            if e.name in known and now - known[e.name].last_verified >= self.policy.rehash_every_s
        ]
        plan = {backups[-1].name} & {e.name for e in due} if backups else set()
        older = sorted((e for e in due if e.name not in plan), key=lambda e: known[e.name].last_verified)
        plan |= {e.name for e in older[: self.policy.rehash_per_check]}
        return plan

    async def _record(
        self, job: BackupJob, session: Session, e: FileEntry, rec: FileRecord | None,
        sidecars: dict[str, str], now: float, rehash: bool, result: JobResult,
    ) -> FileRecord:  # fmt: skip
        """Record a new file (hash, compare with the tool's sidecar) or re-verify a known one."""
        expected = sidecar_digest(e.name, sidecars)
        if rec is None or rec.gone is not None:
            digest = await session.sha256(e.name)
            result.hashed += 1
            problem = None
            if expected == "invalid":
                problem = "unreadable checksum file"
            elif expected is not None and expected != digest:
                problem = "checksum differs from the backup tool's"
            elif self.policy.restore_test:
                problem = await session.test_restore(e.name)
            new = FileRecord(job.name, e.name, e.size, e.mtime, digest, now, now, problem is None, problem)
            self.store.put_file(new)
            return new
        if not rec.verify_ok:
            return rec  # once corrupt, stays named until the file is replaced
        changed = e.size != rec.size or abs(e.mtime - rec.mtime) > 1e-3
        if not (rehash or changed):
            return rec
        digest = await session.sha256(e.name)
        result.hashed += 1
        problem = None
        if digest != rec.sha256:
            problem = "checksum no longer matches the recorded one"
        elif changed:
            problem = "size or time changed after it was recorded"
        new = _replace(rec, last_verified=now, verify_ok=problem is None, problem=problem)
        self.store.put_file(new)
        return new


def _replace(rec: FileRecord, **kw: object) -> FileRecord:
    from dataclasses import replace

    return replace(rec, **kw)  # type: ignore[arg-type]


def samples(inventory: Inventory, job: BackupJob, r: JobResult, now: float) -> list[Sample]:
    """The job's metrics, with the host's device labels plus `backup_job` and `mode`."""
    try:
        base = device_labels(inventory.device(job.host))
    except KeyError:
        base = labels_of(device=job.host)
    labels = tuple(sorted((*base, ("backup_job", job.name), ("mode", job.mode))))
    ok_help = "1 if the newest backup is present, fresh, of normal size and its checksum holds"
    out = [
        Sample("govnet_backup_ok", labels, 1.0 if r.state == "ok" else 0.0, now, help=ok_help),
        Sample("govnet_backup_files", labels, float(r.files), now, help="backup files present"),
    ]
    for state in STATES:
        state_labels = tuple(sorted((*labels, ("state", state))))
        out.append(Sample("govnet_backup_state", state_labels, 1.0 if r.state == state else 0.0, now,
                          help="backup verdict (stateset)"))  # fmt: skip
    if r.age_s is not None:
        out.append(Sample("govnet_backup_age_seconds", labels, r.age_s, now, help="age of the newest backup"))
    if r.size is not None:
        out.append(
            Sample("govnet_backup_size_bytes", labels, float(r.size), now, help="size of the newest backup")
        )
    if r.baseline is not None:
        out.append(Sample("govnet_backup_size_baseline_bytes", labels, r.baseline, now,
                          help="median size of the previous backups"))  # fmt: skip
    if r.checksum_ok is not None:
        out.append(Sample("govnet_backup_checksum_ok", labels, 1.0 if r.checksum_ok else 0.0, now,
                          help="1 if the newest backup still has the checksum recorded first"))  # fmt: skip
    if r.last_success is not None:
        out.append(Sample("govnet_backup_last_success_timestamp_seconds", labels, r.last_success, now,
                          help="time of the newest backup that passed verification"))  # fmt: skip
    return out
