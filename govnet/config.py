"""The `govnet run --config FILE` model: inventory path, /metrics listener, InfluxDB export, scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field, ValidationError, field_validator

from core.secrets import Secret
from inventory.model import Duration, SecretRef
from inventory.source import structure_problems

DEFAULT_LISTEN = "127.0.0.1:9810"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class PrometheusConfig(_Strict):
    """Where `/metrics` and `/healthz` are served."""

    listen: str = DEFAULT_LISTEN

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected HOST:PORT, for example 127.0.0.1:9810 or [::1]:9810")
        return v


class InfluxConfig(_Strict):
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
    spool_dir: Path = Path("spool")
    spool_max_bytes: ByteSize = Field(ByteSize(256 * 1024 * 1024), ge=64 * 1024)


class SchedulerConfig(_Strict):
    """How polls are spread, capped and backed off."""

    max_concurrency: int = Field(64, ge=1, le=10_000)
    timeout: Duration = 2.0
    retries: int = Field(1, ge=0, le=5)
    unreachable_after: int = Field(3, ge=1, le=100)
    unreachable_recheck: Duration | None = None
    # Poller worker processes (collectors/workers.py); None = one per core, 1 = poll in-process.
    workers: int | None = Field(None, ge=1, le=64)


class Config(_Strict):
    """The whole `govnet run` configuration (relative paths are relative to the config file)."""

    inventory: Path
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    influx: InfluxConfig | None = None
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Sections owned by subsystems: each is validated by its own builder (govnet.service.BUILDERS),
    # so a subsystem's settings live next to its code. Absent section = service off.
    alerts: dict[str, Any] | None = None
    probes: dict[str, Any] | None = None
    traps: dict[str, Any] | None = None
    ssh: dict[str, Any] | None = None
    backups: dict[str, Any] | None = None
    syslog: dict[str, Any] | None = None
    api: dict[str, Any] | None = None
    cluster: dict[str, Any] | None = None
    links: dict[str, Any] | None = None  # declared links checked against LLDP/CDP (collectors/links.py)
    services: dict[str, Any] | None = None
    reports: dict[str, Any] | None = None  # monthly reports (reports/service.py): built by run_command
    where: dict[str, Any] | None = None
    base_dir: Path = Field(default=Path("."), exclude=True)


class ConfigError(ValueError):
    """A config file cannot be read or is invalid; the message lists every problem (file:line: path: what)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _line_index(node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]) -> None:
    # Each mapping key and sequence item -> the line it starts on (1-based).
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value if isinstance(key, yaml.ScalarNode) else str(key.value))
            out[child] = key.start_mark.line + 1
            _line_index(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _line_index(item, (*path, i), out)


def _line_of(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    # The deepest prefix of the error location that exists in the file (a missing field -> its parent).
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def load_config(path: Path) -> Config:
    """Read and validate a config file; ConfigError names file:line, field path and what is expected."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror}"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            # Aliases are checked on the composed graph before anything is built: a YAML bomb is
            # refused in milliseconds instead of expanding into gigabytes (as the inventory loader does).
            bombs = structure_problems(str(path), node)
            if bombs:
                raise ConfigError([f"{b.file}:{b.line}: {b.message}" for b in bombs])
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError([f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: the config must be a mapping (inventory:, prometheus:, ...)"])
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = tuple(err["loc"])
            line = _line_of(lines, loc)
            where = f"{path}:{line}" if line else str(path)
            field = ".".join(str(p) for p in loc) or "(top)"
            # Values are never echoed: a misplaced secret must not land in a log.
            problems.append(f"{where}: {field}: {err['msg']}")
        raise ConfigError(problems) from None
    return _resolve_paths(cfg, path.parent)


def _resolve_paths(cfg: Config, base: Path) -> Config:
    inv = cfg.inventory if cfg.inventory.is_absolute() else base / cfg.inventory
    update: dict[str, Any] = {"inventory": inv, "base_dir": base}
    if cfg.influx is not None:
        ic = cfg.influx
        spool_dir = ic.spool_dir if ic.spool_dir.is_absolute() else base / ic.spool_dir
        # `file:` secret references are relative to the config file too.
        update["influx"] = ic.model_copy(update={"spool_dir": spool_dir, "token": Secret(ic.token.ref, base)})
    return cfg.model_copy(update=update)
