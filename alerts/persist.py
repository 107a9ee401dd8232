"""SQLite persistence, written synchronously: incidents (with acks), alert states, silences, outbox,
deliveries.

Every change is committed before the call that made it returns (WAL, synchronous=FULL), so kill -9 at
any moment loses no acknowledgement or silence, and a notification is either in the outbox (it will
be sent) or was never produced (the incident state that produced it was not saved either: both are
written in one transaction).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from alerts.incidents import Incident
from alerts.levels import Level
from alerts.silences import Matcher, Silence
from alerts.state import FLAP_WINDOW, AlertState

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, open INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, doc TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
  key TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
  first_at REAL NOT NULL, next_at REAL NOT NULL, last_error TEXT, PRIMARY KEY (key, channel));
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at);
CREATE TABLE IF NOT EXISTS commands (
  id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL, created REAL NOT NULL, applied REAL, error TEXT);
"""


def alert_to_json(st: AlertState) -> dict[str, Any]:
    """An alert state as JSON."""
    return {
        "rule": st.rule, "labels": [list(p) for p in st.labels], "state": st.state, "value": st.value,
        "active_since": st.active_since, "fired_at": st.fired_at, "resolved_at": st.resolved_at,
        "last_active": st.last_active, "history": list(st.history), "flapping": st.flapping,
        "flap_percent": st.flap_percent,
    }  # fmt: skip


def alert_from_json(d: dict[str, Any]) -> AlertState:
    """Inverse of alert_to_json."""
    return AlertState(
        d["rule"], tuple((k, v) for k, v in d["labels"]), d["state"], d["value"], d["active_since"],
        d["fired_at"], d["resolved_at"], d["last_active"], deque(d["history"], maxlen=FLAP_WINDOW),
        d["flapping"], d["flap_percent"],
    )  # fmt: skip


def incident_to_json(inc: Incident) -> dict[str, Any]:
    """An incident, its acknowledgement and its alerts as JSON."""
    return {
        "id": inc.id, "key": [list(p) for p in inc.key], "opened_at": inc.opened_at, "level": inc.level.value,
        "report_category": inc.report_category, "alerts": [alert_to_json(a) for a in inc.alerts.values()],
        "affected": sorted(inc.affected), "acked_by": inc.acked_by, "ack_comment": inc.ack_comment,
        "acked_at": inc.acked_at, "escalation_step": inc.escalation_step, "reported_by": inc.reported_by,
        "reported_at": inc.reported_at, "reminders": sorted(inc.reminders),
        "flap_notified": inc.flap_notified,
        "resolved_at": inc.resolved_at, "notices": inc.notices,
    }  # fmt: skip


def incident_from_json(d: dict[str, Any]) -> Incident:
    """Inverse of incident_to_json."""
    alerts = [alert_from_json(a) for a in d["alerts"]]
    simple = ("id", "opened_at", "report_category", "acked_by", "ack_comment", "acked_at", "escalation_step",
              "reported_by", "reported_at", "flap_notified", "resolved_at", "notices")  # fmt: skip
    return Incident(
        key=tuple((k, v) for k, v in d["key"]),
        level=Level(d["level"]),
        alerts={(a.rule, a.labels): a for a in alerts},
        affected=set(d["affected"]),
        reminders=set(d["reminders"]),
        **{f: d[f] for f in simple},
    )


def silence_to_json(s: Silence) -> dict[str, Any]:
    """A silence as JSON."""
    return {
        "id": s.id, "matchers": [[m.name, m.value, m.op] for m in s.matchers], "starts": s.starts,
        "ends": s.ends,
        "created_by": s.created_by, "comment": s.comment, "maintenance": s.maintenance,
    }  # fmt: skip


def silence_from_json(d: dict[str, Any]) -> Silence:
    """Inverse of silence_to_json."""
    matchers = tuple(Matcher(n, v, op) for n, v, op in d["matchers"])
    return Silence(d["id"], matchers, d["starts"], d["ends"], d["created_by"], d["comment"], d["maintenance"])


OutboxRow = tuple[str, str, float]  # (dedup key, notification JSON, created)
DueRow = tuple[str, str, int, float, str]  # (key, channel, attempts, first_at, notification JSON)


class NotLeader(RuntimeError):
    """A leader-only write was refused: this node no longer holds the leader lock (fencing)."""


class AlertStore(Protocol):
    """What the engine, the dispatcher and the operator commands need from the alert state store.

    Two implementations: `StateDB` (SQLite, one node, the default) and `alerts.persist_pg.PgStateDB`
    (PostgreSQL, shared by an HA pair). Every write is durable before the method returns.
    """

    def close(self) -> None: ...
    def get_meta(self, key: str, default: str) -> str: ...
    def open_incidents(self) -> list[Incident]: ...
    def incident(self, incident_id: str) -> Incident | None: ...
    def incidents(self, open_only: bool = True, limit: int = 200) -> list[Incident]: ...
    def silences(self) -> list[Silence]: ...
    def deliveries(self) -> list[tuple[str, str, str, int]]: ...
    def queue_command(self, doc: dict[str, Any], now: float) -> int: ...
    def pending_commands(self) -> list[tuple[int, dict[str, Any]]]: ...
    def finish_command(self, command_id: int, now: float, error: str | None) -> None: ...
    def command(self, command_id: int) -> tuple[float | None, str | None]: ...
    def save_evaluation(
        self, changed: dict[str, tuple[bool, str]], next_incident: int, outbox: list[OutboxRow],
        snapshot: str | None,
    ) -> None: ...  # fmt: skip
    def save_silence(self, silence_id: str, doc: str) -> None: ...
    def enqueue_deliveries(self, channels: tuple[str, ...], now: float) -> int: ...
    def due_deliveries(self, now: float) -> list[DueRow]: ...
    def claim_delivery(self, key: str, channel: str, now: float) -> bool: ...
    def set_delivery(
        self, key: str, channel: str, status: str, attempts: int, next_at: float, error: str | None
    ) -> None: ...
    def add_fallback(self, key: str, channel: str, now: float) -> bool: ...
    def delivery_status(self, key: str) -> dict[str, str]: ...
    def recover_in_flight(self) -> int: ...


class StateDB:
    """One SQLite file for the engine and the dispatcher; each write is durable before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # autocommit mode; transactions are explicit (BEGIN IMMEDIATE ... COMMIT)
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self.lock = threading.RLock()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed (fsync'd) on exit, rolled back on error."""
        # One connection serves the engine (event loop) and the dispatcher (worker thread) and API
        # calls (ack, silence): transactions on it must not interleave.
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # -- engine --------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str) -> str:
        """A meta value."""
        row = self.conn.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def open_incidents(self) -> list[Incident]:
        """Incidents not resolved yet."""
        rows = self.conn.execute("SELECT doc FROM incidents WHERE open = 1 ORDER BY id").fetchall()
        return [incident_from_json(json.loads(r[0])) for r in rows]

    def incident(self, incident_id: str) -> Incident | None:
        """One incident, open or not."""
        row = self.conn.execute("SELECT doc FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return incident_from_json(json.loads(row[0])) if row else None

    # -- operator commands (ack, silence...) queued by other processes -------------------------

    def queue_command(self, doc: dict[str, Any], now: float) -> int:
        """Queue an operator action for the engine (durable before returning); returns its id."""
        with self.tx() as conn:
            cur = conn.execute(
                "INSERT INTO commands (doc, created) VALUES (?, ?)",
                (json.dumps(doc, ensure_ascii=False), now),
            )
        return int(cur.lastrowid or 0)

    def pending_commands(self) -> list[tuple[int, dict[str, Any]]]:
        """Queued actions not applied yet, oldest first."""
        rows = self.conn.execute("SELECT id, doc FROM commands WHERE applied IS NULL ORDER BY id").fetchall()
        return [(int(i), json.loads(d)) for i, d in rows]

    def finish_command(self, command_id: int, now: float, error: str | None) -> None:
        """Mark a queued action applied (or refused, with the reason)."""
        with self.tx() as conn:
            conn.execute("UPDATE commands SET applied = ?, error = ? WHERE id = ?", (now, error, command_id))

    def command(self, command_id: int) -> tuple[float | None, str | None]:
        """(applied time, error) of one queued action."""
        row = self.conn.execute("SELECT applied, error FROM commands WHERE id = ?", (command_id,)).fetchone()
        return (row[0], row[1]) if row else (None, "unknown command")

    def incidents(self, open_only: bool = True, limit: int = 200) -> list[Incident]:
        """Incidents, newest first (open ones only by default)."""
        rows = self.conn.execute(
            "SELECT doc FROM incidents WHERE open >= ? ORDER BY id DESC LIMIT ?", (int(open_only), limit)
        )
        return [incident_from_json(json.loads(r[0])) for r in rows.fetchall()]

    def deliveries(self) -> list[tuple[str, str, str, int]]:
        """(notification key, channel, status, attempts) of every delivery."""
        rows = self.conn.execute(
            "SELECT key, channel, status, attempts FROM deliveries ORDER BY key, channel"
        )
        return [(str(k), str(c), str(s), int(a)) for k, c, s, a in rows.fetchall()]

    def silences(self) -> list[Silence]:
        """Every silence and maintenance window."""
        rows = self.conn.execute("SELECT doc FROM silences ORDER BY id").fetchall()
        return [silence_from_json(json.loads(r[0])) for r in rows]

    # -- writes of the engine and the dispatcher (the AlertStore interface) --------------------

    def save_evaluation(
        self, changed: dict[str, tuple[bool, str]], next_incident: int, outbox: list[OutboxRow],
        snapshot: str | None,
    ) -> None:  # fmt: skip
        """Changed incidents, the incident counter, new notifications and the console snapshot, in one
        transaction."""
        with self.tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO incidents (id, open, doc) VALUES (?, ?, ?)",
                [(i, int(o), d) for i, (o, d) in changed.items()],
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES ('next_incident', ?)", (str(next_incident),)
            )
            conn.executemany("INSERT OR IGNORE INTO outbox (key, doc, created) VALUES (?, ?, ?)", outbox)
            if snapshot is not None:
                conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('alerts', ?)", (snapshot,))

    def save_silence(self, silence_id: str, doc: str) -> None:
        """Insert or replace one silence."""
        with self.tx() as conn:
            conn.execute("INSERT OR REPLACE INTO silences (id, doc) VALUES (?, ?)", (silence_id, doc))

    def enqueue_deliveries(self, channels: tuple[str, ...], now: float) -> int:
        """One pending delivery per channel for every outbox notification that has none yet."""
        with self.tx() as conn:
            rows = conn.execute(
                "SELECT key FROM outbox WHERE key NOT IN (SELECT DISTINCT key FROM deliveries) "
                "ORDER BY created, key"
            ).fetchall()
            conn.executemany(
                "INSERT OR IGNORE INTO deliveries (key, channel, status, attempts, first_at, next_at) "
                "VALUES (?, ?, 'pending', 0, ?, ?)",
                [(key, ch, now, now) for (key,) in rows for ch in channels],
            )
        return len(rows)

    def due_deliveries(self, now: float) -> list[DueRow]:
        """Pending deliveries due at `now`, oldest notification first."""
        rows = self.conn.execute(
            "SELECT d.key, d.channel, d.attempts, d.first_at, o.doc "
            "FROM deliveries d JOIN outbox o USING (key) WHERE d.status = 'pending' AND d.next_at <= ? "
            "ORDER BY o.created, d.key, d.channel",
            (now,),
        ).fetchall()
        return [(str(k), str(c), int(a), float(f), str(d)) for k, c, a, f, d in rows]

    def claim_delivery(self, key: str, channel: str, now: float) -> bool:
        """Write-ahead: mark a pending delivery `sending` before the attempt; False if it is not pending."""
        with self.tx() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET status = 'sending' "
                "WHERE key = ? AND channel = ? AND status = 'pending'",
                (key, channel),
            )
        return cur.rowcount == 1

    def set_delivery(
        self, key: str, channel: str, status: str, attempts: int, next_at: float, error: str | None
    ) -> None:
        """Record an attempt's outcome (`sent`, `pending` for a retry, `failed`)."""
        with self.tx() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_error = ? "
                "WHERE key = ? AND channel = ?",
                (status, attempts, next_at, error, key, channel),
            )

    def add_fallback(self, key: str, channel: str, now: float) -> bool:
        """A pending delivery of `key` on the fallback `channel`; False if it already has one."""
        with self.tx() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO deliveries (key, channel, status, attempts, first_at, next_at) "
                "VALUES (?, ?, 'pending', 0, ?, ?)",
                (key, channel, now, now),
            )
        return cur.rowcount == 1

    def delivery_status(self, key: str) -> dict[str, str]:
        """channel -> status for one notification."""
        rows = self.conn.execute("SELECT channel, status FROM deliveries WHERE key = ?", (key,)).fetchall()
        return {str(c): str(s) for c, s in rows}

    def recover_in_flight(self) -> int:
        """Deliveries left `sending` by a process killed during the attempt go back to pending: the
        channel may or may not have accepted them, and a page sent twice beats a page lost
        (at-least-once, as Alertmanager). Returns how many."""
        with self.tx() as conn:
            cur = conn.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'sending'")
        return cur.rowcount
