"""PostgreSQL alert store for a govnet HA pair: the same tables and JSON documents as the SQLite store.

Both nodes open it; only the leader writes incidents, the outbox and deliveries, and those writes are
fenced: each transaction checks inside PostgreSQL that the leader's lock session still holds the
advisory lock (`fence`), so a node that lost leadership without noticing (its lock session died)
cannot save an evaluation or claim a delivery. Operator commands (ack, silence...) are queued here by
`govnet alerts ...` from any machine and applied by whichever node leads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from alerts.incidents import Incident
from alerts.persist import DueRow, NotLeader, OutboxRow, incident_from_json, silence_from_json
from alerts.silences import Silence
from core.pg import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS govnet_alert_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS govnet_alert_incidents (
  id TEXT PRIMARY KEY, open BOOLEAN NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS govnet_alert_silences (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS govnet_alert_outbox (
  key TEXT PRIMARY KEY, doc TEXT NOT NULL, created DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS govnet_alert_deliveries (
  key TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
  first_at DOUBLE PRECISION NOT NULL, next_at DOUBLE PRECISION NOT NULL, last_error TEXT,
  claimed_by TEXT, PRIMARY KEY (key, channel));
CREATE INDEX IF NOT EXISTS govnet_alert_deliveries_due ON govnet_alert_deliveries (status, next_at);
CREATE TABLE IF NOT EXISTS govnet_alert_commands (
  id BIGSERIAL PRIMARY KEY, doc TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
  applied DOUBLE PRECISION, error TEXT);
"""

# Two nodes starting at once both run CREATE TABLE IF NOT EXISTS, which can race on the catalog:
# serialise schema creation with a transaction-level advisory lock of its own.
SCHEMA_LOCK = 0x676F766E6574  # "govnet"


class PgStateDB:
    """The alert store in PostgreSQL (tables `govnet_alert_*`); each write is committed before it returns."""

    def __init__(self, dsn: str, node: str = "", create: bool = True) -> None:
        self._dsn = dsn
        self.node = node
        # (backend pid of the leader lock session, lock key) while this node leads; None: unfenced
        self.fence: tuple[int, int] | None = None
        self.lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        if create:
            with self.tx() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                cur.execute(SCHEMA)

    def _connection(self) -> psycopg.Connection[Any]:
        # Reconnect after PostgreSQL restarted or the network dropped: the next call simply works again.
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self._dsn, f"govnet-alerts {self.node}".strip())
        return self._conn

    @contextmanager
    def tx(self) -> Iterator[psycopg.Cursor[Any]]:
        """A transaction on the store's connection (the lock keeps threads from interleaving)."""
        with self.lock:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    def _rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock, self._connection().cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall())

    def _fence(self, cur: psycopg.Cursor[Any]) -> None:
        """Refuse the transaction unless this node's lock session still holds the leader lock."""
        if self.fence is None:
            return
        pid, key = self.fence
        # A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low), objsubid 1.
        cur.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
            (pid, (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        )
        if cur.fetchone() is None:
            raise NotLeader("this node no longer holds the alert leader lock")

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- reads ---------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str) -> str:
        """A meta value."""
        rows = self._rows("SELECT v FROM govnet_alert_meta WHERE k = %s", (key,))
        return str(rows[0][0]) if rows else default

    def open_incidents(self) -> list[Incident]:
        """Incidents not resolved yet."""
        rows = self._rows("SELECT doc FROM govnet_alert_incidents WHERE open ORDER BY id")
        return [incident_from_json(json.loads(r[0])) for r in rows]

    def incident(self, incident_id: str) -> Incident | None:
        """One incident, open or not."""
        rows = self._rows("SELECT doc FROM govnet_alert_incidents WHERE id = %s", (incident_id,))
        return incident_from_json(json.loads(rows[0][0])) if rows else None

    def incidents(self, open_only: bool = True, limit: int = 200) -> list[Incident]:
        """Incidents, newest first (open ones only by default)."""
        rows = self._rows(
            "SELECT doc FROM govnet_alert_incidents WHERE open OR NOT %s ORDER BY id DESC LIMIT %s",
            (open_only, limit),
        )
        return [incident_from_json(json.loads(r[0])) for r in rows]

    def silences(self) -> list[Silence]:
        """Every silence and maintenance window."""
        rows = self._rows("SELECT doc FROM govnet_alert_silences ORDER BY id")
        return [silence_from_json(json.loads(r[0])) for r in rows]

    def deliveries(self) -> list[tuple[str, str, str, int]]:
        """(notification key, channel, status, attempts) of every delivery."""
        rows = self._rows(
            "SELECT key, channel, status, attempts FROM govnet_alert_deliveries ORDER BY key, channel"
        )
        return [(str(k), str(c), str(s), int(a)) for k, c, s, a in rows]

    # -- operator commands ---------------------------------------------------------------------

    def queue_command(self, doc: dict[str, Any], now: float) -> int:
        """Queue an operator action for the leader (committed before returning); returns its id."""
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO govnet_alert_commands (doc, created) VALUES (%s, %s) RETURNING id",
                (json.dumps(doc, ensure_ascii=False), now),
            )
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def pending_commands(self) -> list[tuple[int, dict[str, Any]]]:
        """Queued actions not applied yet, oldest first."""
        rows = self._rows("SELECT id, doc FROM govnet_alert_commands WHERE applied IS NULL ORDER BY id")
        return [(int(i), json.loads(d)) for i, d in rows]

    def finish_command(self, command_id: int, now: float, error: str | None) -> None:
        """Mark a queued action applied (or refused, with the reason)."""
        with self.tx() as cur:
            self._fence(cur)
            cur.execute(
                "UPDATE govnet_alert_commands SET applied = %s, error = %s WHERE id = %s",
                (now, error, command_id),
            )

    def command(self, command_id: int) -> tuple[float | None, str | None]:
        """(applied time, error) of one queued action."""
        rows = self._rows("SELECT applied, error FROM govnet_alert_commands WHERE id = %s", (command_id,))
        return (rows[0][0], rows[0][1]) if rows else (None, "unknown command")

    # -- leader writes (fenced) ----------------------------------------------------------------

    def save_evaluation(
        self, changed: dict[str, tuple[bool, str]], next_incident: int, outbox: list[OutboxRow],
        snapshot: str | None,
    ) -> None:  # fmt: skip
        """Changed incidents, the incident counter, new notifications and the console snapshot, in one
        transaction."""
        with self.tx() as cur:
            self._fence(cur)
            cur.executemany(
                "INSERT INTO govnet_alert_incidents (id, open, doc) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET open = EXCLUDED.open, doc = EXCLUDED.doc",
                [(i, o, d) for i, (o, d) in changed.items()],
            )
            meta = [("next_incident", str(next_incident))] + ([("alerts", snapshot)] if snapshot else [])
            cur.executemany(
                "INSERT INTO govnet_alert_meta (k, v) VALUES (%s, %s) "
                "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                meta,
            )
            cur.executemany(
                "INSERT INTO govnet_alert_outbox (key, doc, created) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING",
                outbox,
            )

    def save_silence(self, silence_id: str, doc: str) -> None:
        """Insert or replace one silence."""
        with self.tx() as cur:
            self._fence(cur)
            cur.execute(
                "INSERT INTO govnet_alert_silences (id, doc) VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
                (silence_id, doc),
            )

    def enqueue_deliveries(self, channels: tuple[str, ...], now: float) -> int:
        """One pending delivery per channel for every outbox notification that has none yet."""
        with self.tx() as cur:
            self._fence(cur)
            cur.execute(
                "SELECT key FROM govnet_alert_outbox o WHERE NOT EXISTS "
                "(SELECT 1 FROM govnet_alert_deliveries d WHERE d.key = o.key) ORDER BY created, key"
            )
            keys = [str(r[0]) for r in cur.fetchall()]
            cur.executemany(
                "INSERT INTO govnet_alert_deliveries (key, channel, status, attempts, first_at, next_at) "
                "VALUES (%s, %s, 'pending', 0, %s, %s) ON CONFLICT DO NOTHING",
                [(key, ch, now, now) for key in keys for ch in channels],
            )
        return len(keys)

    def due_deliveries(self, now: float) -> list[DueRow]:
        """Pending deliveries due at `now`, oldest notification first."""
        rows = self._rows(
            "SELECT d.key, d.channel, d.attempts, d.first_at, o.doc FROM govnet_alert_deliveries d "
            "JOIN govnet_alert_outbox o USING (key) WHERE d.status = 'pending' AND d.next_at <= %s "
            "ORDER BY o.created, d.key, d.channel",
            (now,),
        )
        return [(str(k), str(c), int(a), float(f), str(d)) for k, c, a, f, d in rows]

    def claim_delivery(self, key: str, channel: str, now: float) -> bool:
        """Write-ahead claim (`sending`, by this node), atomic and fenced; False if not pending anymore."""
        with self.tx() as cur:
            self._fence(cur)
            cur.execute(
                "UPDATE govnet_alert_deliveries SET status = 'sending', claimed_by = %s "
                "WHERE key = %s AND channel = %s AND status = 'pending'",
                (self.node, key, channel),
            )
            return cur.rowcount == 1

    def set_delivery(
        self, key: str, channel: str, status: str, attempts: int, next_at: float, error: str | None
    ) -> None:
        """Record an attempt's outcome (`sent` commits the notification log entry)."""
        # Not fenced: the channel already accepted (or refused) the message; recording that is always
        # right, even if leadership was lost during the attempt.
        with self.tx() as cur:
            cur.execute(
                "UPDATE govnet_alert_deliveries SET status = %s, attempts = %s, next_at = %s, "
                "last_error = %s WHERE key = %s AND channel = %s",
                (status, attempts, next_at, error, key, channel),
            )

    def add_fallback(self, key: str, channel: str, now: float) -> bool:
        """A pending delivery of `key` on the fallback `channel`; False if it already has one."""
        with self.tx() as cur:
            self._fence(cur)
            cur.execute(
                "INSERT INTO govnet_alert_deliveries (key, channel, status, attempts, first_at, next_at) "
                "VALUES (%s, %s, 'pending', 0, %s, %s) ON CONFLICT DO NOTHING",
                (key, channel, now, now),
            )
            return cur.rowcount == 1

    def delivery_status(self, key: str) -> dict[str, str]:
        """channel -> status for one notification."""
        rows = self._rows("SELECT channel, status FROM govnet_alert_deliveries WHERE key = %s", (key,))
        return {str(c): str(s) for c, s in rows}

    def recover_in_flight(self) -> int:
        """Attempts the previous leader left `sending` (it died between the claim and the `sent` commit)
        go back to pending: at-least-once, as on one node. Called by a node that just won the lock."""
        with self.tx() as cur:
            self._fence(cur)
            cur.execute("UPDATE govnet_alert_deliveries SET status = 'pending' WHERE status = 'sending'")
            return cur.rowcount
