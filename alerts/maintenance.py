"""Maintenance windows of the alert config: fixed ranges or weekly slots (Beijing time) by labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.silences import Matcher, parse_matcher

CST = timezone(timedelta(hours=8), "CST")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(text: str) -> int:
    hh, sep, mm = text.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or int(hh) > 24 or int(mm) > 59:
        raise ValueError("expected HH:MM (00:00 .. 24:00)")
    value = int(hh) * 60 + int(mm)
    if value > 24 * 60:
        raise ValueError("expected HH:MM (00:00 .. 24:00)")
    return value


class Weekly(BaseModel):
    """Every week on `days`, from `start` to `end` (HH:MM Beijing time; end before start wraps midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Day] = Field(min_length=1)
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        _minutes(v)
        return v

    def covers(self, t: float) -> bool:
        """True if instant `t` falls in one of the weekly slots."""
        local = datetime.fromtimestamp(t, UTC).astimezone(CST)
        minute = local.hour * 60 + local.minute
        start, end = _minutes(self.start), _minutes(self.end)
        today = DAYS[local.weekday()]
        if start < end:
            return today in self.days and start <= minute < end
        # Wraps midnight: the slot started on a listed day and goes on into the next morning.
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (today in self.days and minute >= start) or (yesterday in self.days and minute < end)


class MaintenanceWindow(BaseModel):
    """Planned work: alerts matching every matcher are not paged inside the window, and changes made
    inside it are expected (rules with `outside_maintenance`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    match: list[str] = Field(min_length=1)  # label matchers: device="core-1", site=~"jd-.*"
    start: datetime | float | None = None  # a fixed window: ISO 8601 (with offset) or unix seconds
    end: datetime | float | None = None
    weekly: Weekly | None = None
    comment: str = ""

    @field_validator("match")
    @classmethod
    def _matchers(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_matcher(text)
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        fixed = self.start is not None or self.end is not None
        if fixed == (self.weekly is not None):
            raise ValueError("a maintenance window needs either start+end or weekly")
        if fixed and (self.start is None or self.end is None or _ts(self.end) <= _ts(self.start)):
            raise ValueError("a fixed maintenance window needs start and end, end after start")
        return self

    @property
    def matchers(self) -> tuple[Matcher, ...]:
        """The parsed label matchers."""
        return tuple(parse_matcher(m) for m in self.match)

    def covers(self, labels: dict[str, str], t: float) -> bool:
        """True if the window is in force at `t` and matches the labels."""
        if not all(m.matches(labels) for m in self.matchers):
            return False
        if self.weekly is not None:
            return self.weekly.covers(t)
        assert self.start is not None and self.end is not None
        return _ts(self.start) <= t < _ts(self.end)


def _ts(value: datetime | float) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=CST)).timestamp()
    return float(value)
