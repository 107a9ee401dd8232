"""Silences (mute matching alerts for a while) and maintenance windows (planned work on devices/sites)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from alerts.regex import RegexError, compile_linear, full_match


@dataclass(frozen=True)
class Matcher:
    """`name=value`, `name!=value`, `name=~regex` or `name!~regex` on one label."""

    name: str
    value: str
    op: str = "="

    def matches(self, labels: dict[str, str]) -> bool:
        """True if the label set satisfies this matcher (a missing label is the empty string)."""
        got = labels.get(self.name, "")
        if self.op in ("=~", "!~"):
            try:
                hit = full_match(self.value, got)
            except RegexError:  # stored before patterns were checked: matches nothing
                hit = False
            return hit if self.op == "=~" else not hit
        return (got == self.value) if self.op == "=" else (got != self.value)


_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\"?(.*?)\"?\s*$")


def parse_matcher(text: str) -> Matcher:
    """Parse `device="core-1"` / `site=~"jd-.*"`."""
    m = _MATCHER.match(text)
    if not m:
        raise ValueError(f"not a matcher: {text!r}")
    if m.group(2) in ("=~", "!~"):
        compile_linear(m.group(3))  # RegexError (a ValueError) for a pattern RE2 refuses
    return Matcher(m.group(1), m.group(3), m.group(2))


@dataclass(frozen=True)
class Silence:
    """Mutes alerts matching every matcher from `starts` to `ends` (also used for maintenance windows)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts: float
    ends: float
    created_by: str
    comment: str
    maintenance: bool = False  # a planned maintenance window rather than an ad-hoc silence

    def active(self, now: float) -> bool:
        """True while in force."""
        return self.starts <= now < self.ends

    def mutes(self, labels: dict[str, str], now: float) -> bool:
        """True if in force and every matcher matches."""
        return self.active(now) and all(m.matches(labels) for m in self.matchers)


@dataclass
class SilenceSet:
    """All silences and maintenance windows; expired ones are kept for the record."""

    items: dict[str, Silence] = field(default_factory=dict)

    def add(self, silence: Silence) -> None:
        """Add or replace a silence by id."""
        if silence.ends <= silence.starts:
            raise ValueError("a silence must end after it starts")
        if not silence.matchers:
            raise ValueError("a silence needs at least one matcher")
        self.items[silence.id] = silence

    def expire(self, silence_id: str, now: float) -> None:
        """End a silence now."""
        old = self.items[silence_id]
        self.items[silence_id] = Silence(
            old.id, old.matchers, old.starts, min(old.ends, now), old.created_by, old.comment, old.maintenance
        )

    def muting(self, labels: dict[str, str], now: float) -> Silence | None:
        """The first silence muting these labels at `now`, if any."""
        return next((s for s in self.items.values() if s.mutes(labels, now)), None)

    def in_maintenance(self, labels: dict[str, str], now: float) -> bool:
        """True if a maintenance window covers these labels at `now`."""
        return any(s.maintenance and s.mutes(labels, now) for s in self.items.values())
