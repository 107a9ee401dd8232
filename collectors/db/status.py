"""One status query for a PostgreSQL node (works on primary and standby) and its parsed result."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# One round trip, one row of JSON: identical over psql (SSH) and psycopg. Functions that fail on the
# other role are guarded by CASE (they are volatile, so never folded early). Needs pg_monitor for
# the LSN columns of pg_stat_replication (NULL without it).
STATUS_SQL = """SELECT json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'read_only', current_setting('transaction_read_only'),
  'now', extract(epoch FROM clock_timestamp()),
  'current_lsn', CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
  'receive_lsn', pg_last_wal_receive_lsn()::text,
  'replay_lsn', pg_last_wal_replay_lsn()::text,
  'replay_paused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
  'last_replay_ts', extract(epoch FROM pg_last_xact_replay_timestamp()),
  'receiver', (SELECT status FROM pg_stat_wal_receiver LIMIT 1),
  'timeline', CASE WHEN pg_is_in_recovery()
      THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1),
                    (SELECT timeline_id FROM pg_control_checkpoint()))
      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'replicas', (SELECT coalesce(json_agg(json_build_object(
      'name', application_name, 'state', state, 'sync', sync_state,
      'replay_lsn', replay_lsn::text,
      'replay_lag', extract(epoch FROM replay_lag))), '[]'::json) FROM pg_stat_replication)
)::text"""

_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


class StatusError(ValueError):
    """The node's answer is not a status row."""


def lsn_bytes(text: str | None) -> int | None:
    """A PostgreSQL LSN `X/Y` as a byte position (None when absent)."""
    if text is None:
        return None
    m = _LSN.match(text.strip())
    if not m:
        raise StatusError("malformed LSN")
    return (int(m.group(1), 16) << 32) + int(m.group(2), 16)


@dataclass(frozen=True)
class Replica:
    """A standby as its primary sees it (pg_stat_replication)."""

    name: str
    state: str
    sync: str
    replay_lsn: int | None
    replay_lag: float | None = None


@dataclass(frozen=True)
class NodeStatus:
    """What one PostgreSQL node says about itself."""

    in_recovery: bool
    read_only: bool
    now: float
    current_lsn: int | None
    receive_lsn: int | None
    replay_lsn: int | None
    replay_paused: bool | None
    last_replay_ts: float | None
    receiver: str | None
    timeline: int | None
    replicas: tuple[Replica, ...] = field(default=())

    @property
    def role(self) -> str:
        """`primary` or `standby`."""
        return "standby" if self.in_recovery else "primary"


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _opt_str(v: Any, limit: int = 64) -> str | None:
    return None if v is None else str(v)[:limit]


def parse_status(text: str) -> NodeStatus:
    """Parse the JSON row of STATUS_SQL (untrusted text: bounded, strictly typed)."""
    line = text.strip().splitlines()[-1] if text.strip() else ""
    try:
        data = json.loads(line[:1_000_000])
        if not isinstance(data, dict):
            raise StatusError("status is not an object")
        replicas = tuple(
            Replica(
                str(r["name"])[:64],
                str(r["state"])[:32],
                str(r["sync"])[:16],
                lsn_bytes(r["replay_lsn"]),
                _opt_float(r.get("replay_lag")),
            )
            for r in (data.get("replicas") or [])[:64]
        )
        return NodeStatus(
            in_recovery=bool(data["in_recovery"]),
            read_only=str(data["read_only"]) == "on",
            now=float(data["now"]),
            current_lsn=lsn_bytes(data.get("current_lsn")),
            receive_lsn=lsn_bytes(data.get("receive_lsn")),
            replay_lsn=lsn_bytes(data.get("replay_lsn")),
            replay_paused=None if data.get("replay_paused") is None else bool(data["replay_paused"]),
            last_replay_ts=_opt_float(data.get("last_replay_ts")),
            receiver=_opt_str(data.get("receiver")),
            timeline=None if data.get("timeline") is None else int(data["timeline"]),
            replicas=replicas,
        )
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, StatusError):
            raise
        raise StatusError(f"unreadable status row ({type(exc).__name__})") from None
