"""Audit records of every change, export and login: into the tamper-evident log store when one is
shared with the API, else into a hash-chained SQLite table of the API's own."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from logstore.control import append_audit
from logstore.record import iso_utc
from logstore.store import LogStore


def _refreshed(store: LogStore) -> LogStore:
    store.refresh()  # a reader sees what the writer appended since its last look
    return store


@dataclass(frozen=True)
class AuditEntry:
    """One audit record as the API lists it (等保 2.0: time, user, event type, outcome)."""

    seq: int
    ts: str
    user: str
    action: str
    target: str
    outcome: str
    client: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return self.__dict__.copy()


class AuditSink(Protocol):
    """Where audit records go; `record` is durable when it returns."""

    backend: str

    def record(self, user: str, action: str, target: str, outcome: str, client: str, detail: str) -> None:
        """Write one record durably."""
        ...

    def page(
        self, offset: int, limit: int, user: str | None, action: str | None
    ) -> tuple[int, list[AuditEntry]]:
        """(total matching, the page) newest first."""
        ...


class LogStoreAudit:
    """Audit records as `event_type=audit` records of the log store (hash chain, exports, retention)."""

    backend = "logstore"

    def __init__(self, store: LogStore) -> None:
        self.store = store

    def record(self, user: str, action: str, target: str, outcome: str, client: str, detail: str) -> None:
        """Append one audit record (fsynced before returning): directly when this process is the
        store's writer, else through the running writer's control socket (raises AuditUnavailable)."""
        append_audit(
            self.store,
            {
                "action": action,
                "outcome": outcome,
                "user": user,
                "src_ip": client or None,
                "app": "govnet-api",
                "rule": target[:200] or None,
                "msg": detail[:2000] or None,
            },
        )

    def page(
        self, offset: int, limit: int, user: str | None, action: str | None
    ) -> tuple[int, list[AuditEntry]]:
        """Audit records of the store, newest first."""
        rows = [
            AuditEntry(
                rec["seq"],
                rec["recv_ts"],
                rec.get("user") or "",
                rec.get("action") or "",
                rec.get("rule") or "",
                rec.get("outcome") or "",
                rec.get("src_ip") or "",
                rec.get("msg") or "",
            )
            for rec, _ in _refreshed(self.store).iter_records(event_type="audit")
            if (user is None or rec.get("user") == user) and (action is None or rec.get("action") == action)
        ]
        rows.reverse()
        return len(rows), rows[offset : offset + limit]


SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
  target TEXT NOT NULL, outcome TEXT NOT NULL, client TEXT NOT NULL, detail TEXT NOT NULL,
  prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"""


class SqliteAudit:
    """Append-only, hash-chained audit table (used when no log store is shared with the API)."""

    backend = "sqlite"

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self.lock = threading.Lock()

    def record(self, user: str, action: str, target: str, outcome: str, client: str, detail: str) -> None:
        """Append one chained record (parameterised SQL only: text from users is data, never SQL)."""
        row = [iso_utc(self.clock()), user, action, target[:200], outcome, client, detail[:2000]]
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                last = self.conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                prev = last[0] if last else "0" * 64
                digest = hashlib.sha256((prev + json.dumps(row, ensure_ascii=False)).encode()).hexdigest()
                self.conn.execute(
                    "INSERT INTO audit (ts, user, action, target, outcome, client, detail, prev, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*row, prev, digest),
                )
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def page(
        self, offset: int, limit: int, user: str | None, action: str | None
    ) -> tuple[int, list[AuditEntry]]:
        """A page of records, newest first."""
        where, args = (
            "WHERE (? IS NULL OR user = ?) AND (? IS NULL OR action = ?)",
            [user, user, action, action],
        )
        with self.lock:
            total = self.conn.execute(f"SELECT count(*) FROM audit {where}", args).fetchone()[0]  # noqa: S608
            rows = self.conn.execute(
                "SELECT seq, ts, user, action, target, outcome, client, detail FROM audit "  # noqa: S608
                f"{where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return int(total), [AuditEntry(*r) for r in rows]

    def verify(self) -> list[int]:
        """Sequence numbers whose chain hash does not match (empty: intact)."""
        bad = []
        prev = "0" * 64
        with self.lock:
            rows = self.conn.execute(
                "SELECT seq, ts, user, action, target, outcome, client, detail, prev, hash "
                "FROM audit ORDER BY seq"
            ).fetchall()
        for seq, *row, p, h in rows:
            want = hashlib.sha256((prev + json.dumps(row, ensure_ascii=False)).encode()).hexdigest()
            if p != prev or h != want:
                bad.append(seq)
            prev = h
        return bad
