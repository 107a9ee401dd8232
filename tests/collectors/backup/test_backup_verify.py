"""Backup checks: fresh, stale, truncated, corrupted, deleted, missing, manual; state survives restarts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.backup.service import BackupChecker, BackupService, BackupsSection
from collectors.backup.source import sidecar_digest
from collectors.backup.verify import JobResult, samples
from core.config import validate_section
from inventory.load import load_inventory
from inventory.model import Inventory
from tests.support.procs import stop


def parse_section(data: dict[str, Any], base: Path) -> BackupsSection:
    """The `backups:` section as `govnet run` reads it (paths relative to `base`)."""
    return validate_section(BackupsSection, data, base, "backups")


DAY = 86400.0
NOW = 1_800_000_000.0


def _inventory(tmp: Path, jobs: list[dict[str, Any]], ssh: dict[str, Any] | None = None) -> Inventory:
    dev: dict[str, Any] = {
        "name": "dc-db-1",
        "site": "dc",
        "role": "db_server",
        "vendor": "linux",
        "address": "127.31.0.1",
    }
    if ssh:
        dev["ssh"] = ssh
    doc = {"sites": [{"name": "dc", "kind": "datacentre"}], "devices": [dev], "backup_jobs": jobs}
    path = tmp / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_inventory(path)


def _write(path: Path, size: int, mtime: float, fill: bytes = b"d") -> None:
    path.write_bytes((fill * (size // len(fill) + 1))[:size])
    os.utime(path, (mtime, mtime))


def _checker(tmp: Path, inv: Inventory, **extra: Any) -> BackupChecker:
    section = {"state_dir": "state", "local_hosts": ["dc-db-1"], "rehash_every": "1s", **extra}
    return BackupChecker(inv, parse_section(section, tmp))


def _check(checker: BackupChecker, job: str, now: float = NOW) -> JobResult:
    j = next(j for j in checker.jobs if j.name == job)
    return asyncio.run(checker.check(j, now, "test"))


@pytest.fixture
def daily(tmp_path: Path) -> tuple[Path, Inventory]:
    d = tmp_path / "daily"
    d.mkdir()
    for i, size in enumerate((100_000, 101_000, 102_500)):
        _write(d / f"pg-{i}.dump", size, NOW - (3 - i) * DAY + 3600, bytes([65 + i]))
    jobs = [{"name": "db-daily", "host": "dc-db-1", "path": str(d), "every": "1d", "max_age": "26h"}]
    return d, _inventory(tmp_path, jobs)


def test_fresh_backups_ok_with_metrics(tmp_path: Path, daily: Any) -> None:
    d, inv = daily
    checker = _checker(tmp_path, inv)
    r = _check(checker, "db-daily")
    assert r.state == "ok", r.reasons
    assert (r.newest, r.size, r.files, r.checksum_ok) == ("pg-2.dump", 102_500, 3, True)
    assert r.age_s == pytest.approx(DAY - 3600)
    assert r.baseline == pytest.approx(100_500)
    values = {s.metric: s.value for s in samples(inv, checker.jobs[0], r, NOW) if "state" not in s.label_dict}
    assert values["govnet_backup_ok"] == 1 and values["govnet_backup_checksum_ok"] == 1
    assert values["govnet_backup_size_bytes"] == 102_500
    assert values["govnet_backup_last_success_timestamp_seconds"] == (d / "pg-2.dump").stat().st_mtime
    s = next(s for s in samples(inv, checker.jobs[0], r, NOW) if s.metric == "govnet_backup_ok")
    assert s.label_dict == {
        "device": "dc-db-1",
        "site": "dc",
        "role": "db_server",
        "vendor": "linux",
        "backup_job": "db-daily",
        "mode": "automatic",
    }
    checker.close()


def test_stale_and_size_drop_and_recovery(tmp_path: Path, daily: Any) -> None:
    d, inv = daily
    checker = _checker(tmp_path, inv)
    assert _check(checker, "db-daily").state == "ok"
    r = _check(checker, "db-daily", NOW + 2 * DAY)  # no new backup for 3 days: older than 26 h
    assert r.state == "stale" and "pg-2.dump" in r.reasons[0]
    _write(d / "pg-3.dump", 30_000, NOW + 2 * DAY)  # a truncated dump arrives
    r = _check(checker, "db-daily", NOW + 2 * DAY + 60)
    assert r.state == "truncated" and any("pg-3.dump" in x for x in r.reasons), r.reasons
    assert r.last_success == (d / "pg-2.dump").stat().st_mtime  # the truncated one is no success
    _write(d / "pg-4.dump", 104_000, NOW + 3 * DAY, b"Z")  # the next good one
    r = _check(checker, "db-daily", NOW + 3 * DAY + 60)
    assert r.state == "ok", r.reasons
    checker.close()


def test_corruption_in_place_is_detected_and_survives_restart(tmp_path: Path, daily: Any) -> None:
    d, inv = daily
    checker = _checker(tmp_path, inv)
    assert _check(checker, "db-daily").state == "ok"
    checker.close()
    # Flip one byte of an older backup without changing its size or time: only the checksum can tell.
    victim = d / "pg-1.dump"
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[500] ^= 0xFF
    victim.write_bytes(bytes(data))
    os.utime(victim, (st.st_atime, st.st_mtime))
    checker = _checker(tmp_path, inv)  # a restart: the recorded checksums come from the SQLite state
    r = _check(checker, "db-daily", NOW + 10)
    assert r.state == "corrupt" and any("pg-1.dump" in x and "no longer matches" in x for x in r.reasons)
    assert r.checksum_ok is True  # the newest one is fine; the old one is named
    # newest corrupted as well -> checksum_ok 0
    newest = d / "pg-2.dump"
    st = newest.stat()
    newest.write_bytes(b"X" + newest.read_bytes()[1:])
    os.utime(newest, (st.st_atime, st.st_mtime))
    r = _check(checker, "db-daily", NOW + 20)
    assert r.state == "corrupt" and r.checksum_ok is False
    stored = checker.store.check("db-daily")
    assert stored is not None and stored.state == "corrupt" and stored.trigger == "test"
    checker.close()


def test_rolling_rehash_reaches_every_file(tmp_path: Path, daily: Any) -> None:
    _d, inv = daily
    checker = _checker(tmp_path, inv, rehash_per_check=1)
    assert _check(checker, "db-daily").hashed == 3  # every new file is hashed once
    assert _check(checker, "db-daily", NOW + 0.5).hashed == 0  # nothing due within rehash_every (1 s)
    counts = [_check(checker, "db-daily", NOW + 10 * i).hashed for i in (1, 2, 3)]
    assert counts == [2, 2, 2]  # the newest every time, plus one older file in turn
    verified = {f.name: f.last_verified for f in checker.store.files("db-daily")}
    assert min(verified.values()) >= NOW + 10  # each older file was re-hashed within two checks
    checker.close()


def test_deleted_and_missing_are_named(tmp_path: Path, daily: Any) -> None:
    d, inv = daily
    checker = _checker(tmp_path, inv)
    assert _check(checker, "db-daily").state == "ok"
    (d / "pg-2.dump").unlink()
    r = _check(checker, "db-daily", NOW + 10)
    assert r.state == "missing" and "deleted: pg-2.dump" in r.reasons
    for f in d.iterdir():
        f.unlink()
    r = _check(checker, "db-daily", NOW + 20)
    assert r.state == "missing" and r.files == 0 and r.age_s is None
    assert r.last_success is not None  # remembered from earlier checks
    d.rmdir()
    r = _check(checker, "db-daily", NOW + 30)
    assert r.state == "unreachable"
    checker.close()


def test_sidecar_checksum_written_by_the_backup_tool(tmp_path: Path, daily: Any) -> None:
    d, inv = daily
    import hashlib

    good = hashlib.sha256((d / "pg-2.dump").read_bytes()).hexdigest()
    (d / "pg-2.dump.sha256").write_text(f"{good}  pg-2.dump\n")
    (d / "SHA256SUMS").write_text("0" * 64 + "  pg-1.dump\n")  # wrong from the start
    checker = _checker(tmp_path, inv)
    r = _check(checker, "db-daily")
    assert r.files == 3  # sidecars are not backups
    assert r.state == "corrupt" and any("pg-1.dump" in x and "backup tool" in x for x in r.reasons), r.reasons
    assert sidecar_digest("x", {"x.sha256": "nonsense"}) == "invalid"
    checker.close()


def test_test_restore_of_gzip_backups(tmp_path: Path) -> None:
    import gzip

    d = tmp_path / "gz"
    d.mkdir()
    payload = os.urandom(200_000)
    for i in range(2):
        (d / f"cfg-{i}.tar.gz").write_bytes(gzip.compress(payload))
        os.utime(d / f"cfg-{i}.tar.gz", (NOW - (2 - i) * 3600, NOW - (2 - i) * 3600))
    inv = _inventory(tmp_path, [{"name": "gz", "host": "dc-db-1", "path": str(d)}])
    checker = _checker(tmp_path, inv)
    assert _check(checker, "gz").state == "ok"
    good = gzip.compress(payload)
    (d / "cfg-2.tar.gz").write_bytes(good[: len(good) - 100])  # the size is normal, the stream ends early
    os.utime(d / "cfg-2.tar.gz", (NOW - 60, NOW - 60))
    r = _check(checker, "gz", NOW)
    assert r.state == "corrupt" and r.reasons == ["corrupt: cfg-2.tar.gz (test restore with gzip failed)"]
    checker.close()


def test_manual_series_semantics(tmp_path: Path) -> None:
    auto, manual = tmp_path / "auto", tmp_path / "manual"
    auto.mkdir()
    manual.mkdir()
    for d in (auto, manual):
        _write(d / "a.dump", 5000, NOW - 3 * DAY)
    # Both series in one directory, told apart by a name pattern.
    _write(auto / "manual-1.dump", 5000, NOW - 1 * DAY)
    jobs = [
        {
            "name": "auto",
            "host": "dc-db-1",
            "path": str(auto / "a*.dump"),
            "mode": "automatic",
            "max_age": "26h",
        },
        {
            "name": "manual",
            "host": "dc-db-1",
            "path": str(manual),
            "mode": "manual",
            "every": "7d",
            "max_age": "8d",
        },
        {
            "name": "manual-in-auto",
            "host": "dc-db-1",
            "path": str(auto / "manual-*.dump"),
            "mode": "manual",
            "max_age": "8d",
        },
    ]
    inv = _inventory(tmp_path, jobs)
    checker = _checker(tmp_path, inv)
    assert _check(checker, "auto").state == "stale"  # 3 days old, automatic: the automation broke
    r = _check(checker, "manual")
    assert r.state == "ok" and r.mode == "manual"  # 3 days old, within the manual series' 8 days
    assert _check(checker, "manual-in-auto").files == 1
    r = _check(checker, "manual", NOW + 6 * DAY)
    assert r.state == "overdue" and "a.dump" in r.reasons[0]  # an operator's task, not a broken job
    labels = {s.label_dict["mode"] for s in samples(inv, checker.jobs[1], r, NOW)}
    assert labels == {"manual"}
    checker.close()


def test_service_runs_and_publishes(tmp_path: Path, daily: Any) -> None:
    from collectors.backup.service import build

    _d, inv = daily
    section = parse_section({"state_dir": "st", "local_hosts": ["dc-db-1"], "interval": "1h"}, tmp_path)
    (service,) = build(section, inventory=inv)
    assert isinstance(service, BackupService)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        for _ in range(200):
            if service.checks:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(go())
    ok = [s for s in service.internal_samples() if s.metric == "govnet_backup_ok"]
    assert [s.value for s in ok] == [1.0]
    assert (tmp_path / "st" / "backups.sqlite").exists()
    with pytest.raises(ValueError, match=r"backups\.interval"):
        parse_section({"interval": "soon"}, tmp_path)
    with pytest.raises(ValueError, match=r"backups\.surprise"):
        parse_section({"surprise": 1}, tmp_path)
    with pytest.raises(ValueError, match="no backup job 'nope'"):
        build(parse_section({"jobs": ["nope"]}, tmp_path), inventory=inv)


def _config(tmp: Path, listen: str | None = None) -> Path:
    cfg: dict[str, Any] = {
        "inventory": "inventory.yaml",
        "backups": {"state_dir": "st", "local_hosts": ["dc-db-1"], "interval": "1h"},
    }
    if listen:
        cfg["prometheus"] = {"listen": listen}
    path = tmp / "govnet.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_backups_command_lists_and_checks(tmp_path: Path, daily: Any) -> None:
    import io
    import json

    from collectors.backup.cli import backups_command

    d, _inv = daily
    config = _config(tmp_path)
    out = io.StringIO()
    assert backups_command(config, out=out, err=io.StringIO()) == 1  # never checked yet
    assert "unchecked" in out.getvalue()
    out = io.StringIO()
    assert backups_command(config, check=True, out=out, now=NOW) == 0
    assert "db-daily" in out.getvalue() and " ok " in out.getvalue() and "pg-2.dump" in out.getvalue()
    _write(d / "pg-3.dump", 0, NOW + 30)  # tonight's job wrote an empty file
    out = io.StringIO()
    assert backups_command(config, check=True, as_json=True, out=out, now=NOW + 60) == 1
    row = json.loads(out.getvalue())
    assert row["state"] == "truncated" and row["trigger"] == "manual" and "pg-3.dump" in row["reasons"][0]
    err = io.StringIO()
    assert backups_command(config, jobs=["nope"], out=io.StringIO(), err=err) == 2


def test_govnet_run_serves_backup_metrics(tmp_path: Path, daily: Any) -> None:
    """End to end: `govnet run` with a backups section puts the verdicts on /metrics."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.31.0.9", 0))
        port = s.getsockname()[1]
    config = _config(tmp_path, f"127.31.0.9:{port}")
    govnet = Path(sys.executable).parent / "govnet"
    proc = subprocess.Popen([str(govnet), "run", "--config", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        body = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "govnet_backup_ok{" not in body:
            time.sleep(0.2)
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read() if proc.stderr else "govnet run exited")
            try:
                with urllib.request.urlopen(f"http://127.31.0.9:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
            except OSError:
                continue
        line = next(x for x in body.splitlines() if x.startswith("govnet_backup_ok{"))
        assert 'backup_job="db-daily"' in line and 'mode="automatic"' in line and line.endswith(" 1.0")
        assert "govnet_backup_age_seconds{" in body and "govnet_backup_checksum_ok{" in body
    finally:
        stop(proc)
