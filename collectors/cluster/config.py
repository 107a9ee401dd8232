"""The `cluster:` section of `govnet run`: where membership lives and how fast it reacts."""

from __future__ import annotations

import socket

from pydantic import Field

from core.config import Duration, SecretRef, Section


class ClusterConfig(Section):
    """Shard this node's polling with the other members registered in the shared PostgreSQL."""

    # A libpq conninfo string or URI; a reference because it may carry a password.
    dsn: SecretRef
    node_id: str = Field(
        default_factory=socket.gethostname, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$"
    )
    address: str = Field("", max_length=256)  # advertised (e.g. its /metrics HOST:PORT), informational
    heartbeat_interval: Duration = Field(2.0, gt=0, le=300)
    missed_heartbeats: int = Field(3, ge=1, le=100)
    vnodes: int = Field(200, ge=1, le=10_000)
    connect_timeout: Duration = Field(3.0, gt=0, le=60)
    # Share each shard's device health (govnet_up, uplink oper state) through the store, so the alert
    # leader sees the whole fleet (topology-aware suppression across shards).
    share_state: bool = False
    state_metrics: tuple[str, ...] = ("govnet_up", "govnet_if_oper_up")
