"""Declared maintenance windows as exact spans of time for one device's labels."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from alerts.maintenance import CST, DAYS, MaintenanceWindow, _minutes, _ts
from reports.availability import Span, normalise


def window_spans(window: MaintenanceWindow, start: float, end: float) -> list[Span]:
    """The spans of [start, end) the window is in force (labels not considered)."""
    if window.weekly is None:
        assert window.start is not None and window.end is not None
        a, b = max(_ts(window.start), start), min(_ts(window.end), end)
        return [(a, b)] if b > a else []
    weekly = window.weekly
    first, last = _minutes(weekly.start), _minutes(weekly.end)
    day = datetime.fromtimestamp(start, CST).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=1
    )
    out: list[Span] = []
    while day.timestamp() < end:
        if DAYS[day.weekday()] in weekly.days:
            opens = day + timedelta(minutes=first)
            closes = day + timedelta(minutes=last) if last > first else day + timedelta(days=1, minutes=last)
            lo, hi = max(opens.timestamp(), start), min(closes.timestamp(), end)
            if hi > lo:
                out.append((lo, hi))
        day += timedelta(days=1)
    return normalise(out)


def device_maintenance(
    windows: Iterable[MaintenanceWindow], labels: dict[str, str], start: float, end: float
) -> list[tuple[Span, str]]:
    """(span, window name) for every window matching the device's labels in [start, end)."""
    out: list[tuple[Span, str]] = []
    for w in windows:
        if all(m.matches(labels) for m in w.matchers):
            out.extend((span, w.name) for span in window_spans(w, start, end))
    return sorted(out)
