"""Evaluate a rule's metric condition over the series store: which label sets are active, with what value."""

from __future__ import annotations

import itertools
import math
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Generator
from operator import itemgetter

from alerts.rules import Condition
from alerts.series import Labels, Points, SeriesStore

_time = itemgetter(0)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def _window(hist: Points, now: float, window: float) -> list[tuple[float, float]]:
    points = list(hist)  # time-ordered: bisect in C instead of a Python scan
    return points[bisect_left(points, now - window, key=_time) : bisect_right(points, now, key=_time)]


def _increase(points: list[tuple[float, float]]) -> float:
    # Counter semantics: a drop is a reset, the new value counts from zero.
    total = 0.0
    for (_, a), (_, b) in itertools.pairwise(points):
        total += b - a if b >= a else b
    return total


def apply_func(cond: Condition, hist: Points, now: float) -> float | None:
    """The condition's function of one series at `now`, or None when there is not enough data."""
    if cond.func == "value":
        return hist[-1][1] if hist and hist[-1][0] <= now else None
    if cond.func == "since":
        # The series holds a unix timestamp (last change, last message...): seconds elapsed since it.
        return now - hist[-1][1] if hist and hist[-1][0] <= now else None
    points = _window(hist, now, cond.window)
    if len(points) < 2:
        return None
    if cond.func == "rate":
        span = points[-1][0] - points[0][0]
        return _increase(points) / span if span > 0 else None
    if cond.func == "delta":
        return points[-1][1] - points[0][1]
    # changes: how many times the value changed within the window
    return float(sum(1 for (_, a), (_, b) in itertools.pairwise(points) if a != b))


def evaluate(
    cond: Condition, store: SeriesStore, now: float, slice_size: int
) -> Generator[None, None, dict[Labels, float]]:
    """Active label sets of a metric condition and their values (what `{{ value }}` shows), as steps:
    yields after every `slice_size` series (the caller may hand its event loop back), returns them."""
    assert cond.metric is not None
    if cond.func == "absent":
        present = {dict(labels).get("device") for labels, _ in store.series(cond.metric, cond.match)}
        return {store.device_labels(d): 1.0 for d in store.devices() if d not in present}
    active: dict[Labels, float] = {}
    series: list[tuple[Labels, Points]] = []
    for chunk in store.series_by_device(cond.metric, cond.match):
        before = len(series)
        series += chunk
        if before // slice_size != len(series) // slice_size:
            yield
    # The partner index walks every partner series: only build it when there is something to judge.
    partners = _partners(cond, store) if series else None
    for n, (labels, hist) in enumerate(series, 1):
        if n % slice_size == 0:
            yield
        if cond.requires is not None:
            if partners is None:
                continue
            got = dict(labels)
            if not partners.get(tuple(got.get(k, "") for k in cond.requires.by)):
                continue
        value = apply_func(cond, hist, now)
        if value is None:
            continue
        value *= cond.scale
        if cond.per is not None:
            divisor = store.latest(cond.per, labels)
            if not divisor:
                continue  # unknown or zero speed: no ratio
            value /= divisor
        bound = cond.value if cond.against is None else _against(cond, store, labels)
        if bound is not None and math.isfinite(value) and _OPS[cond.op](value, bound):
            active[labels] = value
    return active


def _partners(cond: Condition, store: SeriesStore) -> dict[tuple[str, ...], bool] | None:
    """For `requires`: whether each `by` label combination's partner series meets its condition now."""
    req = cond.requires
    if req is None:
        return None
    out: dict[tuple[str, ...], bool] = {}
    for labels, hist in store.series(req.metric, {}):
        got = dict(labels)
        key = tuple(got.get(k, "") for k in req.by)
        ok = bool(hist) and _OPS[req.op](hist[-1][1], req.value)
        out[key] = out.get(key, True) and ok  # several partners (ifindex differs): all must agree
    return out


def _against(cond: Condition, store: SeriesStore, labels: Labels) -> float | None:
    """The bound from the other series with these labels (plus each `prefer` set in turn), or its default."""
    spec = cond.against
    assert spec is not None
    for extra in spec.prefer:
        key = tuple(sorted({**dict(labels), **extra}.items())) if extra else labels
        other = store.latest(spec.metric, key)
        if other is not None and math.isfinite(other):
            return other + spec.offset
    return spec.default + spec.offset if spec.default is not None else None
