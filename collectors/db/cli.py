"""`govnet db status` (wired into govnet/cli.py by the lead): read every database pair once and print it.

Exit codes: 0 every pair normal; 1 a pair is failed over, degraded, split or down; 2 bad config.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from collectors.db.config import db_groups, readers_for
from collectors.db.pair import DbPairCollector, GroupResult, lag
from core.config import SectionError


def db_status_command(
    config: Path, as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Poll the database pairs of the run config's `ssh.db` section once; print roles, lag, verdict."""
    from collectors.cli import load_section
    from collectors.ssh.backup import StatePaths
    from collectors.ssh.exec import SshExec
    from collectors.ssh.service import SshSection

    out, err = out or sys.stdout, err or sys.stderr
    loaded = load_section(config, "ssh", SshSection, err)
    if loaded is None:
        return 2
    found, inventory, doc = loaded
    section = found or SshSection.model_validate({}, context={"base_dir": doc.base_dir})
    try:
        groups = db_groups(inventory, section.db.groups)
    except SectionError as exc:
        err.write(f"govnet: invalid config {config}\n{doc.problem(('ssh', *exc.loc), exc.message)}\n")
        return 2
    ssh = SshExec(StatePaths(section.state_dir).known_hosts)
    collector = DbPairCollector(readers_for(inventory, groups, section.db, ssh))

    async def poll() -> list[GroupResult]:
        now = time.time()
        return list(await asyncio.gather(*(collector.poll_group(inventory, g, now) for g in groups)))

    results = asyncio.run(poll())
    bad = 0
    for group, result in zip(groups, results, strict=True):
        bad += result.verdict != "normal"
        primaries = [m.status for m in result.members if m.role == "primary" and m.status is not None]
        primary = primaries[0] if len(primaries) == 1 else None
        members = []
        for m in result.members:
            row: dict[str, object] = {"device": m.device, "expected": m.expected_role, "role": m.role}
            if m.error:
                row["error"] = m.error
            if m.status is not None and m.status.in_recovery:
                nbytes, seconds = lag(m.status, primary)
                row |= {"lag_bytes": nbytes, "lag_seconds": seconds, "read_only": m.status.read_only,
                        "receiver": m.status.receiver, "replay_paused": m.status.replay_paused}  # fmt: skip
            if m.status is not None:
                row["timeline"] = m.status.timeline
            members.append(row)
        if as_json:
            out.write(json.dumps({"group": group.name, "state": result.verdict, "members": members}) + "\n")
            continue
        out.write(f"{group.name}: {result.verdict}\n")
        for row in members:
            extra = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("device", "expected", "role"))
            out.write(f"  {row['device']:<20} {row['role']:<8} (expected {row['expected']}) {extra}\n")
    if not groups:
        err.write("govnet: no database HA group in the inventory\n")
    return 1 if bad else 0
