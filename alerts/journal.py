"""The state-change journal: every reachability transition and the spans govnet itself was watching.

Availability is computed from it exactly (time-weighted), never from sampled series. A span in which
govnet was not running (no `coverage` row) is *unknown*, never up. The journal lives in govnet's own
SQLite state file (the alert engine's `state_db`); one writer, the running engine, appends to it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_state (
    device TEXT NOT NULL,
    at REAL NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_state_by_device ON journal_state (device, at);
CREATE TABLE IF NOT EXISTS journal_window (
    doc TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    first_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_coverage (
    id INTEGER PRIMARY KEY,
    start REAL NOT NULL,
    end REAL NOT NULL
);
"""

STATES = ("up", "degraded", "down", "unreachable")


@dataclass(frozen=True, slots=True)
class StateChange:
    """From `at` on, `device` was in `state` (until its next change or the end of coverage)."""

    device: str
    at: float
    state: str


class Journal:
    """Appends state changes and coverage spans; reads them back for a period."""

    def __init__(self, path: Path, gap: float = 60.0, readonly: bool = False) -> None:
        """`gap`: two observations further apart than this leave an unknown span between them."""
        self.path, self.gap = path, gap
        if readonly:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
        self.lock = threading.Lock()
        self._last: dict[str, str] = {}
        self._span: tuple[int, float] | None = None  # (coverage row id, its end)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def observe(self, states: Mapping[str, str], now: float) -> int:
        """Record one evaluation: the devices whose state changed, and that govnet watched until `now`.

        A device absent from `states` has no evidence yet and is left as it was. Returns the number of
        changes written. After a gap (govnet stopped) every device's state is written again, so a span
        never inherits a state from before a stretch nobody watched.
        """
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if self._span is not None and now - self._span[1] <= self.gap:
                    self.conn.execute(
                        "UPDATE journal_coverage SET end = ? WHERE id = ?", (now, self._span[0])
                    )
                    self._span = (self._span[0], now)
                else:
                    cur = self.conn.execute(
                        "INSERT INTO journal_coverage (start, end) VALUES (?, ?)", (now, now)
                    )
                    self._span = (int(cur.lastrowid or 0), now)
                    self._last = {}
                changes = [(d, now, s) for d, s in sorted(states.items()) if self._last.get(d) != s]
                self.conn.executemany(
                    "INSERT INTO journal_state (device, at, state) VALUES (?, ?, ?)", changes
                )
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self._last.update(states)
            return len(changes)

    def record_windows(self, docs: Sequence[tuple[str, str]], now: float) -> int:
        """Keep every maintenance window definition (name, canonical JSON) the engine ran with, so a
        later report sees the windows of its period even after the config changed."""
        with self.lock:
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT OR IGNORE INTO journal_window (doc, name, first_seen) VALUES (?, ?, ?)",
                [(doc, name, now) for name, doc in docs],
            )
            return self.conn.total_changes - before

    def windows(self) -> list[tuple[str, str]]:
        """(name, JSON) of every maintenance window ever recorded."""
        rows = self.conn.execute("SELECT name, doc FROM journal_window ORDER BY first_seen, name").fetchall()
        return [(str(n), str(d)) for n, d in rows]

    def coverage(self, start: float, end: float) -> list[tuple[float, float]]:
        """The spans govnet watched that overlap [start, end), clipped to it."""
        rows = self.conn.execute(
            "SELECT start, end FROM journal_coverage WHERE end > ? AND start < ? ORDER BY start", (start, end)
        ).fetchall()
        return [
            (max(float(a), start), min(float(b), end))
            for a, b in rows
            if min(float(b), end) > max(float(a), start)
        ]

    def changes(self, start: float, end: float) -> dict[str, list[StateChange]]:
        """Per device: its last change before `start` (the state it entered the period in) and every
        change inside [start, end), in time order."""
        out: dict[str, list[StateChange]] = {}
        before = self.conn.execute(
            "SELECT device, MAX(at), state FROM journal_state WHERE at < ? GROUP BY device", (start,)
        ).fetchall()
        for device, at, state in before:
            out.setdefault(str(device), []).append(StateChange(str(device), float(at), str(state)))
        rows = self.conn.execute(
            "SELECT device, at, state FROM journal_state WHERE at >= ? AND at < ? ORDER BY device, at, rowid",
            (start, end),
        ).fetchall()
        for device, at, state in rows:
            out.setdefault(str(device), []).append(StateChange(str(device), float(at), str(state)))
        return out
