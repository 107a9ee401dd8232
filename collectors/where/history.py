"""Address history: (ip, mac, device, port, vlan, first_seen, last_seen) intervals in SQLite or PostgreSQL.

Compaction is by construction: a sweep that sees the same tuple again extends its open interval
(in memory; written at most every `flush_every`, and when the tuple disappears), so a host that
stays on its port for months is one row, and a row is added only when something changes (a move,
a new address, a return after more than `merge_gap` unseen). MACs are stored as integers, times as
whole seconds; rows whose last sighting is older than `retention` are deleted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.where.resolve import Host

# Rows are updated by id (an open interval keeps its row's id in memory) and last_seen is not indexed:
# extending thousands of intervals per flush touches no index. The daily prune scans the table.
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS where_history (
  id INTEGER PRIMARY KEY, mac INTEGER NOT NULL, ip TEXT NOT NULL, device TEXT NOT NULL, port TEXT NOT NULL,
  vlan INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS where_history_mac ON where_history (mac);
CREATE INDEX IF NOT EXISTS where_history_ip ON where_history (ip);
"""
PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS govnet_where_history (
  id BIGSERIAL PRIMARY KEY, mac BIGINT NOT NULL, ip TEXT NOT NULL, device TEXT NOT NULL, port TEXT NOT NULL,
  vlan INTEGER NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS govnet_where_history_mac ON govnet_where_history (mac);
CREATE INDEX IF NOT EXISTS govnet_where_history_ip ON govnet_where_history (ip);
"""
PG_SCHEMA_LOCK = 0x676F766E6574 + 16  # serialises CREATE TABLE between the two nodes of a pair


@dataclass(frozen=True, slots=True)
class Seen:
    """One history row."""

    ip: str
    mac: int
    device: str
    port: str
    vlan: int | None
    first_seen: int
    last_seen: int


class _Db:
    """The few statements the history needs, on SQLite or PostgreSQL (one connection, one lock)."""

    def __init__(self, path: Path | None = None, dsn: str | None = None) -> None:
        self.lock = threading.Lock()
        self.pg = dsn is not None
        self.table = "govnet_where_history" if self.pg else "where_history"
        self.path = path
        if dsn is not None:
            from core.pg import connect

            self.conn: Any = connect(dsn, "govnet-where")
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_SCHEMA_LOCK,))
                for stmt in PG_SCHEMA.split(";"):
                    if stmt.strip():
                        self.conn.execute(stmt)
        else:
            assert path is not None
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SQLITE_SCHEMA)

    def q(self, sql: str) -> str:
        # Two nodes of a pair may both write a row: last_seen never moves backwards.
        sql = sql.replace("{t}", self.table).replace("{greatest}", "GREATEST" if self.pg else "MAX")
        return sql.replace("?", "%s") if self.pg else sql

    @contextmanager
    def tx(self) -> Iterator[Any]:
        with self.lock:
            if self.pg:
                with self.conn.transaction(), self.conn.cursor() as cur:
                    yield cur
            else:
                cur = self.conn.cursor()
                cur.execute("BEGIN")
                try:
                    yield cur
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise

    def select(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            if self.pg:
                with self.conn.cursor() as cur:
                    cur.execute(self.q(sql), args)
                    return list(cur.fetchall())
            return list(self.conn.execute(self.q(sql), args).fetchall())

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _row(r: Sequence[Any]) -> Seen:
    return Seen(r[1], int(r[0]), r[2], r[3], int(r[4]) or None, int(r[5]), int(r[6]))


_SELECT = "SELECT mac, ip, device, port, vlan, first_seen, last_seen, id FROM {t} "
_INSERT = "INSERT INTO {t} (mac, ip, device, port, vlan, first_seen, last_seen) VALUES (?,?,?,?,?,?,?)"
_UPDATE = "UPDATE {t} SET last_seen = {greatest}(last_seen, ?) WHERE id = ?"


class History:
    """The address history with its open intervals; `record` once per sweep, time passed in."""

    def __init__(
        self,
        *,
        path: Path | None = None,
        dsn: str | None = None,
        merge_gap: float = 3 * 86400.0,
        flush_every: float = 900.0,
    ) -> None:
        self.db = _Db(path, dsn)
        self.merge_gap = merge_gap
        self.flush_every = flush_every
        # Host -> [first_seen, last_seen, last_seen as stored, row id]
        self.open: dict[Host, list[int]] = {}
        self.loaded = False

    def _load(self, now: int) -> None:
        rows = self.db.select(_SELECT + "WHERE last_seen >= ?", (int(now - self.merge_gap),))
        for r in rows:
            s = _row(r)
            h = Host(s.ip, s.mac, s.device, s.port, s.vlan)
            cur = self.open.get(h)
            if cur is None or cur[0] < s.first_seen:
                self.open[h] = [s.first_seen, s.last_seen, s.last_seen, int(r[7])]
        self.loaded = True

    def record(self, hosts: set[Host], now_f: float) -> tuple[int, int]:
        """Take one sweep's hosts; returns (rows inserted, rows updated)."""
        now = int(now_f)
        if not self.loaded:
            self._load(now)
        new: list[Host] = []
        updates: list[tuple[int, int]] = []  # (last_seen, id)
        for h in hosts:
            cur = self.open.get(h)
            if cur is not None and now - cur[1] <= self.merge_gap:
                cur[1] = now
                if now - cur[2] >= self.flush_every:
                    updates.append((now, cur[3]))
                    cur[2] = now
            else:
                if cur is not None and cur[2] != cur[1]:
                    updates.append((cur[1], cur[3]))
                new.append(h)
        if new and self.db.pg:
            new = self._adopt(new, now, updates)
        for h, cur in list(self.open.items()):
            if h in hosts:
                continue
            if cur[2] != cur[1]:  # gone this sweep: write its exact last sighting
                updates.append((cur[1], cur[3]))
                cur[2] = cur[1]
            if now - cur[1] > self.merge_gap:
                del self.open[h]
        if new or updates:
            with self.db.tx() as cur:
                ids = self._insert(cur, [(*self._key(h), now, now) for h in new])
                if updates:
                    cur.executemany(self.db.q(_UPDATE), updates)
            for h, row_id in zip(new, ids, strict=True):
                self.open[h] = [now, now, now, row_id]
        return len(new), len(updates)

    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> list[int]:
        """Insert rows, returning their ids in order."""
        if not rows:
            return []
        if self.db.pg:
            cur.executemany(self.db.q(_INSERT + " RETURNING id"), rows, returning=True)
            ids = []
            while True:
                ids.append(int(cur.fetchone()[0]))
                if not cur.nextset():
                    break
            return ids
        out = []
        sql = self.db.q(_INSERT)
        for row in rows:
            cur.execute(sql, row)
            out.append(int(cur.lastrowid))
        return out

    def _adopt(self, new: list[Host], now: int, updates: list[tuple[int, int]]) -> list[Host]:
        """Shared store (HA pair): a new tuple the other node already has an open row for extends that
        row instead of starting a second one (one query per sweep for all new tuples)."""
        macs = sorted({h.mac for h in new})
        rows = self.db.select(
            _SELECT + "WHERE mac = ANY(?) AND last_seen >= ?", (macs, int(now - self.merge_gap))
        )
        theirs: dict[Host, tuple[int, int]] = {}
        for r in rows:
            h = Host(r[1], int(r[0]), r[2], r[3], int(r[4]) or None)
            if h not in theirs or theirs[h][0] < int(r[5]):
                theirs[h] = (int(r[5]), int(r[7]))
        keep = []
        for h in new:
            got = theirs.get(h)
            if got is None:
                keep.append(h)
                continue
            self.open[h] = [got[0], now, now, got[1]]
            updates.append((now, got[1]))
        return keep

    @staticmethod
    def _key(h: Host) -> tuple[Any, ...]:
        return (h.mac, h.ip, h.device, h.port, h.vlan or 0)

    def flush(self) -> None:
        """Write every open interval's last sighting (on shutdown)."""
        updates = [(c[1], c[3]) for c in self.open.values() if c[2] != c[1]]
        if updates:
            with self.db.tx() as cur:
                cur.executemany(
                    self.db.q(_UPDATE),
                    updates,
                )
            for c in self.open.values():
                c[2] = c[1]

    def prune(self, now: float, retention: float) -> int:
        """Delete rows last seen before now - retention; returns how many."""
        with self.db.tx() as cur:
            cur.execute(self.db.q("DELETE FROM {t} WHERE last_seen < ?"), (int(now - retention),))
            return int(cur.rowcount or 0)

    def _fresh(self, rows: list[Seen]) -> list[Seen]:
        """Rows with the in-memory last sighting of open intervals, newest first."""
        out = []
        for s in rows:
            cur = self.open.get(Host(s.ip, s.mac, s.device, s.port, s.vlan))
            if cur is not None and cur[0] == s.first_seen:
                s = Seen(s.ip, s.mac, s.device, s.port, s.vlan, s.first_seen, max(s.last_seen, cur[1]))
            out.append(s)
        return sorted(out, key=lambda s: (-s.last_seen, -s.first_seen, s.device, s.port))

    def by_ip(self, ip: str, limit: int = 200) -> list[Seen]:
        """History of an address, newest first."""
        rows = self.db.select(_SELECT + "WHERE ip = ? ORDER BY last_seen DESC LIMIT ?", (ip, limit))
        return self._fresh([_row(r) for r in rows])

    def by_mac(self, mac: int, limit: int = 200) -> list[Seen]:
        """History of a MAC, newest first."""
        rows = self.db.select(_SELECT + "WHERE mac = ? ORDER BY last_seen DESC LIMIT ?", (mac, limit))
        return self._fresh([_row(r) for r in rows])

    def count(self) -> int:
        """Rows stored."""
        return int(self.db.select("SELECT count(*) FROM {t}")[0][0])

    def close(self) -> None:
        """Flush open intervals and close the connection."""
        self.flush()
        self.db.close()
