"""The `alerts:` configuration (rules, state file, rota, escalation, channels, route) and its pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from alerts.engine import Engine
from alerts.levels import Level
from alerts.maintenance import MaintenanceWindow
from alerts.notify.alertmanager import AlertmanagerNotifier, SmsNotifier
from alerts.notify.base import Notifier
from alerts.notify.dispatch import BACKOFF, GIVE_UP_AFTER, Dispatcher
from alerts.notify.email import EmailNotifier
from alerts.notify.robots import DingTalkNotifier, WeComNotifier
from alerts.notify.webhook import WebhookNotifier
from alerts.oncall import EscalationPolicy, Rota
from alerts.persist import AlertStore, StateDB
from alerts.rules import DEFAULT_RULES, RuleError, load_rules
from core.config import ConfigPath, Duration, InputFile, Loc, SecretRef, Section, load_document
from inventory.topology import Topology


def _default_rules(value: Any) -> Any:
    # `default` names the shipped rules.
    return DEFAULT_RULES if value == "default" else value


RuleFilePath = Annotated[InputFile, BeforeValidator(_default_rules)]


class RotaConfig(Section):
    """On-call people in order; each holds `shift`, the first from `start` (unix seconds)."""

    people: list[str] = Field(min_length=1)
    shift: Duration = 7 * 86400.0
    start: float = 0.0


class WebhookChannel(Section):
    """Generic webhook (Alertmanager payload); `url` may be a secret reference."""

    type: Literal["webhook"]
    name: str
    url: SecretRef


class WeComChannel(Section):
    """企业微信 group robot."""

    type: Literal["wecom"]
    name: str
    url: SecretRef


class DingTalkChannel(Section):
    """钉钉 group robot with optional 加签 secret."""

    type: Literal["dingtalk"]
    name: str
    url: SecretRef
    secret: SecretRef | None = None


class EmailChannel(Section):
    """SMTP mail."""

    type: Literal["email"]
    name: str
    host: str
    port: int = Field(587, ge=1, le=65535)
    sender: str
    to: list[str] = Field(default_factory=list)
    starttls: bool = True
    username: str | None = None
    password: SecretRef | None = None
    people: dict[str, str] = Field(default_factory=dict)


class AlertmanagerChannel(Section):
    """Forward to an existing Alertmanager."""

    type: Literal["alertmanager"]
    name: str
    url: str = Field(pattern=r"^https?://\S+$")


class SmsChannel(Section):
    """SMS gateway over HTTP."""

    type: Literal["sms"]
    name: str
    url: SecretRef
    phones: dict[str, str]
    to_field: str = "to"
    text_field: str = "text"


Channel = Annotated[
    WebhookChannel | WeComChannel | DingTalkChannel | EmailChannel | AlertmanagerChannel | SmsChannel,
    Field(discriminator="type"),
]


class RetryConfig(Section):
    """Delivery retries on transient failures (5xx, 429, network): waits between attempts, then give up."""

    backoff: list[Duration] = Field(default_factory=lambda: list(BACKOFF), min_length=1)
    give_up_after: Duration = GIVE_UP_AFTER


class SharedStateConfig(Section):
    """HA pair: alert state in PostgreSQL instead of SQLite, and leader election by advisory lock.

    `postgres` is a secret reference to a libpq DSN (`file:secrets/alerts_dsn` holding e.g.
    `host=10.1.1.5 port=5432 dbname=govnet user=govnet password=...`); it is never printed.
    Nodes with the same `cluster` name elect one leader; `node` names this node in logs and claims.
    """

    postgres: SecretRef
    cluster: str = Field("default", min_length=1, max_length=64)
    node: str | None = Field(None, min_length=1, max_length=64)


class AlertingConfig(Section):
    """Everything the alert pipeline needs (relative paths are relative to the config file)."""

    rules: list[RuleFilePath] = Field(default_factory=lambda: [DEFAULT_RULES])
    state_db: ConfigPath = Path("alerts.db")
    state: SharedStateConfig | None = None  # set: PostgreSQL (HA pair); state_db is then unused
    evaluate_interval: Duration = 15.0
    lang: Literal["zh", "en"] = "zh"
    report_category: Literal["cii", "state", "other"] = "other"
    rota: RotaConfig | None = None
    escalate_after: dict[Level, Duration] = Field(
        default_factory=lambda: {Level.I: 300.0, Level.II: 600.0, Level.III: 900.0, Level.IV: 1800.0}
    )
    channels: list[Channel] = Field(default_factory=list)
    route: list[str] = Field(default_factory=list)  # channels every notification goes to
    fallback: str | None = None
    retry: RetryConfig = Field(default_factory=RetryConfig)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    # The console's address as on-call staff reach it: every notification links to its incident page.
    console_url: str | None = Field(None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", max_length=200)

    @model_validator(mode="after")
    def _names(self) -> AlertingConfig:
        names = [c.name for c in self.channels]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError(f"duplicate channel names: {', '.join(dups)}")
        unknown = [n for n in [*self.route, *([self.fallback] if self.fallback else [])] if n not in names]
        if unknown:
            raise ValueError(f"route/fallback name unknown channels: {', '.join(unknown)}")
        return self

    def problems(self, inventory: Any) -> list[tuple[Loc, str]]:
        """Every rule file loads (what `govnet run` would refuse; checked by run and doctor alike)."""
        try:
            load_rules(*self.rules)
        except RuleError as exc:
            return [(("rules",), p) for p in exc.problems]
        except OSError as exc:
            return [(("rules",), f"cannot read: {exc.strerror}")]
        return []


def load_alerting(path: Path) -> AlertingConfig:
    """Read and validate an alerting config file of its own; paths are relative to it (ConfigError)."""
    return load_document(path).validate(AlertingConfig)


def make_notifier(ch: Channel) -> Notifier:
    """The notifier for one configured channel."""
    if isinstance(ch, WebhookChannel):
        return WebhookNotifier(ch.name, ch.url)
    if isinstance(ch, WeComChannel):
        return WeComNotifier(ch.name, ch.url)
    if isinstance(ch, DingTalkChannel):
        return DingTalkNotifier(ch.name, ch.url, ch.secret)
    if isinstance(ch, EmailChannel):
        return EmailNotifier(
            ch.name,
            ch.host,
            ch.port,
            ch.sender,
            tuple(ch.to),
            ch.starttls,
            ch.username,
            ch.password,
            ch.people,
        )
    if isinstance(ch, AlertmanagerChannel):
        return AlertmanagerNotifier(ch.name, ch.url)
    return SmsNotifier(ch.name, ch.url, ch.phones, ch.to_field, ch.text_field)


def node_name(cfg: AlertingConfig) -> str:
    """This node's name in an HA pair: configured, else host name and pid."""
    import os
    import socket

    return cfg.state.node if cfg.state and cfg.state.node else f"{socket.gethostname()}:{os.getpid()}"


def open_store(cfg: AlertingConfig, create: bool = True) -> AlertStore:
    """The configured alert store: PostgreSQL (`state.postgres`) or the SQLite file `state_db`."""
    if cfg.state is not None:
        from alerts.persist_pg import PgStateDB

        return PgStateDB(cfg.state.postgres.resolve(), node_name(cfg), create=create)
    if create:
        cfg.state_db.parent.mkdir(parents=True, exist_ok=True)
    return StateDB(cfg.state_db)


def build(cfg: AlertingConfig, topology: Topology | None) -> tuple[Engine, Dispatcher]:
    """The engine (restored from the state store) and the dispatcher for a config.

    With a shared PostgreSQL store, in-flight deliveries are not taken back here: only the node that
    wins the leader lock may do that (AlertService on takeover).
    """
    db = open_store(cfg)
    policy = (
        EscalationPolicy(
            Rota(tuple(cfg.rota.people), cfg.rota.shift, cfg.rota.start), dict(cfg.escalate_after)
        )
        if cfg.rota
        else None
    )
    engine = Engine(
        load_rules(*cfg.rules),
        topology,
        None,
        policy,
        cfg.report_category,
        cfg.lang,
        db=db,
        maintenance=cfg.maintenance,
        console_url=cfg.console_url,
    )
    notifiers = {c.name: make_notifier(c) for c in cfg.channels}
    dispatcher = Dispatcher(
        db, notifiers, cfg.route, cfg.fallback, cfg.retry.backoff, cfg.retry.give_up_after,
        recover=cfg.state is None,
    )  # fmt: skip
    return engine, dispatcher
