"""Keep the SNMP benchmark from rotting: run it with tiny numbers against a real namespace agent."""

from __future__ import annotations

import sys

import pytest

from tests.support.netns import kernel_supports_netns
from tests.support.paths import ROOT
from tests.support.require import require, require_cmd, require_root

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]


def test_snmp_vs_exporter_runs_small() -> None:
    """All three pollers walk the agent and the varbind counts agree with its interface table."""
    require_root()
    require_cmd("ip", "snmpd", "snmpget", "prometheus-snmp-exporter")
    require(kernel_supports_netns(), "kernel network namespaces with veth")
    repo = str(ROOT)
    if repo not in sys.path:  # bench/ is a measurement package at the repo root, not installed
        sys.path.insert(0, repo)
    from bench import snmp_vs_exporter as bench

    links, polls = 6, 2
    results = bench.run(links=links, polls=polls, pysnmp=True, repeat=1)
    assert [r.tool for r in results if r.tool.startswith("govnet")] == [
        "govnet poll only",
        "govnet poll+/metrics",
    ]
    by_tool = {r.tool.split()[0]: r for r in results}
    assert set(by_tool) == {"govnet", "snmp_exporter", "pysnmp"}
    rows = links + 2  # data links, the uplink and lo
    expected = polls * rows * len(bench.IF_COLUMNS)
    assert by_tool["snmp_exporter"].varbinds == expected
    assert by_tool["pysnmp"].varbinds == (polls // 4 or 1) * rows * len(bench.IF_COLUMNS)
    assert by_tool["govnet"].polls == polls and by_tool["govnet"].varbinds >= expected
    for r in results:
        assert r.cpu_s >= 0 and r.wall_s > 0
    table = bench.format_table(results)
    assert "ratio govnet end to end / snmp_exporter" in table
