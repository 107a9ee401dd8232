"""Alert rules: YAML validation (one file per bad case), shipped defaults, promtool-style rule tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.cli import test_rules_command
from alerts.levels import Level
from alerts.promtest import expand_values, parse_series
from alerts.render import escape_text, render_string
from alerts.rules import DEFAULT_RULES, RuleError, load_rules
from tests.support.paths import TESTDATA

DATA = TESTDATA / "alerts"
BAD = sorted((DATA / "bad").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_rule_file_is_refused_with_its_expected_error(path: Path) -> None:
    expect = path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect:").strip()
    with pytest.raises(RuleError) as err:
        load_rules(path)
    assert expect in str(err.value), str(err.value)


def test_shipped_rules_cover_the_required_cases_with_chinese_runbooks() -> None:
    rules = {r.alert: r for r in load_rules(DEFAULT_RULES)}
    required = {
        "CoreDeviceDown",
        "AggregationDown",
        "DeviceDown",
        "DeviceUnreachable",
        "UplinkRedundancyLost",
        "HAFailover",
        "HAPeerDegraded",
        "InterfaceErrors",
        "InterfaceSaturationIn",
        "CpuHigh",
        "MemoryHigh",
        "TemperatureHigh",
        "UpsOnBattery",
    }
    assert required <= rules.keys()
    assert rules["CoreDeviceDown"].level is Level.II
    assert rules["UpsOnBattery"].level.must_report
    assert not rules["DeviceUnreachable"].page
    for rule in rules.values():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rule.summary), rule.alert
        assert rule.runbook and all(any("\u4e00" <= ch <= "\u9fff" for ch in s) for s in rule.runbook)


def test_levels_names_colours_and_reporting() -> None:
    assert [lv.name_zh for lv in Level] == ["特别重大", "重大", "较大", "一般"]
    assert [lv.colour for lv in Level] == ["red", "orange", "yellow", "blue"]
    assert [lv.must_report for lv in Level] == [True, True, True, False]


def test_promtool_value_notation() -> None:
    assert expand_values("1 2 _ stale 3") == [1, 2, None, None, 3]
    assert expand_values("0x3") == [0, 0, 0, 0]
    assert expand_values("1+2x2 10-5x1") == [1, 3, 5, 10, 5]
    assert expand_values("_x2 1e9x1") == [None, None, 1e9, 1e9]
    assert parse_series('m{a="x y",b="q\\"z"}') == ("m", (("a", "x y"), ("b", 'q"z')))


def test_test_rules_passes_on_shipped_tests(capsys: pytest.CaptureFixture[str]) -> None:
    assert test_rules_command([DATA / "default_rules_test.yaml"]) == 0
    assert "SUCCESS (8 tests)" in capsys.readouterr().out


def test_test_rules_reports_a_wrong_expectation(capsys: pytest.CaptureFixture[str]) -> None:
    assert test_rules_command([DATA / "failing_test.yaml", DATA / "default_rules_test.yaml"]) == 1
    out = capsys.readouterr().out
    assert "failing_test.yaml: FAILED" in out and "wrong expectation" in out and "CpuHigh" in out
    assert "default_rules_test.yaml: SUCCESS" in out


def test_test_rules_reports_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("tests: [\n")
    assert test_rules_command([bad, tmp_path / "missing.yaml"]) == 1
    assert capsys.readouterr().out.count("FAILED") == 2


def test_device_text_is_data_not_template_and_is_escaped() -> None:
    hostile = "{{ 7*7 }}<script>alert(1)</script>\x1b[2J[点我](http://x)"
    out = render_string("设备 {{ labels.device }} 宕机", labels={"device": hostile}, value=0)
    assert "49" not in out and "{{ 7＊7 }}" in out  # shown literally (with '*' made inert), never evaluated
    assert "<" not in out and "\x1b" not in out and "[" not in out


def test_sandbox_blocks_attribute_escape() -> None:
    out = render_string("{{ labels.__class__.__mro__[1].__subclasses__() }}", labels={}, value=0)
    assert "<class" not in out and "模板错误" in out


def test_escape_truncates_long_text() -> None:
    assert len(escape_text("x" * 5000)) == 200
