"""Availability from the state-change journal: exact time-weighted figures, unknown never counted as up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from alerts.journal import Journal, StateChange
from alerts.maintenance import CST, MaintenanceWindow
from reports.availability import device_availability, intersect, normalise, subtract
from reports.collect import incident_stats, month_bounds
from reports.windows import device_maintenance, window_spans

T0 = 1_000_000.0


def ch(at: float, state: str, device: str = "a") -> StateChange:
    return StateChange(device, T0 + at, state)


def test_span_arithmetic() -> None:
    assert normalise([(5, 7), (1, 3), (2, 4), (9, 9)]) == [(1, 4), (5, 7)]
    assert intersect([(0, 10), (20, 30)], [(5, 25)]) == [(5, 10), (20, 25)]
    assert subtract([(0, 10)], [(2, 3), (5, 20)]) == [(0, 2), (3, 5)]


def test_outage_exact_with_maintenance_and_unknown() -> None:
    """A day: down 450 s, another outage inside maintenance, govnet stopped 120 s while the device was up."""
    changes = [ch(-50, "up"), ch(1000, "down"), ch(1450, "up"), ch(5000, "down"), ch(5300, "up")]
    coverage = [(T0, T0 + 3000), (T0 + 3120, T0 + 86400)]
    maintenance = [(T0 + 4900, T0 + 5400)]
    av = device_availability("a", changes, coverage, maintenance, T0, T0 + 86400)
    assert av.unknown == pytest.approx(120)
    assert av.maintenance == pytest.approx(500)
    assert av.seconds["down"] == pytest.approx(450)
    assert av.seconds["up"] == pytest.approx(86400 - 120 - 500 - 450)
    assert av.available == pytest.approx((86400 - 120 - 500 - 450) / (86400 - 120 - 500))
    assert [(o.start - T0, o.end - T0, o.in_maintenance) for o in av.outages] == [
        (1000, 1450, False),
        (5000, 5300, True),
    ]


def test_down_then_unreachable_is_one_outage_and_no_evidence_is_unknown() -> None:
    changes = [ch(100, "up"), ch(200, "down"), ch(260, "unreachable"), ch(400, "degraded")]
    av = device_availability("a", changes, [(T0, T0 + 1000)], [], T0, T0 + 1000)
    assert av.unknown == pytest.approx(100)  # before the first observation
    assert [(o.start - T0, o.end - T0, o.state) for o in av.outages] == [(200, 400, "down+unreachable")]
    assert av.seconds["degraded"] == pytest.approx(600)
    assert av.ratio("up", "degraded") == pytest.approx(700 / 900)


def test_nothing_known_gives_none_not_100_percent() -> None:
    av = device_availability("a", [], [(T0, T0 + 10)], [], T0, T0 + 10)
    assert av.available is None and av.unknown == pytest.approx(10)


def test_journal_writes_changes_and_coverage_and_restates_after_a_gap(tmp_path: Path) -> None:
    j = Journal(tmp_path / "state.db", gap=30)
    assert j.observe({"a": "up", "b": "up"}, T0) == 2
    assert j.observe({"a": "up", "b": "up"}, T0 + 10) == 0
    assert j.observe({"a": "down", "b": "up"}, T0 + 20) == 1
    # govnet stopped for 100 s: the next observation opens a new span and restates every device.
    assert j.observe({"a": "down", "b": "up"}, T0 + 120) == 2
    j.observe({"a": "up", "b": "up"}, T0 + 130)
    j.close()
    r = Journal(tmp_path / "state.db", readonly=True)
    assert r.coverage(T0, T0 + 200) == [(T0, T0 + 20), (T0 + 120, T0 + 130)]
    got = r.changes(T0 + 15, T0 + 200)
    assert [(c.at - T0, c.state) for c in got["a"]] == [(0, "up"), (20, "down"), (120, "down"), (130, "up")]
    av = device_availability("a", got["a"], r.coverage(T0, T0 + 130), [], T0, T0 + 130)
    assert av.seconds["down"] == pytest.approx(10) and av.unknown == pytest.approx(100)
    with pytest.raises(Exception):  # noqa: B017 - sqlite3 refuses writes on a read-only open
        r.observe({"a": "up"}, T0 + 140)


def test_weekly_window_spans_beijing_time_and_labels() -> None:
    w = MaintenanceWindow.model_validate(
        {
            "name": "周日割接",
            "match": ['site="jd"'],
            "weekly": {"days": ["sun"], "start": "23:00", "end": "01:00"},
        }
    )
    start = datetime(2026, 11, 1, tzinfo=CST).timestamp()  # a Sunday
    end = datetime(2026, 11, 9, tzinfo=CST).timestamp()
    spans = window_spans(w, start, end)
    assert [(datetime.fromtimestamp(a, CST).isoformat(), (b - a) / 3600) for a, b in spans] == [
        ("2026-11-01T23:00:00+08:00", 2.0),
        ("2026-11-08T23:00:00+08:00", 1.0),  # clipped at the period's end
    ]
    assert device_maintenance([w], {"site": "other"}, start, end) == []
    assert len(device_maintenance([w], {"site": "jd"}, start, end)) == 2


def test_month_bounds_are_beijing_months() -> None:
    a, b = month_bounds("2026-12")
    assert datetime.fromtimestamp(a, CST).isoformat() == "2026-12-01T00:00:00+08:00"
    assert datetime.fromtimestamp(b, CST).isoformat() == "2027-01-01T00:00:00+08:00"
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds("2026-13")


def test_incident_stats_deadlines_and_times() -> None:
    from alerts.incidents import Incident
    from alerts.levels import Level

    def inc(
        i: int, opened: float, level: Level, ack: float | None, res: float | None, rep: float | None
    ) -> Incident:
        x = Incident(str(i), (("device", f"d{i}"),), T0 + opened, level, "state")
        x.acked_at = None if ack is None else T0 + ack
        x.resolved_at = None if res is None else T0 + res
        x.reported_at = None if rep is None else T0 + rep
        return x

    incidents = [
        inc(1, 0, Level.II, 60, 600, 3000),  # reported within 2 h: met
        inc(2, 100, Level.III, 300, 900, 9000),  # reported after 2 h: missed
        inc(3, 200, Level.IV, None, 500, None),  # level IV: no deadline
        inc(4, 99_000, Level.II, None, None, None),  # opened after the period
    ]
    s = incident_stats(incidents, T0, T0 + 10_000)
    assert s.total == 3 and s.by_level == {"II": 1, "III": 1, "IV": 1}
    assert (s.deadlines_met, s.deadlines_missed, s.deadlines_open) == (1, 1, 0)
    assert s.ack_median == pytest.approx((60 + 200) / 2) and s.resolve_median == pytest.approx(600)
