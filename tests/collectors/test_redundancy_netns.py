"""End to end in real network namespaces: snmpd agents, veth uplinks taken down with `ip link`, real
snmptrap linkDown/linkUp -> trap receiver -> scheduler re-poll -> latest store -> reachability service,
with the ICMP prober running on the management bridge."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from collectors.icmp.service import ProbesConfig, ProbeService
from collectors.redundancy import ReachabilityService
from collectors.scheduler import Scheduler, SchedulerSettings
from collectors.traps.service import TrapsConfig, TrapService
from core.fanout import FanOut
from core.latest import LatestStore
from inventory.model import Inventory
from tests.support.require import require_cmd, require_root

pytestmark = pytest.mark.netns
LINKDOWN, LINKUP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"


def inventory(addr: dict[str, str]) -> Inventory:
    dev = {"site": "s", "vendor": "linux"}
    return Inventory.model_validate(
        {
            "defaults": {"poll_interval": "1d", "snmp": {"version": "2c", "community": "env:GV5_POLL"}},
            "sites": [{"name": "s"}],
            "devices": [
                {"name": "core", "role": "core_switch", "address": addr["core"], **dev},
                {"name": "agg", "role": "aggregation_switch", "address": addr["agg"], **dev},
                {"name": "acc", "role": "access_switch", "address": addr["acc"], **dev},
            ],
            "links": [
                {
                    "a": {"device": "agg", "interface": "up1"},
                    "b": {"device": "core", "interface": "dn1"},
                    "redundancy_group": "agg-uplinks",
                },
                {
                    "a": {"device": "agg", "interface": "up2"},
                    "b": {"device": "core", "interface": "dn2"},
                    "redundancy_group": "agg-uplinks",
                },
                {"a": {"device": "acc", "interface": "up1"}, "b": {"device": "agg", "interface": "dn1"}},
            ],
        }
    )


def test_uplink_failures_degrade_then_cut_off_the_site_each_transition_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_root()
    require_cmd("ip", "snmpd", "snmptrap", "snmpget")
    from collectors.snmp import SnmpCollector
    from tests.support.netlab import MGMT_GW, NetLab

    monkeypatch.setenv("GV5_POLL", "gv5poll")
    monkeypatch.setenv("GV5_TRAP", "gv5trap")
    with NetLab() as lab:
        addr = {n: lab.add_ns(n) for n in ("core", "agg", "acc")}
        lab.link("agg", "up1", "core", "dn1")
        lab.link("agg", "up2", "core", "dn2")
        lab.link("acc", "up1", "agg", "dn1")
        for n in addr:
            lab.snmpd(n, "gv5poll")
        inv = inventory(addr)

        async def scenario() -> None:
            store = LatestStore()
            traps = TrapService(
                inv,
                TrapsConfig.model_validate({"listen": f"{MGMT_GW}:0", "communities": ["env:GV5_TRAP"]}),
                request_poll=lambda: scheduler.poll_now,
            )
            scheduler = Scheduler(
                inv,
                SnmpCollector(timeout_s=1.0, retries=1),
                FanOut([store, traps]),
                SchedulerSettings(timeout=1.0, retries=1),
            )
            prober = ProbeService(
                inv, ProbesConfig.model_validate({"interval": "0.5s", "timeout": "0.3s", "count": 1})
            )
            reach = ReachabilityService(inv, store, prober.probe_up, interval=0.1)
            rcv = traps.start()
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(scheduler.run()),
                *(asyncio.create_task(s.run(stop)) for s in (traps, prober, reach)),
            ]

            def polls(dev: str) -> int:
                return scheduler.schedule.devices[dev].polls

            async def until(cond: Any, limit: float = 5.0) -> float:
                t0 = time.monotonic()
                while not cond():
                    assert time.monotonic() - t0 < limit, "condition not met in time"
                    await asyncio.sleep(0.02)
                return time.monotonic() - t0

            async def trap_from_agg(trap_oid: str, if_index: str) -> None:
                proc = await asyncio.create_subprocess_exec(
                    "ip",
                    "netns",
                    "exec",
                    lab.namespaces["agg"],
                    "snmptrap",
                    "-v2c",
                    "-c",
                    "gv5trap",
                    f"{MGMT_GW}:{rcv.port}",
                    "",
                    trap_oid,
                    "1.3.6.1.2.1.2.2.1.1." + if_index,
                    "i",
                    if_index,
                    env={**os.environ, "MIBS": ""},
                )
                assert await proc.wait() == 0

            def if_index(dev: str, ifname: str) -> str:
                """The ifIndex the real agent gave the interface (from the first poll)."""
                for smp in store.snapshot():
                    lab_ = smp.label_dict
                    if (
                        smp.metric == "govnet_if_oper_up"
                        and lab_["device"] == dev
                        and lab_["ifname"] == ifname
                    ):
                        return lab_["ifindex"]
                raise AssertionError(f"{dev} {ifname} not polled")

            def state(dev: str) -> str | None:
                return reach.report.devices.get(dev) if reach.report else None

            def group() -> tuple[int, int, str] | None:
                g = reach.report.groups.get(("links", "agg-uplinks")) if reach.report else None
                return (g.up, g.expected, g.state) if g else None

            try:
                await asyncio.sleep(0.1)
                # A healthy baseline: freshly started agents may report a just-created veth down for a
                # moment (their interface cache), so poll until every device sees every link up.
                await until(lambda: prober.probe_up() == {"core": True, "agg": True, "acc": True})
                deadline = time.monotonic() + 8
                while True:
                    before = {d: polls(d) for d in ("core", "agg", "acc")}
                    for d in before:
                        assert scheduler.poll_now(d)
                    await until(lambda: all(polls(d) > before[d] for d in before))  # noqa: B023
                    rep = reach.recompute()
                    if set(rep.devices.values()) == {"up"} and group() == (2, 2, "ok"):
                        break
                    assert time.monotonic() < deadline, f"no healthy baseline: {rep.links_down}"
                    await asyncio.sleep(0.5)
                reach.tracker.transitions.clear()  # count transitions from the healthy baseline on
                assert store.devices() == ["acc", "agg", "core"]

                # One uplink down: the agg's linkDown trap -> re-poll -> degraded.
                lab.set_link("agg", "up1", up=False)
                n = polls("agg")
                t0 = time.monotonic()
                await trap_from_agg(LINKDOWN, if_index("agg", "up1"))
                # net-snmp caches its interface table (~2-3 s): the first re-poll may still see the link
                # up; the trap stays unconfirmed and is re-polled every 0.5 s until the poll shows it.
                await until(lambda: state("agg") == "degraded", 6.0)
                took = time.monotonic() - t0
                print(
                    f"uplink 1 down: degraded {took * 1000:.0f} ms after the trap was sent, "
                    f"{polls('agg') - n} re-poll(s)"
                )
                assert polls("agg") > n and group() == (1, 2, "degraded") and state("acc") == "up"
                await until(lambda: traps.confirmed_total == 1, 1.0)

                # Second uplink down: the site and what hangs below it are unreachable.
                lab.set_link("agg", "up2", up=False)
                await trap_from_agg(LINKDOWN, if_index("agg", "up2"))
                await until(lambda: state("agg") == "unreachable", 6.0)
                assert state("acc") == "unreachable" and group() == (0, 2, "down")
                assert state("core") == "up"
                samples = {
                    (s.metric, s.label_dict.get("device"), s.label_dict.get("state")): s.value
                    for s in reach.internal_samples()
                }
                assert samples[("govnet_reachability_state", "acc", "unreachable")] == 1.0
                assert samples[("govnet_reachability_state", "agg", "down")] == 0.0

                # Both back: healthy again.
                lab.set_link("agg", "up1", up=True)
                lab.set_link("agg", "up2", up=True)
                await asyncio.sleep(0.3)  # carrier comes back on both veth ends
                await trap_from_agg(LINKUP, if_index("agg", "up1"))
                await until(lambda: state("agg") == "up" and group() == (2, 2, "ok"), 6.0)
                assert state("acc") == "up"
                await asyncio.sleep(0.3)  # a few more evaluations: no spurious transitions
                by_subject: dict[str, list[tuple[str, str]]] = {}
                for t in reach.tracker.transitions:
                    by_subject.setdefault(t.subject, []).append((t.old, t.new))
                assert by_subject == {
                    "agg": [("up", "degraded"), ("degraded", "unreachable"), ("unreachable", "up")],
                    "acc": [("up", "unreachable"), ("unreachable", "up")],
                    "links:agg-uplinks": [("ok", "degraded"), ("degraded", "down"), ("down", "ok")],
                }
                assert rcv.received == {("agg", "linkDown"): 2, ("agg", "linkUp"): 1}
                assert traps.confirmed_total == 3 and traps.unconfirmed_total == 0
                assert traps.repolls_total["agg"] >= 3
            finally:
                stop.set()
                scheduler.stop()
                await asyncio.gather(*tasks)

        asyncio.run(scenario())
