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
    latest: Any = None  # core.latest.LatestStore
    engine: Callable[[], Engine | None] = lambda: None
    logstore: Callable[[], LogStore | None] = lambda: None
    config_repo: ConfigRepo | None = None
    backup_dir: Path | None = None
    report_dir: Path | None = None
    export_key: KeySpec | None = None
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    clock: Callable[[], float] = time.time
    secure_cookies: bool = False
    session_seconds: float = 8 * 3600.0
    closers: list[Callable[[], None]] = field(default_factory=list)  # run when the service stops
    topology: Topology = field(init=False)

    def __post_init__(self) -> None:
        self.topology = Topology.from_inventory(self.inventory)
        self.export_dir.mkdir(parents=True, exist_ok=True)
