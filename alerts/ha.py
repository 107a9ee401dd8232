"""Leader election for a govnet HA pair: a PostgreSQL session-level advisory lock.

The leader holds `pg_try_advisory_lock(key)` on a dedicated connection. PostgreSQL releases the lock
when that session ends, which happens at once when the leader's process dies (kill -9 closes its
socket) and within the keepalive time (about 11 s) when its machine or network goes away, so the
standby, trying the lock at every evaluation, takes over within one evaluation interval of the
release. The lock session's backend pid fences the store's leader writes (see alerts.persist_pg).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Any

import psycopg

from core.pg import connect

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a cluster name."""
    return int.from_bytes(hashlib.sha256(f"govnet-alerts:{name}".encode()).digest()[:8], "big", signed=True)


class PgLeaderElector:
    """Tries, keeps or loses the leader lock; `check()` is blocking (call it from a worker thread)."""

    def __init__(self, dsn: str, name: str, node: str) -> None:
        self._dsn = dsn
        self.key = lock_key(name)
        self.node = node
        self.leader = False
        self.changes = 0  # transitions to leader (exported as govnet_ha_leader_changes_total)
        self.backend_pid: int | None = None  # of the lock session while leader
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def check(self) -> bool:
        """True if this node leads now: keeps the lock if held (and the session is alive), else tries it."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._drop()
                    self._conn = connect(self._dsn, f"govnet-leader {self.node}")
                if self.leader:
                    # The lock lives as long as the session: a round trip proves the session lives.
                    self._conn.execute("SELECT 1")
                    return True
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s), pg_backend_pid()", (self.key,)
                ).fetchone()
                if row is not None and row[0]:
                    self.leader, self.backend_pid = True, int(row[1])
                    self.changes += 1
                    log.warning("alerts HA: %s is now the leader", self.node)
                return self.leader
            except (psycopg.Error, ConnectionError, OSError) as exc:
                if self.leader:
                    log.error("alerts HA: %s lost its lock session (%s)", self.node, type(exc).__name__)
                self._drop()
                return False

    def _drop(self) -> None:
        self.leader, self.backend_pid = False, None
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        """Give up leadership (clean stop): closing the session releases the lock at once."""
        with self._lock:
            self._drop()
