"""The `govnet_members` table in PostgreSQL: heartbeats in, member rows out (psycopg 3, async)."""

from __future__ import annotations

import psycopg

from collectors.cluster.membership import Member

SCHEMA = """
CREATE TABLE IF NOT EXISTS govnet_members (
    node_id    text PRIMARY KEY,
    address    text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen  timestamptz NOT NULL
)
"""

# The store's clock stamps and judges every heartbeat, so clock drift between nodes does not matter.
_BEAT = """
INSERT INTO govnet_members (node_id, address, last_seen) VALUES (%s, %s, clock_timestamp())
ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address, last_seen = EXCLUDED.last_seen
"""
_READ = """
SELECT node_id, address, extract(epoch FROM last_seen)::float8,
       extract(epoch FROM clock_timestamp())::float8
FROM govnet_members
"""


class MemberStore:
    """One connection to the shared database; any psycopg.Error / OSError is the caller's to handle."""

    def __init__(self, conninfo: str, connect_timeout: float = 3.0) -> None:
        self._conninfo = conninfo
        self._timeout = connect_timeout
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=max(1, int(self._timeout))
            )
            try:
                # Several nodes may create the table at once: serialise on an advisory lock.
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('govnet_members'))")
                    await conn.execute(SCHEMA)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def beat(self, node_id: str, address: str) -> tuple[list[Member], float]:
        """Record this node's heartbeat; return every member row and the store's current time."""
        conn = await self._connection()
        try:
            await conn.execute(_BEAT, (node_id, address))
            cur = await conn.execute(_READ)
            rows = await cur.fetchall()
        except BaseException:
            await self.close()  # reconnect on the next beat
            raise
        members = [Member(str(r[0]), str(r[1]), float(r[2])) for r in rows]  # type: ignore[arg-type]
        now = float(rows[0][3]) if rows else 0.0  # type: ignore[arg-type]
        return members, now

    async def delete(self, node_ids: list[str]) -> None:
        """Remove member rows (this node leaving, or long-dead members)."""
        if not node_ids:
            return
        conn = await self._connection()
        await conn.execute("DELETE FROM govnet_members WHERE node_id = ANY(%s)", (node_ids,))

    async def close(self) -> None:
        """Close the connection (reopened on demand)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()


STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS govnet_device_state (
    device    text PRIMARY KEY,
    node_id   text NOT NULL,
    polled_at timestamptz NOT NULL,
    samples   jsonb NOT NULL
)
"""
_PUT_STATE = """
INSERT INTO govnet_device_state (device, node_id, polled_at, samples)
VALUES (%s, %s, clock_timestamp(), %s::jsonb)
ON CONFLICT (device) DO UPDATE
SET node_id = EXCLUDED.node_id, polled_at = EXCLUDED.polled_at, samples = EXCLUDED.samples
"""
_GET_STATE = """
SELECT device, samples::text FROM govnet_device_state WHERE node_id = ANY(%s)
"""


class StateStore(MemberStore):
    """The member table plus `govnet_device_state`: each shard's latest health samples per device."""

    async def ensure_state_table(self) -> None:
        """Create the state table (under the same advisory lock as the member table)."""
        conn = await self._connection()
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('govnet_members'))")
            await conn.execute(STATE_SCHEMA)

    async def put_states(self, node_id: str, states: dict[str, str]) -> None:
        """Upsert device -> samples (JSON text) as polled by `node_id`, stamped in the store's clock."""
        if not states:
            return
        conn = await self._connection()
        async with conn.cursor() as cur:
            await cur.executemany(_PUT_STATE, [(d, node_id, js) for d, js in states.items()])

    async def peer_states(self, node_ids: list[str]) -> list[tuple[str, str]]:
        """(device, samples JSON) last written by the given (live, other) nodes."""
        if not node_ids:
            return []
        conn = await self._connection()
        cur = await conn.execute(_GET_STATE, (node_ids,))
        return [(str(r[0]), str(r[1])) for r in await cur.fetchall()]
