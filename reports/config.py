"""The `reports:` section of the run config: where reports go, the TSDB to read uplinks from, the schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.maintenance import _minutes
from inventory.model import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TsdbSection(_Strict):
    """A Prometheus-compatible query API (Prometheus, or VictoriaMetrics' /api/v1)."""

    kind: Literal["prometheus", "victoriametrics"] = "prometheus"
    url: str = Field(pattern=r"^https?://")
    step: Duration = 300.0  # one point per 5 minutes: the 95th-percentile convention of transit billing
    window: str = Field("5m", pattern=r"^[0-9]+[smh]$")
    timeout: Duration = 30.0


class ReportsSection(_Strict):
    """`reports:`: monthly reports written on `day` at `time` (Beijing time) for the month before."""

    dir: Path = Path("state/reports")
    lang: Literal["zh", "en"] = "zh"
    day: int = Field(1, ge=1, le=28)
    time: str = "08:00"
    tsdb: TsdbSection | None = None
    email_channel: str | None = None  # the name of an `email` channel of `alerts:`
    recipients: list[str] = Field(default_factory=list)  # overrides the channel's `to`

    @field_validator("time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        _minutes(v)
        return v


def parse_reports(section: object, base: Path) -> ReportsSection:
    """Validate `reports:`; relative `dir` is relative to the config file; errors name the field."""
    try:
        cfg = ReportsSection.model_validate(section or {})
    except ValidationError as exc:
        problems = [f"reports.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ValueError("\n".join(problems)) from None
    return cfg.model_copy(update={"dir": cfg.dir if cfg.dir.is_absolute() else base / cfg.dir})
