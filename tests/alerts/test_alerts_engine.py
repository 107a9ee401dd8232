"""Alert engine: state machine, flapping, topology inhibition, incidents, silences, ack, escalation,
deadlines.

Time is passed in; nothing sleeps. Samples go in through the same `publish(device, samples)` sink
interface the scheduler's fan-out uses.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Set
from typing import Any

import pytest

from alerts.engine import Engine, Notification
from alerts.levels import Level
from alerts.oncall import EscalationPolicy, Rota
from alerts.rules import DEFAULT_RULES, load_rules, parse_rules
from alerts.silences import Silence, SilenceSet, parse_matcher
from alerts.state import AlertState, percent_state_change
from core.samples import Sample, labels_of
from inventory.topology import TopoLink, Topology
from tests.support.paths import ROOT

RULES = load_rules(DEFAULT_RULES)


def dev_labels(name: str, role: str, site: str = "ncc") -> tuple[tuple[str, str], ...]:
    return labels_of(device=name, site=site, role=role, vendor="huawei")


class Net:
    """A small extranet driven through the engine's sink interface."""

    def __init__(self, engine: Engine, roles: dict[str, str]) -> None:
        self.engine, self.roles = engine, roles
        self.sent: list[Notification] = []

    def poll(
        self, now: float, down: Set[str] = frozenset(), extra: dict[str, list[Sample]] | None = None
    ) -> list[Notification]:
        for name, role in self.roles.items():
            samples = [Sample("govnet_up", dev_labels(name, role), 0.0 if name in down else 1.0, now)]
            samples += (extra or {}).get(name, [])
            self.engine.publish(name, samples)
        new = self.engine.evaluate(now)
        self.sent.extend(new)
        return new


def star(children: int) -> tuple[Topology, dict[str, str]]:
    """core-1/core-2; agg-x dual-homed; agg-y single-homed on core-1 with `children` access switches."""
    links = [
        TopoLink("agg-x", "g47", "core-1", "g1", "uplink", "x-up"),
        TopoLink("agg-x", "g48", "core-2", "g1", "uplink", "x-up"),
        TopoLink("agg-y", "g48", "core-1", "g2", "uplink"),
    ]
    roles = {
        "core-1": "core_switch",
        "core-2": "core_switch",
        "agg-x": "aggregation_switch",
        "agg-y": "aggregation_switch",
    }
    for i in range(children):
        links.append(TopoLink(f"acc-{i}", "g25", "agg-y", f"g{i + 1}", "uplink"))
        roles[f"acc-{i}"] = "access_switch"
    return Topology(roles, links, {}), roles


# -- state machine ---------------------------------------------------------------------------------


def test_pending_firing_resolved_with_for_and_keep_firing_for() -> None:
    st = AlertState("X", ())
    assert st.step(True, 0, 60, 120) == "pending"
    assert st.step(True, 30, 60, 120) is None
    assert st.step(True, 60, 60, 120) == "firing" and st.fired_at == 60
    assert st.step(False, 90, 60, 120) is None  # kept firing for 120 s after the last active check
    assert st.step(False, 180, 60, 120) == "resolved" and st.resolved_at == 180
    assert st.step(True, 210, 60, 120) == "pending"
    assert st.step(False, 240, 60, 120) == "inactive"


def test_percent_state_change_matches_icinga_bounds() -> None:
    assert percent_state_change(deque([True] * 21)) == 0
    assert percent_state_change(deque([i % 2 == 0 for i in range(21)])) == pytest.approx(100.0)
    # a single change at the newest end weighs 1.2 of 20 -> 6 %, at the oldest end 0.8 -> 4 %
    assert percent_state_change(deque([False] * 20 + [True])) == pytest.approx(6.0)
    assert percent_state_change(deque([False] + [True] * 20)) == pytest.approx(4.0)


@pytest.mark.parametrize("hold", [1, 2, 3, 4])
@pytest.mark.parametrize("interval", [30.0, 60.0])
def test_device_toggling_21_times_pages_at_most_twice(hold: int, interval: float) -> None:
    topo, roles = star(0)
    net = Net(Engine(RULES, topology=topo), roles)
    t, down = 0.0, False
    for _ in range(21):  # 21 toggles, each state held for `hold` polls
        for _ in range(hold):
            net.poll(t, {"agg-x"} if down else set())
            t += interval
        down = not down
    kinds = [n.kind for n in net.sent]
    assert len(kinds) <= 2, kinds
    if hold * interval > 60:  # each down spell outlasts `for: 60s`: it pages once, then it is damped
        assert kinds[0] == "firing", kinds
        alert = next(a for a in net.engine.states.values() if a.rule == "AggregationDown")
        if hold <= 3:  # >= 6 changes in the last 21 checks: Icinga's flapping
            assert kinds == ["firing", "flapping"] and alert.flapping and alert.flap_percent > 25
        else:  # slower: keep_firing_for (5 min) bridges the up spells, it just stays firing
            assert kinds == ["firing"] and alert.state == "firing"
    else:
        assert kinds == []  # never down for 60 s in a row: pending only


# -- topology-aware inhibition ---------------------------------------------------------------------


def test_core_down_with_50_devices_below_pages_exactly_once() -> None:
    topo, roles = star(50)
    net = Net(Engine(RULES, topology=topo), roles)
    for t in range(0, 600, 30):
        net.poll(t, {"core-1", "agg-y", *(f"acc-{i}" for i in range(50))} if t >= 60 else set())
    assert [(n.kind, n.labels["alertname"], n.labels["device"]) for n in net.sent] == [
        ("firing", "CoreDeviceDown", "core-1")
    ]
    views = {(v.alert, v.labels["device"]): v for v in net.engine.alerts(600)}
    unreachable = [v for (a, _), v in views.items() if a == "DeviceUnreachable"]
    assert len(unreachable) == 51 and all(v.inhibited_by == "core-1" for v in unreachable)
    assert views[("UplinkRedundancyLost", "agg-x")].inhibited_by == "core-1"  # consequence, not a page
    # 51 unreachable + agg-x degraded behind core-1, listed on the one page
    assert "受影响（不单独告警）：52 台设备" in net.sent[0].text
    assert "橙色预警·重大事件（II级）" in net.sent[0].text and "处置第一步" in net.sent[0].text
    # core-1 comes back: one resolved notice
    for t in range(600, 1200, 30):
        net.poll(t)
    assert [n.kind for n in net.sent] == ["firing", "resolved"]


def test_one_uplink_down_is_one_degraded_alert_not_a_site_down_page() -> None:
    topo, roles = star(2)
    net = Net(Engine(RULES, topology=topo), roles)
    lab = dict(dev_labels("agg-x", "aggregation_switch"))
    for t in range(0, 300, 30):
        ifs = [
            Sample("govnet_if_oper_up", labels_of(**lab, ifname="g47"), 0.0 if t >= 60 else 1.0, t),
            Sample("govnet_if_oper_up", labels_of(**lab, ifname="g48"), 1.0, t),
        ]
        net.poll(t, extra={"agg-x": ifs})
    assert [(n.kind, n.labels["alertname"]) for n in net.sent] == [("firing", "UplinkRedundancyLost")]
    assert net.sent[0].level is Level.IV and "蓝色预警·一般事件（IV级）" in net.sent[0].text


def test_both_uplinks_down_is_unreachable_not_degraded() -> None:
    topo, roles = star(0)
    net = Net(Engine(RULES, topology=topo), roles)
    lab = dict(dev_labels("core-1", "core_switch"))
    lab2 = dict(dev_labels("core-2", "core_switch"))
    for t in range(0, 300, 30):
        cut = t >= 60
        extra = {
            "core-1": [Sample("govnet_if_oper_up", labels_of(**lab, ifname="g1"), 0.0 if cut else 1.0, t)],
            "core-2": [Sample("govnet_if_oper_up", labels_of(**lab2, ifname="g1"), 0.0 if cut else 1.0, t)],
        }
        net.poll(t, {"agg-x"} if cut else set(), extra)
    assert net.sent == []  # the cause is a link pair, not a device: agg-x is shown unreachable
    views = [(v.alert, v.labels["device"], v.inhibited_by) for v in net.engine.alerts(300)]
    assert views == [("DeviceUnreachable", "agg-x", "上游链路")]


# -- silences, maintenance, acknowledgement, escalation, deadlines ---------------------------------


def ups_engine(**kw: Any) -> tuple[Engine, list[Notification], Callable[..., list[Notification]]]:
    engine = Engine(RULES, **kw)
    sent: list[Notification] = []

    def step(t: float, on_battery: bool = True, device: str = "ups-1") -> list[Notification]:
        lab = labels_of(device=device, site="idc", role="ups", vendor="generic")
        engine.publish(
            device,
            [
                Sample("govnet_up", lab, 1.0, t),
                Sample("govnet_ups_on_battery", lab, 1.0 if on_battery else 0.0, t),
            ],
        )
        new = engine.evaluate(t)
        sent.extend(new)
        return new

    return engine, sent, step


def test_silence_and_maintenance_window_mute_pages_until_they_end() -> None:
    silences = SilenceSet()
    silences.add(Silence("s1", (parse_matcher('device="ups-1"'),), 0, 300, "张三", "更换电池"))
    silences.add(
        Silence(
            "m1",
            (parse_matcher('site=~"id.*"'), parse_matcher('device="ups-2"')),
            0,
            600,
            "李四",
            "机房维护",
            maintenance=True,
        )
    )
    engine, sent, step = ups_engine(silences=silences)
    for t in range(0, 900, 30):
        step(t)
        step(t, device="ups-2")
        if t == 120:
            views = {v.labels["device"]: v.silenced_by for v in engine.alerts(t)}
            assert views == {"ups-1": "s1", "ups-2": "m1"}
            assert silences.in_maintenance({"site": "idc", "device": "ups-2"}, t)
            assert sent == []
    assert [(n.kind, n.labels["device"], n.at) for n in sent] == [
        ("firing", "ups-1", 300),
        ("firing", "ups-2", 600),
    ]


def test_ack_stops_escalation_and_keeps_the_resolved_notice() -> None:
    rota = Rota(("王工", "刘工", "陈科长"), shift_seconds=86400)
    engine, sent, step = ups_engine(escalation=EscalationPolicy(rota))
    for t in range(0, 1200, 30):
        step(t)
    # level III: escalate every 15 min without an ack
    assert [(n.kind, n.recipients) for n in sent] == [("firing", ("王工",)), ("escalation", ("刘工",))]
    assert "未确认，已升级至：刘工" in sent[1].text
    engine.acknowledge(sent[0].incident_id, "刘工", "已联系供电局", now=1200)
    for t in range(1200, 3000, 30):
        step(t, on_battery=t < 2000)
    kinds = [n.kind for n in sent]
    assert kinds == ["firing", "escalation", "resolved"]
    assert "已确认：刘工（已联系供电局）" in sent[-1].text and "已恢复" in sent[-1].text
    with pytest.raises(ValueError):
        engine.acknowledge(sent[0].incident_id, " ", "", now=3000)


def test_unacknowledged_level_ii_escalates_along_the_rota_at_the_configured_time() -> None:
    topo, roles = star(0)
    rota = Rota(("A", "B", "C", "D"), shift_seconds=3600, start=0)
    net = Net(Engine(RULES, topology=topo, escalation=EscalationPolicy(rota, max_steps=2)), roles)
    for t in range(0, 3600, 30):
        net.poll(t, {"core-1"} if t >= 60 else set())
    # fires at 120 s (for: 60s); level II escalates every 10 min: at 720 s to B, 1320 s to C, then stops
    assert [(n.kind, n.recipients, n.at) for n in net.sent] == [
        ("firing", ("A",), 120),
        ("escalation", ("B",), 720),
        ("escalation", ("C",), 1320),
    ]


@pytest.mark.parametrize(("category", "deadline"), [("cii", 3600), ("state", 7200), ("other", 14400)])
def test_reporting_deadline_reminders_for_level_iii(category: str, deadline: int) -> None:
    _, sent, step = ups_engine(report_category=category)
    for t in range(0, deadline + 600, 60):
        step(t)
    fired = sent[0].at
    assert [(n.kind, n.at - fired) for n in sent] == [
        ("firing", 0),
        ("report_due", deadline - 900),
        ("report_overdue", deadline),
    ]
    assert "报告时限" in sent[0].text and "已超时" in sent[-1].text


def test_marking_reported_stops_reminders_and_level_iv_has_no_deadline() -> None:
    engine, sent, step = ups_engine(report_category="cii")
    for t in range(0, 300, 60):
        step(t)
    engine.mark_reported(sent[0].incident_id, "值班长", now=300)
    for t in range(300, 8000, 60):
        step(t)
    assert [n.kind for n in sent] == ["firing"]
    rule = parse_rules(
        {
            "rules": [
                {
                    "alert": "Low",
                    "condition": {"metric": "govnet_ups_on_battery", "op": "==", "value": 1},
                    "level": "IV",
                    "summary": "x",
                    "runbook": ["x"],
                }
            ]
        }
    )
    eng = Engine(rule)
    lab = labels_of(device="u", site="s", role="ups", vendor="generic")
    eng.publish("u", [Sample("govnet_ups_on_battery", lab, 1.0, 0)])
    assert [n.kind for n in eng.evaluate(0)] == ["firing"]
    assert all(not eng.evaluate(t) for t in range(60, 20000, 600))


def test_grouping_puts_alerts_of_one_device_in_one_incident() -> None:
    engine = Engine(RULES)
    lab = labels_of(device="sw", site="s", role="access_switch", vendor="h3c")
    out = []
    for t in range(0, 1500, 60):
        engine.publish(
            "sw",
            [
                Sample("govnet_up", lab, 1.0, t),
                Sample("govnet_cpu_ratio", labels_of(**dict(lab), entity="1"), 0.97, t),
                Sample("govnet_memory_used_ratio", labels_of(**dict(lab)), 0.95 if t >= 120 else 0.5, t),
            ],
        )
        out += engine.evaluate(t)
    assert [n.kind for n in out] == ["firing", "update"]
    assert len({n.incident_id for n in out}) == 1
    assert "共 2 条告警" in out[1].text


def test_english_notifications() -> None:
    _, sent, step = ups_engine(lang="en")
    for t in range(0, 120, 30):
        step(t)
    assert sent[0].text.startswith("[ALERT] level III (yellow)")
    assert "Must be reported" in sent[0].text


def test_engine_is_a_fanout_sink_and_vanished_series_stop_alerting() -> None:
    from core.fanout import FanOut

    engine = Engine(RULES)
    fan = FanOut([engine])
    lab = labels_of(device="sw", site="s", role="access_switch", vendor="h3c")
    temp = Sample("govnet_temperature_celsius", labels_of(**dict(lab), sensor="board"), 85.0, 0)
    for t in range(0, 600, 60):
        fan.publish("sw", [Sample("govnet_up", lab, 1.0, t), Sample(temp.metric, temp.labels, 85.0, t)])
        engine.evaluate(t)
    assert fan.errors_total == 0
    assert [v.alert for v in engine.alerts(600)] == ["TemperatureHigh"]
    assert "85.0℃（board）" in engine.alerts(600)[0].summary
    # the next poll lacks the temperature series (staleness): the alert resolves, not freezes
    fan.publish("sw", [Sample("govnet_up", lab, 1.0, 600)])
    out = engine.evaluate(600)
    assert [n.kind for n in out] == ["resolved"] and engine.alerts(600) == []


def test_example_district_core_down_one_page_and_evaluate_cost(capsys: pytest.CaptureFixture[str]) -> None:
    """The example district (133 devices, 24 interfaces each): nc-core-1 fails, one page; prints the cost."""
    import time

    from inventory.load import load_inventory

    inv = load_inventory(ROOT / "examples" / "district.yaml")
    engine = Engine(RULES, topology=Topology.from_inventory(inv))
    devices = [
        (d.name, labels_of(device=d.name, site=d.site, role=d.role.value, vendor=d.vendor.value))
        for d in inv.devices
    ]

    def batch(lab: tuple[tuple[str, str], ...], t: float, up: float) -> list[Sample]:
        out = [Sample("govnet_up", lab, up, t), Sample("govnet_cpu_ratio", (*lab, ("entity", "1")), 0.3, t)]
        for i in range(24):
            il = tuple(sorted((*lab, ("ifname", f"g{i}"))))
            out += [
                Sample("govnet_if_in_octets_total", il, 1000.0 * t, t),
                Sample("govnet_if_out_octets_total", il, 1000.0 * t, t),
                Sample("govnet_if_in_errors_total", il, 0.0, t),
                Sample("govnet_if_oper_up", il, 1.0, t),
                Sample("govnet_if_speed_bps", il, 1e9, t),
            ]
        return out

    sent, costs, series = [], [], 0
    for t in range(0, 420, 30):
        for name, lab in devices:
            samples = batch(lab, t, 0.0 if t >= 300 and name == "nc-core-1" else 1.0)
            series = series + len(samples) if t == 0 else series
            engine.publish(name, samples)
        start = time.perf_counter()
        sent += engine.evaluate(t)
        costs.append(time.perf_counter() - start)
    assert [(n.kind, n.labels["device"]) for n in sent] == [("firing", "nc-core-1")]
    degraded = [v for v in engine.alerts(420) if v.alert == "UplinkRedundancyLost"]
    assert len(degraded) == 13 and all(v.inhibited_by == "nc-core-1" for v in degraded)
    with capsys.disabled():
        costs.sort()
        print(f"\n[bench] {len(devices)} devices, {series} series: evaluate median "
              f"{costs[len(costs) // 2] * 1000:.1f} ms, max {costs[-1] * 1000:.1f} ms")  # fmt: skip


async def turns_during(evaluation: Coroutine[Any, Any, list[Notification]]) -> tuple[list[Notification], int]:
    """The evaluation's notifications, and how many times another task ran while it was awaited."""
    served = 0

    async def other_task() -> None:
        nonlocal served
        while True:
            served += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    before = served
    try:
        return await evaluation, served - before
    finally:
        task.cancel()


def test_evaluate_yielding_pages_like_evaluate_and_lets_the_loop_run_between_rules() -> None:
    """`govnet run` evaluates with `evaluate_yielding`: same notifications, the loop served between rules."""

    topo, roles = star(20)
    plain, stepped = Net(Engine(RULES, topology=topo), roles), Net(Engine(RULES, topology=topo), roles)
    turns: list[int] = []

    async def drive() -> list[Notification]:
        sent: list[Notification] = []
        for t in range(0, 900, 30):
            down = {"core-1", "agg-y", *(f"acc-{i}" for i in range(20))} if 60 <= t < 600 else set()
            plain.poll(t, down)
            for name, role in roles.items():
                value = 0.0 if name in down else 1.0
                stepped.engine.publish(name, [Sample("govnet_up", dev_labels(name, role), value, t)])
            new, served = await turns_during(stepped.engine.evaluate_yielding(t))
            sent += new
            turns.append(served)
        return sent

    sent = asyncio.run(drive())
    assert [(n.kind, n.labels["alertname"], n.labels["device"]) for n in sent] == [
        (n.kind, n.labels["alertname"], n.labels["device"]) for n in plain.sent
    ]
    assert [n.text for n in sent] == [n.text for n in plain.sent]
    assert [n.kind for n in sent] == ["firing", "resolved"]
    # The other task ran once per rule at least (a blocking evaluation would let it run zero times).
    assert min(turns) >= len(RULES)


def test_evaluate_yielding_hands_the_loop_back_inside_a_rule_over_many_series() -> None:
    """One rule over more series than `SLICE` (every interface of a large node) is itself cut into
    steps, and the stepped evaluation fires exactly what the straight one fires."""

    from alerts.engine import SLICE

    interfaces = 3 * SLICE + 7
    plain, stepped = Engine(RULES), Engine(RULES)

    def publish(engine: Engine, t: float) -> None:
        samples = [Sample("govnet_up", dev_labels("big-1", "core_switch"), 1.0, t)]
        for i in range(interfaces):
            labels = labels_of(device="big-1", site="ncc", role="core_switch", ifname=f"g{i}")
            samples.append(Sample("govnet_if_in_errors_total", labels, t * 100.0, t))
        engine.publish("big-1", samples)

    async def drive() -> list[int]:
        turns: list[int] = []
        for t in range(0, 900, 60):
            publish(plain, float(t))
            publish(stepped, float(t))
            plain.evaluate(float(t))
            _, served = await turns_during(stepped.evaluate_yielding(float(t)))
            turns.append(served)
        return turns

    turns = asyncio.run(drive())
    firing = {k for k, st in plain.states.items() if st.state == "firing"}
    assert len(firing) == interfaces  # every interface's errors fire InterfaceErrors
    assert firing == {k for k, st in stepped.states.items() if st.state == "firing"}
    assert [(i.key, sorted(i.alerts)) for i in plain.incidents.values()] == [
        (i.key, sorted(i.alerts)) for i in stepped.incidents.values()
    ]
    # Besides one turn per rule: the series walk, the labels, the states, the inhibition pass and the
    # grouping each hand the loop back every SLICE items (3 times each over this rule's series).
    assert max(turns) >= len(RULES) + 5 * 3
