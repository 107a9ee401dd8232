"""`api:` section of `govnet run`: the API and console served by uvicorn inside the asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import uvicorn
from pydantic import Field, model_validator

from alerts.engine import Engine
from api.app import create_app
from api.audit import AuditSink, LogStoreAudit, SqliteAudit
from api.auth import AuthDB, LoginLimiter
from api.state import ApiState
from collectors.ssh.configrepo import ConfigRepo
from core.config import ConfigPath, HostPort, SecretRef, Section, split_host_port
from core.latest import LatestStore
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
    session_hours: float = Field(8.0, gt=0, le=24 * 30)
    secure_cookies: bool = False  # set true behind TLS
    login_max_failures: int = Field(5, ge=1, le=100)

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


def build_state(
    cfg: ApiSection,
    *,
    inventory: Inventory,
    latest: LatestStore | None,
    engine: Engine | None = None,
    logstore: LogStore | None = None,
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
        auth=AuthDB(cfg.state_dir / "users.db"),
        audit=audit,
        session_secret=cfg.session_secret.resolve().encode(),
        export_dir=cfg.state_dir / "exports",
        latest=latest,
        engine=lambda: engine,
        logstore=lambda: store,
        config_repo=ConfigRepo(cfg.config_repo) if cfg.config_repo is not None else None,
        backup_dir=cfg.backup_dir,
        export_key=key,
        limiter=LoginLimiter(per_user=cfg.login_max_failures),
        secure_cookies=cfg.secure_cookies,
        session_seconds=cfg.session_hours * 3600.0,
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
) -> list[ApiService]:
    """The API service for the `api:` section, acting on this process's alert engine and log store."""
    state, host, port = build_state(
        section, inventory=inventory, latest=latest, engine=engine, logstore=logstore
    )
    return [ApiService(state, host, port)]
