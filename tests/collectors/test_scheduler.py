"""Scheduler: the pure schedule (no sleeping) and the asyncio driver with dead, slow and healthy devices."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import pytest

from collectors.base import PollResult, device_labels
from collectors.scheduler import (
    HARD_STOP_FRACTION,
    Schedule,
    Scheduler,
    SchedulerSettings,
    next_slot,
    phase_of,
)
from core.samples import Sample
from inventory.model import Device, Inventory


def make_device(name: str, interval: float | None = None, n: int = 1) -> Device:
    return Device(
        name=name,
        site="ncc",
        role="core_switch",
        vendor="huawei",
        address=f"127.23.{n // 250}.{n % 250 + 1}",
        poll_interval=interval,
    )


def ok_result(name: str) -> PollResult:
    return PollResult(name, ok=True, varbinds=10)


def failed_result(name: str) -> PollResult:
    return PollResult(name, ok=False, error="timeout", timeouts=2)


# -- pure schedule ----------------------------------------------------------------------------------


def test_first_polls_spread_over_the_interval_deterministically() -> None:
    sched = Schedule(SchedulerSettings())
    names = [f"dev-{i:03d}" for i in range(500)]
    now = 1000.0
    dues = [sched.add(n, 30.0, now).next_due for n in names]
    assert all(now <= d < now + 30.0 for d in dues)
    buckets = Counter(int(d - now) for d in dues)
    # 500 over 30 one-second buckets: ~16.7 each; a hash spread never piles them up.
    assert len(buckets) == 30
    assert max(buckets.values()) <= 3 * 500 / 30
    again = Schedule(SchedulerSettings())
    assert [again.add(n, 30.0, 5.0).offset for n in names] == [sched.devices[n].offset for n in names]
    assert len({phase_of(n) for n in names}) == 500


def test_next_slot_is_on_the_grid() -> None:
    assert next_slot(3.0, 10.0, 3.0) == 3.0
    assert next_slot(3.0, 10.0, 3.01) == 13.0
    assert next_slot(3.0, 10.0, -20.0) == -17.0


def test_pop_due_lateness_and_next_due_on_grid() -> None:
    sched = Schedule(SchedulerSettings())
    st = sched.add("a", 10.0, 100.0)
    first = st.next_due
    assert sched.pop_due(first - 0.001) == []
    assert sched.next_wakeup() == first
    assert sched.pop_due(first + 0.2) == [("a", first)]
    assert sched.next_wakeup() is None  # running: not scheduled twice
    plan = sched.plan("a", first, first + 0.2)
    assert plan is not None
    nxt = sched.complete("a", plan, ok_result("a"), first + 0.7)
    assert nxt == pytest.approx(first + 10.0)
    assert st.last_lateness == pytest.approx(0.2)
    assert st.last_duration == pytest.approx(0.5)
    assert st.polls == 1 and st.varbinds == 10 and st.missed == 0


@pytest.mark.parametrize("interval", [1.0, 5.0, 30.0, 300.0])
@pytest.mark.parametrize("late_fraction", [0.0, 0.1, 0.5, 0.8])
@pytest.mark.parametrize("cfg_timeout,retries", [(2.0, 1), (10.0, 3), (0.5, 0)])
def test_deadline_never_exceeds_interval(
    interval: float, late_fraction: float, cfg_timeout: float, retries: int
) -> None:
    sched = Schedule(SchedulerSettings(timeout=cfg_timeout, retries=retries))
    st = sched.add("a", interval, 0.0)
    scheduled = st.next_due
    started = scheduled + late_fraction * interval
    plan = sched.plan("a", scheduled, started)
    assert plan is not None
    assert plan.started + plan.deadline_s < plan.hard_stop <= scheduled + interval
    assert plan.timeout_s <= cfg_timeout
    assert plan.timeout_s * (plan.retries + 1) * 2 <= plan.deadline_s + 1e-9
    assert plan.retries == retries


def test_too_late_start_is_skipped_and_counted() -> None:
    sched = Schedule(SchedulerSettings())
    st = sched.add("a", 10.0, 0.0)
    due = st.next_due
    sched.pop_due(due)
    assert sched.plan("a", due, due + HARD_STOP_FRACTION * 10.0 - 0.01) is None
    nxt = sched.skip("a", due, due + 9.0)
    assert nxt == pytest.approx(due + 10.0)
    assert st.missed == 1 and sched.missed_total == 1


def test_unreachable_backoff_and_recovery() -> None:
    settings = SchedulerSettings(unreachable_after=3, unreachable_recheck=60.0)
    sched = Schedule(settings)
    dev = make_device("a", 10.0)
    st = sched.add("a", 10.0, 0.0)
    due = st.next_due
    history = []
    for _ in range(5):
        [(_, scheduled)] = sched.pop_due(due)
        plan = sched.plan("a", scheduled, scheduled)
        assert plan is not None
        due = sched.complete("a", plan, failed_result("a"), scheduled + plan.deadline_s)
        history.append((due - scheduled, st.unreachable))
    # Two failures keep the normal interval, the third moves to the 60 s recheck, which then holds.
    assert history == [(10.0, False), (10.0, False), (60.0, True), (60.0, True), (60.0, True)]
    assert st.consecutive_failures == 5 and st.failures == 5 and st.timeouts == 10
    up = {s.metric: s.value for s in sched.poll_samples(dev, failed_result("a"), 0.0)}
    assert up["govnet_up"] == 0.0 and up["govnet_device_unreachable"] == 1.0
    # One success: back to normal, on the device's own grid, by itself.
    [(_, scheduled)] = sched.pop_due(due)
    plan = sched.plan("a", scheduled, scheduled + 0.1)
    assert plan is not None
    nxt = sched.complete("a", plan, ok_result("a"), scheduled + 0.3)
    assert not st.unreachable and st.consecutive_failures == 0
    assert 0 < nxt - scheduled <= 10.0
    assert (nxt - st.offset) / 10.0 == pytest.approx(round((nxt - st.offset) / 10.0))
    up = {s.metric: s.value for s in sched.poll_samples(dev, ok_result("a"), 0.0)}
    assert up["govnet_up"] == 1.0 and up["govnet_device_unreachable"] == 0.0


def test_default_recheck_is_at_least_a_minute_or_two_intervals() -> None:
    sched = Schedule(SchedulerSettings())
    assert sched.add("a", 10.0, 0.0).recheck == 60.0
    assert sched.add("b", 300.0, 0.0).recheck == 600.0


def test_failed_poll_replaces_data_with_up_zero() -> None:
    sched = Schedule(SchedulerSettings())
    dev = make_device("a", 10.0)
    sched.add("a", 10.0, 0.0)
    labels = (*device_labels(dev), ("ifname", "GE0/0/1"))
    data = Sample("govnet_if_in_octets_total", labels, 5.0, 1.0, "counter")
    fake_up = Sample("govnet_up", device_labels(dev), 7.0, 1.0)
    good = PollResult("a", ok=True, samples=[data, fake_up])
    names = [s.metric for s in sched.poll_samples(dev, good, 1.0)]
    assert "govnet_if_in_octets_total" in names
    assert names.count("govnet_up") == 1
    bad = PollResult("a", ok=False, samples=[data], error="timeout")
    out = sched.poll_samples(dev, bad, 2.0)
    assert "govnet_if_in_octets_total" not in [s.metric for s in out]
    assert all(s.label_dict["device"] == "a" for s in out)


# -- asyncio driver -----------------------------------------------------------------------------------


class LabCollector:
    """Test devices: healthy (10 ms), dead (hangs, ignores its deadline), slow (1.5 x interval)."""

    def __init__(self, behaviour: dict[str, str], heal_at: float) -> None:
        self.behaviour = behaviour
        self.heal_at = heal_at
        self.calls: list[tuple[str, float, float]] = []  # device, monotonic start, deadline_s

    async def poll(
        self, inventory: Inventory, device: Device, now: float, deadline_s: float = 0.0
    ) -> PollResult:
        self.calls.append((device.name, time.monotonic(), deadline_s))
        kind = self.behaviour[device.name]
        if kind == "recovering" and time.monotonic() >= self.heal_at:
            kind = "healthy"
        if kind in ("dead", "recovering"):
            await asyncio.sleep(3600)
        if kind == "slow":
            await asyncio.sleep(1.5 * inventory.interval_of(device))
        await asyncio.sleep(0.01)
        s = Sample("govnet_cpu_ratio", device_labels(device), 0.5, now)
        return PollResult(device.name, ok=True, samples=[s], varbinds=3)


class Recorder:
    def __init__(self) -> None:
        self.sets: list[tuple[str, dict[str, float]]] = []

    def publish(self, device: str, samples: object) -> None:
        assert isinstance(samples, list)
        self.sets.append((device, {s.metric: s.value for s in samples}))


def test_driver_healthy_devices_never_miss_while_dead_and_slow_ones_back_off() -> None:
    interval = 1.0
    behaviour = {f"ok-{i}": "healthy" for i in range(5)}
    behaviour |= {"dead-1": "dead", "dead-2": "dead", "slow-1": "slow", "back-1": "recovering"}
    devices = [make_device(n, interval, i) for i, n in enumerate(behaviour)]
    inv = Inventory(devices=devices)
    t0 = time.monotonic()
    collector = LabCollector(behaviour, heal_at=t0 + 2.5)
    rec = Recorder()
    settings = SchedulerSettings(max_concurrency=5, unreachable_after=2, unreachable_recheck=1.5)
    sched = Scheduler(inv, collector, rec, settings)

    async def main() -> None:
        task = asyncio.create_task(sched.run())
        await asyncio.sleep(6.0)
        sched.stop()
        await task

    asyncio.run(main())
    elapsed = time.monotonic() - t0
    states = sched.schedule.devices
    for name, kind in behaviour.items():
        starts = [t for d, t, _ in collector.calls if d == name]
        if kind == "healthy":
            # Every slot polled: no skips, one poll per interval, gaps of one interval.
            assert states[name].missed == 0, name
            assert len(starts) >= int(elapsed / interval) - 1
            assert all(0.5 < b - a < 1.5 for a, b in itertools.pairwise(starts)), name
            assert states[name].failures == 0
    for name in ("dead-1", "dead-2", "slow-1"):
        st = states[name]
        assert st.unreachable, name
        assert st.last_duration <= HARD_STOP_FRACTION * interval + 0.25
        # Two polls at the normal rate, then rechecks every 1.5 s: at most ~4 in 6 s.
        assert 2 <= st.polls <= 5, (name, st.polls)
    back = states["back-1"]
    assert not back.unreachable and back.consecutive_failures == 0
    ups = [v["govnet_up"] for d, v in rec.sets if d == "back-1"]
    assert ups[0] == 0.0 and ups[-1] == 1.0
    assert all(0 < dl < interval for _, _, dl in collector.calls)
    assert sched.polls_total == len(rec.sets)
    failed_sets = [v for d, v in rec.sets if d == "dead-1"]
    assert all("govnet_cpu_ratio" not in v and v["govnet_up"] == 0.0 for v in failed_sets)
    assert sched.varbinds_per_second() > 0


def test_expedite_polls_now_then_resumes_grid() -> None:
    """A trap-triggered poll runs at once; afterwards the device is back on its own grid."""
    sched = Schedule(SchedulerSettings())
    st = sched.add("sw1", 30.0, now=1000.0)
    grid = st.next_due
    assert sched.expedite("sw1", 1000.5)
    assert sched.pop_due(1000.5) == [("sw1", 1000.5)]
    assert not sched.expedite("sw1", 1000.6)  # already running
    assert sched.pop_due(grid + 0.01) == []  # the old slot is stale, not a second poll
    plan = sched.plan("sw1", 1000.5, 1000.5)
    assert plan is not None
    nxt = sched.complete("sw1", plan, PollResult("sw1", ok=True), 1001.0)
    assert abs(((nxt - st.offset) / 30.0) - round((nxt - st.offset) / 30.0)) < 1e-9
    assert not sched.expedite("unknown", 1001.0)
