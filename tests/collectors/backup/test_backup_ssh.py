"""Backups on a DB host over real SSH/SFTP (OpenSSH sshd), with real pg_dump files as the backups."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.backup.service import BackupChecker, BackupsSection
from collectors.backup.verify import JobResult
from collectors.ssh.cli import trust_command
from core.config import validate_section
from inventory.load import load_inventory
from inventory.model import Inventory
from tests.support.db import PgPair, Sshd, as_postgres, make_pg_pair, sshd  # noqa: F401  (fixture)


def parse_section(data: dict[str, Any], base: Path) -> BackupsSection:
    """The `backups:` section as `govnet run` reads it (paths relative to `base`)."""
    return validate_section(BackupsSection, data, base, "backups")


DAY = 86400.0


@pytest.fixture(scope="module")
def primary() -> Iterator[PgPair]:
    yield from make_pg_pair(with_standby=False)


def _dump(pair: PgPair, dest: Path, mtime: float, rows: int) -> None:
    """A real `pg_dump -Fc` of a database growing by `rows` rows each day."""
    pair.primary.sql(f"INSERT INTO t (v) SELECT md5(g::text) FROM generate_series(1, {rows}) g")
    data = subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(pair.primary.bindir / "pg_dump"),
            "-Fc",
            "-h",
            str(pair.primary.sockdir),
            "-p",
            str(pair.primary.port),
            "-d",
            "postgres",
        ],
        capture_output=True,
        check=True,
    ).stdout
    dest.write_bytes(data)
    os.utime(dest, (mtime, mtime))


@pytest.fixture
def setup(primary: PgPair, sshd: Sshd) -> Iterator[tuple[Inventory, Path, Path, Path]]:  # noqa: F811
    work = Path(tempfile.mkdtemp(prefix="govnet-bk-", dir="/tmp"))
    try:
        backups = work / "pgsql" / "daily"
        backups.mkdir(parents=True)
        now = 1_800_000_000.0
        for i in range(3):
            _dump(primary, backups / f"postgres-{i}.dump", now - (3 - i) * DAY, 2000)
        doc = {
            "sites": [{"name": "dc", "kind": "datacentre"}],
            "devices": [
                {
                    "name": "dc-db-1",
                    "site": "dc",
                    "role": "db_server",
                    "vendor": "linux",
                    "address": sshd.address,
                    "ssh": {"username": "root", "key_file": f"file:{sshd.client_key}", "port": sshd.port},
                }
            ],
            "backup_jobs": [{"name": "pg-daily", "host": "dc-db-1", "path": str(backups), "max_age": "26h"}],
        }
        (work / "inv.yaml").write_text(yaml.safe_dump(doc))
        known = work / "known_hosts"
        assert trust_command(work / "inv.yaml", "dc-db-1", known) == 0
        yield load_inventory(work / "inv.yaml"), backups, known, work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check(checker: BackupChecker, now: float) -> JobResult:
    return asyncio.run(checker.check(checker.jobs[0], now, "test"))


def test_pg_dump_backups_over_sftp(setup: Any, primary: PgPair) -> None:
    inv, backups, known, work = setup
    checker = BackupChecker(
        inv,
        parse_section(
            {
                "state_dir": str(work / "st"),
                "known_hosts": str(known),
                "rehash_every": "1s",
                "rehash_per_check": 10,
            },
            work,
        ),
    )
    now = 1_800_000_000.0
    r = _check(checker, now)
    assert r.state == "ok", r.reasons
    assert r.files == 3 and r.newest == "postgres-2.dump" and r.hashed == 3
    recorded = {f.name: f.sha256 for f in checker.store.files("pg-daily")}
    for name, digest in recorded.items():  # sha256sum on the host == hashlib here
        assert digest == hashlib.sha256((backups / name).read_bytes()).hexdigest()
    # A dump that lost only its tail: the size looks normal, the test restore (pg_restore) fails.
    _dump(primary, backups / "postgres-3.dump", now + 3600, 2000)
    full = (backups / "postgres-3.dump").read_bytes()
    (backups / "postgres-3.dump").write_bytes(full[: len(full) * 95 // 100])
    os.utime(backups / "postgres-3.dump", (now + 3600, now + 3600))
    r = _check(checker, now + 7200)
    assert r.state == "corrupt" and r.checksum_ok is False, r.reasons
    assert r.reasons == ["corrupt: postgres-3.dump (test restore with pg_restore failed)"]
    # A dump cut off in the middle (disk full during the nightly job): truncated by size as well
    _dump(primary, backups / "postgres-4.dump", now + 2 * 3600, 2000)
    full = (backups / "postgres-4.dump").read_bytes()
    (backups / "postgres-4.dump").write_bytes(full[: len(full) // 5])
    os.utime(backups / "postgres-4.dump", (now + 2 * 3600, now + 2 * 3600))
    r = _check(checker, now + 3 * 3600)
    assert any(x.startswith("truncated: postgres-4.dump") for x in r.reasons), r.reasons
    assert "corrupt: postgres-4.dump (test restore with pg_restore failed)" in r.reasons
    # Bit rot in a stored dump
    victim = backups / "postgres-1.dump"
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    os.utime(victim, (st.st_atime, st.st_mtime))
    r = _check(checker, now + 4 * 3600)
    assert r.state == "corrupt" and any("postgres-1.dump" in x and "no longer" in x for x in r.reasons), (
        r.reasons
    )
    # Deleted
    (backups / "postgres-4.dump").unlink()
    r = _check(checker, now + 5 * 3600)
    assert "deleted: postgres-4.dump" in r.reasons
    checker.close()


def test_unknown_and_changed_host_key_refused(setup: Any) -> None:
    inv, _backups, known, work = setup
    empty = work / "empty_known_hosts"
    empty.write_text("")
    checker = BackupChecker(
        inv, parse_section({"state_dir": str(work / "st2"), "known_hosts": str(empty)}, work)
    )
    r = _check(checker, 1_800_000_000.0)
    assert r.state == "unreachable" and r.reasons == ["unreachable: hostkey_unknown"]
    checker.close()
    # Same address, another key recorded: a changed host key
    other = work / "other_known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "k")], check=True)
    line = (
        known.read_text().split()[0]
        + " "
        + (work / "k.pub").read_text().split(" ", 2)[0]
        + " "
        + (work / "k.pub").read_text().split(" ", 2)[1]
    )
    other.write_text(line + "\n")
    checker = BackupChecker(
        inv, parse_section({"state_dir": str(work / "st3"), "known_hosts": str(other)}, work)
    )
    r = _check(checker, 1_800_000_000.0)
    assert r.state == "unreachable" and r.reasons == ["unreachable: hostkey_mismatch"]
    checker.close()
