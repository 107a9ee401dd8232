"""`api:` section of `govnet run`: the API and console served by uvicorn inside the asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator

import uvicorn
from pydantic import Field, model_validator

from alerts.engine import Engine
from api.app import create_app
from api.audit import AuditSink, LogStoreAudit, SqliteAudit
from api.auth import AuthDB, LoginLimiter
from api.connguard import ConnectionGuard
from api.state import ApiState
from collectors.services.runner import ServiceChecker
from collectors.ssh.configrepo import ConfigRepo
from collectors.where.service import WhereService
from core.config import ConfigPath, HostPort, SecretRef, Section, split_host_port
from core.latest import LatestStore
from core.samples import Sample
from inventory.model import Inventory
from logstore.signing import KeySpec
from logstore.store import LogStore

log = logging.getLogger(__name__)


class ApiSection(Section):
    """The `api:` section."""

    listen: HostPort = "127.0.0.1:9820"
    state_dir: ConfigPath  # users.db (users, tokens, sessions), audit.db, exports/
    session_secret: SecretRef  # signs CSRF tokens; a reference, never a literal
    export_hmac_key: SecretRef | None = None
    export_ed25519_key: SecretRef | None = None
    logstore_dir: ConfigPath | None = None  # opened here only when no syslog service shares its store
    config_repo: ConfigPath | None = None
    backup_dir: ConfigPath | None = None
    report_dir: ConfigPath | None = (
        None  # monthly reports to list and download (the `reports:` section's dir)
    )
    session_hours: float = Field(8.0, gt=0, le=24 * 30)
    secure_cookies: bool = False  # set true behind TLS
    login_max_failures: int = Field(5, ge=1, le=100)  # free failures per (user, client) before delays
    session_idle_minutes: float = Field(30.0, gt=0, le=24 * 60)  # unused sessions end after this
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)  # login routes: 4 KiB
    body_timeout: float = Field(30.0, gt=0, le=600)  # seconds a request body may take
    max_connections: int = Field(256, ge=1, le=100_000)  # open HTTP connections; beyond: 503
    max_connections_per_source: int = Field(32, ge=1, le=100_000)  # per client address; beyond: cut
    header_timeout: float = Field(10.0, gt=0, le=600)  # seconds to send a request's headers
    max_log_scan: int = Field(100_000, ge=1000, le=100_000_000)  # records one log search examines

    @model_validator(mode="after")
    def _one_key(self) -> ApiSection:
        if self.export_hmac_key is not None and self.export_ed25519_key is not None:
            raise ValueError("give at most one of export_hmac_key and export_ed25519_key")
        return self


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: `govnet run` owns SIGINT/SIGTERM and sets `stop`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiService:
    """Serves the app until `stop` is set."""

    name = "api"

    def __init__(self, state: ApiState, host: str, port: int) -> None:
        self.state, self.host, self.port = state, host, port
        self.app = create_app(state)
        self.server: _Server | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Run uvicorn as a task of this loop; shut it down gracefully on stop."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=False,  # X-Forwarded-* never change the client address
            limit_concurrency=self.state.max_connections,
            timeout_keep_alive=5,
            http=ConnectionGuard(
                self.state.max_connections_per_source, self.state.header_timeout, self.state.refused
            ).protocol(),
        )
        self.server = _Server(config)
        task = asyncio.create_task(self.server.serve())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            self.server.should_exit = True
            with contextlib.suppress(SystemExit):  # uvicorn exits on a bind error: logged, not fatal
                await task
            if not stop.is_set():
                log.error("api: server on %s:%s stopped (address in use?)", self.host, self.port)
        finally:
            stopper.cancel()
            for close in self.state.closers:
                close()

    def internal_samples(self) -> list[Sample]:
        """Requests refused before reaching a route, and the login limiter's size."""
        now = time.time()
        out = [
            Sample(
                "govnet_api_refused_total", (("reason", reason),), float(count), now, "counter",
                "API requests refused before a route ran (too_large, too_slow, cross_site).",
            )
            for reason, count in sorted(self.state.refused.items())
        ]  # fmt: skip
        out.append(
            Sample(
                "govnet_api_login_limiter_keys", (), float(len(self.state.limiter)), now, "gauge",
                "(user, client) pairs and clients the login limiter remembers (bounded).",
            )
        )  # fmt: skip
        return out


def build_state(
    cfg: ApiSection,
    *,
    inventory: Inventory,
    latest: LatestStore | None,
    engine: Engine | None = None,
    logstore: LogStore | None = None,
    services: ServiceChecker | None = None,
    where: WhereService | None = None,
) -> tuple[ApiState, str, int]:
    """Assemble the ApiState: the shared log store (the syslog service's) or, failing that, its own."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    closers: list[Callable[[], None]] = []
    store = logstore
    if store is None and cfg.logstore_dir is not None:
        store = LogStore(cfg.logstore_dir)
        closers.append(store.close)
    audit: AuditSink = LogStoreAudit(store) if store is not None else SqliteAudit(cfg.state_dir / "audit.db")
    key = (
        KeySpec("hmac-sha256", cfg.export_hmac_key.ref)
        if cfg.export_hmac_key is not None
        else KeySpec("ed25519", cfg.export_ed25519_key.ref)
        if cfg.export_ed25519_key is not None
        else None
    )
    state = ApiState(
        inventory=inventory,
        auth=AuthDB(cfg.state_dir / "users.db", idle_seconds=cfg.session_idle_minutes * 60.0),
        audit=audit,
        session_secret=cfg.session_secret.resolve().encode(),
        export_dir=cfg.state_dir / "exports",
        latest=latest,
        engine=lambda: engine,
        logstore=lambda: store,
        services=lambda: services,
        where=lambda: where,
        config_repo=ConfigRepo(cfg.config_repo) if cfg.config_repo is not None else None,
        backup_dir=cfg.backup_dir,
        report_dir=cfg.report_dir,
        export_key=key,
        limiter=LoginLimiter(per_user=cfg.login_max_failures),
        secure_cookies=cfg.secure_cookies,
        session_seconds=cfg.session_hours * 3600.0,
        max_body_bytes=cfg.max_body_bytes,
        body_timeout=cfg.body_timeout,
        max_connections=cfg.max_connections,
        max_connections_per_source=cfg.max_connections_per_source,
        header_timeout=cfg.header_timeout,
        max_log_scan=cfg.max_log_scan,
        closers=closers,
    )
    closers.append(state.auth.close)
    host, port = split_host_port(cfg.listen)
    return state, host, port


def build(
    section: ApiSection,
    *,
    inventory: Inventory,
    latest: LatestStore | None,
    engine: Engine | None = None,
    logstore: LogStore | None = None,
    services: ServiceChecker | None = None,
    where: WhereService | None = None,
) -> list[ApiService]:
    """The API service for the `api:` section, acting on this process's alert engine, log store and
    service checker."""
    state, host, port = build_state(
        section,
        inventory=inventory,
        latest=latest,
        engine=engine,
        logstore=logstore,
        services=services,
        where=where,
    )
    return [ApiService(state, host, port)]
