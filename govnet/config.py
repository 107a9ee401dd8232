"""The `govnet run --config FILE` model: every section typed, every problem reported as file:line.

Each room owns its section's model (next to its code, in its service.py); this file only lists them.
An absent section turns that service off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, PrivateAttr

from alerts.config import AlertingConfig
from api.service import ApiSection
from collectors.backup.service import BackupsSection
from collectors.cluster.config import ClusterConfig
from collectors.icmp.service import ProbesConfig
from collectors.links import LinksSection
from collectors.services.service import ServicesSection
from collectors.ssh.service import SshSection
from collectors.syslog.service import SyslogSection
from collectors.traps.service import TrapsConfig
from collectors.where.service import WhereSection
from core.config import (
    ConfigError,
    ConfigPath,
    Document,
    Duration,
    HostPort,
    Loc,
    SecretRef,
    Section,
    SectionError,
    load_document,
)
from reports.config import ReportsSection

__all__ = ["DEFAULT_LISTEN", "Config", "ConfigError", "SectionError", "load_config"]

DEFAULT_LISTEN = "127.0.0.1:9810"


class PrometheusConfig(Section):
    """Where `/metrics` and `/healthz` are served."""

    listen: HostPort = DEFAULT_LISTEN


class InfluxConfig(Section):
    """InfluxDB v2 write API target and the durable spool in front of it."""

    url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    org: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    token: SecretRef
    batch_size: int = Field(5000, ge=1, le=1_000_000)
    flush_interval: Duration = 1.0
    precision: Literal["s", "ms", "us", "ns"] = "ms"
    timeout: Duration = 10.0
    backoff_max: Duration = 30.0
    spool_dir: ConfigPath = Path("spool")
    spool_max_bytes: ByteSize = Field(ByteSize(256 * 1024 * 1024), ge=64 * 1024)


class SchedulerConfig(Section):
    """How polls are spread, capped and backed off."""

    max_concurrency: int = Field(64, ge=1, le=10_000)
    timeout: Duration = 2.0
    retries: int = Field(1, ge=0, le=5)
    unreachable_after: int = Field(3, ge=1, le=100)
    unreachable_recheck: Duration | None = None
    # Poller worker processes (collectors/workers.py); None = one per core, 1 = poll in-process.
    workers: int | None = Field(None, ge=1, le=64)


class Config(Section):
    """The whole `govnet run` configuration (relative paths are relative to the config file)."""

    inventory: ConfigPath
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    influx: InfluxConfig | None = None
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    alerts: AlertingConfig | None = None
    probes: ProbesConfig | None = None
    traps: TrapsConfig | None = None
    ssh: SshSection | None = None
    backups: BackupsSection | None = None
    syslog: SyslogSection | None = None
    api: ApiSection | None = None
    cluster: ClusterConfig | None = None
    links: LinksSection | None = None  # declared links checked against LLDP/CDP (collectors/links.py)
    services: ServicesSection | None = None
    reports: ReportsSection | None = None  # monthly reports (reports/service.py)
    where: WhereSection | None = None  # addresses to edge ports (collectors/where/)
    _document: Document | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path:
        """The config file's folder."""
        return self._document.base_dir if self._document is not None else Path(".")

    def locate(self, loc: Loc) -> str:
        """`file:line` of a field of the config (the file alone when unknown)."""
        return self._document.where(loc) if self._document is not None else "(config)"

    def problem(self, loc: Loc, message: str) -> str:
        """`file:line: field.path: message` for a problem found after loading (a missing secret...)."""
        if self._document is None:
            return f"{'.'.join(map(str, loc))}: {message}"
        return self._document.problem(loc, message)


def load_config(path: Path) -> Config:
    """Read and validate a config file; ConfigError names file:line, field path and what is expected."""
    doc = load_document(path)
    cfg = doc.validate(Config)
    cfg._document = doc
    return cfg
