"""Backup state in SQLite (one file per deployment): every backup file seen and each job's last check."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  job TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL,
  sha256 TEXT NOT NULL, first_seen REAL NOT NULL, last_verified REAL NOT NULL,
  verify_ok INTEGER NOT NULL, problem TEXT, gone REAL,
  PRIMARY KEY (job, name)
);
CREATE TABLE IF NOT EXISTS checks (
  job TEXT PRIMARY KEY, time REAL NOT NULL, state TEXT NOT NULL, reasons TEXT NOT NULL,
  newest TEXT, age REAL, size INTEGER, checksum_ok INTEGER, last_success REAL, trigger TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class FileRecord:
    """A backup file as recorded when first seen (size, mtime, SHA-256) and its last verification."""

    job: str
    name: str
    size: int
    mtime: float
    sha256: str
    first_seen: float
    last_verified: float
    verify_ok: bool
    problem: str | None = None
    gone: float | None = None


@dataclass(frozen=True)
class CheckRecord:
    """The last verdict of one job."""

    job: str
    time: float
    state: str
    reasons: tuple[str, ...]
    newest: str | None
    age: float | None
    size: int | None
    checksum_ok: bool | None
    last_success: float | None
    trigger: str


class BackupStore:
    """SQLite store; every write commits at once, so a restart loses no history (WAL journal)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def files(self, job: str, include_gone: bool = True) -> list[FileRecord]:
        """Every file recorded for `job`, oldest first (by mtime)."""
        # Two constant statements; only `job` is a parameter.
        sql = "SELECT * FROM files WHERE job = ?" + ("" if include_gone else " AND gone IS NULL")  # noqa: S608
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY mtime, name", (job,)).fetchall()
        return [FileRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9]) for r in rows]

    def put_file(self, rec: FileRecord) -> None:
        """Insert or replace one file record."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?)",
                (rec.job, rec.name, rec.size, rec.mtime, rec.sha256, rec.first_seen, rec.last_verified,
                 int(rec.verify_ok), rec.problem, rec.gone),
            )  # fmt: skip

    def put_check(self, rec: CheckRecord) -> None:
        """Record a job's latest verdict."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO checks VALUES (?,?,?,?,?,?,?,?,?,?)",
                (rec.job, rec.time, rec.state, json.dumps(list(rec.reasons)), rec.newest, rec.age, rec.size,
                 None if rec.checksum_ok is None else int(rec.checksum_ok), rec.last_success, rec.trigger),
            )  # fmt: skip

    def check(self, job: str) -> CheckRecord | None:
        """A job's latest verdict (None before the first check)."""
        with self._lock:
            r = self._db.execute("SELECT * FROM checks WHERE job = ?", (job,)).fetchone()
        if r is None:
            return None
        return CheckRecord(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5], r[6],
                           None if r[7] is None else bool(r[7]), r[8], r[9])  # fmt: skip
