"""Benchmark (prints, asserts no timings): poller CPU per 1000 varbinds, gufo-snmp vs pysnmp vs
snmpbulkwalk, walking the same subtree of a real net-snmp snmpd.

Run: .venv/bin/pytest -s -m slow tests/collectors/snmp/test_snmp_bench.py
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import time

import pytest

from collectors.snmp.engine import Fetcher, make_session
from collectors.snmp.netsnmpd import NetSnmpd
from inventory.model import SnmpV2c
from tests.support.require import require_cmd

HOST = "127.22.0.6"
ROOT = "1.3.6.1.2.1"  # all of mib-2: interfaces, IP, TCP/UDP tables, host resources, processes
ROUNDS = 3


async def _gufo(port: int) -> int:
    f = Fetcher(
        make_session(HOST, SnmpV2c(community="env:GOVNET_T_BENCH", port=port), 5.0, 25),
        deadline=time.monotonic() + 120,
        timeout_s=5.0,
        retries=0,
        max_repetitions=25,
    )
    return len(await f.walk(ROOT))


async def _pysnmp(port: int) -> int:
    from pysnmp.hlapi.v1arch.asyncio import (
        CommunityData,
        ObjectIdentity,
        ObjectType,
        SnmpDispatcher,
        UdpTransportTarget,
        bulk_walk_cmd,
    )

    n = 0
    disp = SnmpDispatcher()
    target = await UdpTransportTarget.create((HOST, port), timeout=5, retries=0)
    async for err, status, _idx, vbs in bulk_walk_cmd(
        disp,
        CommunityData("public"),
        target,
        0,
        25,
        ObjectType(ObjectIdentity(ROOT)),
        lookupMib=False,
        lexicographicMode=False,
    ):
        if err or status:
            break
        n += len(vbs)
    disp.transport_dispatcher.close_dispatcher()
    return n


def _measure(fn, port: int) -> tuple[int, float, float]:  # type: ignore[no-untyped-def]
    best_cpu, best_wall, n = float("inf"), float("inf"), 0
    for _ in range(ROUNDS):
        c0, w0 = time.process_time(), time.perf_counter()
        n = asyncio.run(fn(port))
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return n, best_cpu, best_wall


def _netsnmp(port: int) -> tuple[int, float, float]:
    """The C anchor: snmpbulkwalk's own CPU (user + system of the child)."""
    best_cpu, best_wall, n = float("inf"), float("inf"), 0
    for _ in range(ROUNDS):
        r0, w0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        out = subprocess.run(
            [
                "snmpbulkwalk",
                "-v2c",
                "-c",
                "public",
                "-Cr25",
                "-On",
                "-Oq",
                "-t",
                "5",
                f"{HOST}:{port}",
                ROOT,
            ],
            capture_output=True,
            check=True,
            env={"MIBS": ""},
        ).stdout
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        n = out.count(b"\n")
        best_cpu = min(best_cpu, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
        best_wall = min(best_wall, time.perf_counter() - w0)
    return n, best_cpu, best_wall


@pytest.mark.slow
def test_bench_gufo_vs_pysnmp(monkeypatch: pytest.MonkeyPatch) -> None:
    require_cmd("snmpd", "snmpbulkwalk")
    monkeypatch.setenv("GOVNET_T_BENCH", "public")
    with NetSnmpd(HOST) as agent:
        rows = {name: _measure(fn, agent.port) for name, fn in (("gufo-snmp", _gufo), ("pysnmp", _pysnmp))}
        rows["snmpbulkwalk"] = _netsnmp(agent.port)
    for name, (n, cpu, wall) in rows.items():
        print(
            f"\n{name:12s} {n:6d} varbinds  CPU {cpu * 1000:7.1f} ms"
            f"  ({cpu * 1e6 / max(n, 1):6.1f} ms/1000 vb)  wall {wall * 1000:7.1f} ms"
        )
    assert rows["gufo-snmp"][0] > 500
    # Process and socket tables change between walks: the counts agree only roughly.
    assert abs(rows["gufo-snmp"][0] - rows["pysnmp"][0]) <= rows["gufo-snmp"][0] // 10
