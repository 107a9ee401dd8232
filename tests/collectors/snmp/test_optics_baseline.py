"""The 7-day receive-power baseline: one reading per hour, median, absent before a day of history."""

from __future__ import annotations

import pytest

from collectors.snmp.optics import BASELINE_METRIC, RX_METRIC, RxBaseline
from core.samples import Sample

PORT = (("device", "core-1"), ("ifname", "XGE0/0/1"))
HOUR = 3600.0


def _rx(value: float, t: float, labels: tuple[tuple[str, str], ...] = PORT) -> list[Sample]:
    return [Sample(RX_METRIC, labels, value, t), Sample("govnet_if_oper_up", labels, 1.0, t)]


def test_no_baseline_before_a_day_then_the_median() -> None:
    b = RxBaseline()
    t0 = 1_000_000 * HOUR
    for h in range(23):
        assert b.observe(_rx(-4.0 - 0.01 * h, t0 + h * HOUR), t0 + h * HOUR) == []
    (got,) = b.observe(_rx(-4.5, t0 + 23 * HOUR), t0 + 23 * HOUR)
    assert got.metric == BASELINE_METRIC and got.labels == PORT
    assert got.value == pytest.approx(-4.115)  # median of -4.00..-4.22 and -4.5


def test_one_reading_per_hour_and_a_sudden_drop_barely_moves_it() -> None:
    b = RxBaseline()
    t0 = 2_000_000 * HOUR
    for h in range(48):
        for minute in range(0, 60, 15):  # four polls an hour, only the first counts
            t = t0 + h * HOUR + minute * 60
            out = b.observe(_rx(-4.0 if minute == 0 else -30.0, t), t)
    assert out[0].value == pytest.approx(-4.0)
    t = t0 + 48 * HOUR
    (got,) = b.observe(_rx(-9.0, t), t)
    assert got.value == pytest.approx(-4.0)  # the fibre just degraded: -9 vs a -4 baseline


def test_window_is_seven_days_and_a_vanished_port_starts_afresh() -> None:
    b = RxBaseline()
    t0 = 3_000_000 * HOUR
    for h in range(24 * 8):
        value = -10.0 if h < 24 else -3.0  # the first day, far in the past, leaves the window
        out = b.observe(_rx(value, t0 + h * HOUR), t0 + h * HOUR)
    assert out[0].value == pytest.approx(-3.0)
    t = t0 + 24 * 8 * HOUR
    assert b.observe([Sample("govnet_if_oper_up", PORT, 1.0, t)], t) == []
    assert b.observe(_rx(-3.0, t + HOUR), t + HOUR) == []  # history restarted: no baseline yet
