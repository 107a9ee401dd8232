"""`govnet backups` (wired into govnet/cli.py by the lead): list backup verdicts, or verify now.

Exit codes: 0 every listed job ok; 1 a job is not ok (or was never checked); 2 bad config or inventory.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from collectors.backup.service import BackupChecker, BackupsSection
from collectors.backup.store import CheckRecord
from core.config import SectionError


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    return f"{seconds / 3600:.1f}h"


def _checker(config: Path, err: TextIO) -> BackupChecker | None:
    from collectors.cli import load_section

    loaded = load_section(config, "backups", BackupsSection, err)
    if loaded is None:
        return None
    section, inventory, doc = loaded
    try:
        return BackupChecker(
            inventory, section or BackupsSection.model_validate({}, context={"base_dir": doc.base_dir})
        )
    except SectionError as exc:
        err.write(f"govnet: invalid config {config}\n{doc.problem(('backups', *exc.loc), exc.message)}\n")
        return None


def backups_command(
    config: Path, check: bool = False, jobs: list[str] | None = None, as_json: bool = False,
    out: TextIO | None = None, err: TextIO | None = None, now: float | None = None,
) -> int:  # fmt: skip
    """List each backup job's last verdict; with `check`, verify now first (recorded as a manual check)."""
    out, err = out or sys.stdout, err or sys.stderr
    checker = _checker(config, err)
    if checker is None:
        return 2
    try:
        selected = [j for j in checker.jobs if not jobs or j.name in jobs]
        missing = set(jobs or []) - {j.name for j in selected}
        if missing:
            err.write(f"govnet: no backup job {sorted(missing)[0]!r} in the inventory\n")
            return 2
        when = time.time() if now is None else now
        if check:

            async def run() -> None:
                for job in selected:
                    await checker.check(job, when, "manual")

            asyncio.run(run())
        records: list[tuple[str, str, CheckRecord | None]] = [
            (j.name, j.mode, checker.store.check(j.name)) for j in selected
        ]
        bad = 0
        if as_json:
            for name, mode, rec in records:
                bad += rec is None or rec.state != "ok"
                state = rec.state if rec else "unchecked"
                row: dict[str, object] = {"job": name, "mode": mode, "state": state}
                if rec is not None:
                    row |= {"reasons": list(rec.reasons), "newest": rec.newest, "age_seconds": rec.age,
                            "size_bytes": rec.size, "checksum_ok": rec.checksum_ok,
                            "last_success": rec.last_success, "checked_at": rec.time,
                            "trigger": rec.trigger}  # fmt: skip
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            out.write(f"{'JOB':<28} {'MODE':<9} {'STATE':<11} {'AGE':>6} {'SIZE':>12}  NEWEST / REASONS\n")
            for name, mode, rec in records:
                if rec is None:
                    bad += 1
                    out.write(f"{name:<28} {mode:<9} {'unchecked':<11}\n")
                    continue
                bad += rec.state != "ok"
                size = "-" if rec.size is None else str(rec.size)
                detail = "; ".join(rec.reasons) if rec.reasons else (rec.newest or "")
                out.write(f"{name:<28} {mode:<9} {rec.state:<11} {_age(rec.age):>6} {size:>12}  {detail}\n")
        return 1 if bad else 0
    finally:
        checker.close()
