"""Everything the routes read or act on, handed to `create_app` (no globals)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.engine import Engine
from api.audit import AuditSink
from api.auth import AuthDB, LoginLimiter
from collectors.ssh.configrepo import ConfigRepo
from core.latest import LatestStore
from inventory.model import Inventory
from inventory.topology import Topology
from logstore.signing import KeySpec
from logstore.store import LogStore


@dataclass
class ApiState:
    """The API's view of the running monitor; providers are called per request (late binding)."""

    inventory: Inventory
    auth: AuthDB
    audit: AuditSink
    session_secret: bytes
    export_dir: Path
    latest: LatestStore | None = None
    engine: Callable[[], Engine | None] = lambda: None
    logstore: Callable[[], LogStore | None] = lambda: None
    services: Callable[[], Any] = lambda: None  # collectors.services.runner.ServiceChecker
    where: Callable[[], Any] = lambda: None  # the running collectors.where WhereService (lookup(query))
    config_repo: ConfigRepo | None = None
    backup_dir: Path | None = None
    report_dir: Path | None = None
    export_key: KeySpec | None = None
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    clock: Callable[[], float] = time.time
    secure_cookies: bool = False
    session_seconds: float = 8 * 3600.0
    max_body_bytes: int = 64 * 1024  # request body limit for routes not in api.app.BODY_LIMITS
    body_timeout: float = 30.0  # seconds a request body may take to arrive
    max_log_scan: int = 100_000  # records one log search examines at most (the answer says when it stopped)
    max_connections: int = 256  # open HTTP connections (uvicorn limit_concurrency); beyond: 503
    max_connections_per_source: int = 32  # open HTTP connections per client address (api.connguard)
    header_timeout: float = 10.0  # seconds a connection has to send a request's headers
    refused: dict[str, int] = field(default_factory=dict)  # requests refused by reason (too_large ...)
    closers: list[Callable[[], None]] = field(default_factory=list)  # run when the service stops
    topology: Topology = field(init=False)

    def __post_init__(self) -> None:
        self.topology = Topology.from_inventory(self.inventory)
        self.export_dir.mkdir(parents=True, exist_ok=True)
