"""The `reports:` section of the run config: where reports go, the TSDB to read uplinks from, the schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from alerts.maintenance import _minutes
from core.config import ConfigPath, Duration, Section


class TsdbSection(Section):
    """A Prometheus-compatible query API (Prometheus, or VictoriaMetrics' /api/v1)."""

    kind: Literal["prometheus", "victoriametrics"] = "prometheus"
    url: str = Field(pattern=r"^https?://")
    step: Duration = 300.0  # one point per 5 minutes: the 95th-percentile convention of transit billing
    window: str = Field("5m", pattern=r"^[0-9]+[smh]$")
    timeout: Duration = 30.0


class ReportsSection(Section):
    """`reports:`: monthly reports written on `day` at `time` (Beijing time) for the month before."""

    dir: ConfigPath = Path("state/reports")
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
