"""Poll every device on its own interval from one asyncio loop, with jitter, a cap and deadlines.

`Schedule` is the pure part (due times, deadlines, unreachable backoff, per-device counters): it
takes the time as a parameter and is tested without sleeping. `Scheduler` is the thin asyncio driver
around it: it sleeps until the next due time, runs polls under a semaphore and a hard deadline, and
publishes each poll's complete sample set to a fan-out.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import math
import time
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collectors.base import Collector, PollResult, device_labels
from core.pipeline import SampleSink
from core.samples import Labels, Layout, MetricType, Sample, SampleSet
from inventory.model import Device, Inventory

log = logging.getLogger(__name__)

# Metrics the scheduler owns; a collector's samples with these names are dropped (no duplicates).
POLL_METRICS: dict[str, tuple[MetricType, str]] = {
    "govnet_up": ("gauge", "1 if the last poll of the device succeeded, 0 if it failed."),
    "govnet_poll_duration_seconds": ("gauge", "Wall time the last poll of the device took."),
    "govnet_poll_lateness_seconds": ("gauge", "Actual start minus scheduled start of the last poll."),
    "govnet_poll_deadline_seconds": ("gauge", "Deadline given to the collector for the last poll."),
    "govnet_polls_total": ("counter", "Polls of the device since govnet started."),
    "govnet_poll_failures_total": ("counter", "Failed polls of the device since govnet started."),
    "govnet_poll_timeouts_total": ("counter", "Request timeouts seen while polling the device."),
    "govnet_poll_varbinds_total": ("counter", "Varbinds (values) received from the device."),
    "govnet_poll_missed_total": ("counter", "Scheduled polls skipped because no time was left."),
    "govnet_device_unreachable": ("gauge", "1 while the device is in the slow unreachable recheck."),
}

SCHEDULER_METRICS: dict[str, tuple[MetricType, str]] = {
    "govnet_scheduler_devices": ("gauge", "Devices the scheduler polls."),
    "govnet_scheduler_inflight_polls": ("gauge", "Polls running right now."),
    "govnet_scheduler_unreachable_devices": ("gauge", "Devices in the unreachable recheck period."),
    "govnet_scheduler_varbinds_per_second": ("gauge", "Varbinds received per second, last 60 s."),
    "govnet_scheduler_polls_total": ("counter", "Polls run, all devices."),
    "govnet_scheduler_poll_failures_total": ("counter", "Failed polls, all devices."),
    "govnet_scheduler_missed_polls_total": ("counter", "Scheduled polls skipped, all devices."),
}

# Fractions of the interval: the hard stop of a poll, and the share of the remaining time the
# collector is told it has (so a well-behaved collector answers before the hard stop cancels it).
HARD_STOP_FRACTION = 0.9
SOFT_DEADLINE_FRACTION = 0.9
MIN_BUDGET_FRACTION = 0.05


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """Knobs of the scheduler (the `scheduler:` section of the config)."""

    max_concurrency: int = 64
    timeout: float = 2.0  # per-request timeout ceiling, seconds
    retries: int = 1
    unreachable_after: int = 3  # consecutive failures before the slow recheck period
    unreachable_recheck: float | None = None  # None: max(60 s, 2 x interval)


@dataclass(frozen=True, slots=True)
class PollPlan:
    """What one poll may spend: the collector's deadline, per-request timeout and retries."""

    scheduled: float
    started: float
    deadline_s: float
    hard_stop: float  # absolute (scheduler clock): the poll is cancelled here
    timeout_s: float
    retries: int


@dataclass(slots=True)
class DeviceState:
    """The schedule and counters of one device."""

    name: str
    interval: float
    offset: float  # phase within the interval, from a hash of the name
    recheck: float
    next_due: float = 0.0
    running: bool = False
    consecutive_failures: int = 0
    unreachable: bool = False
    polls: int = 0
    failures: int = 0
    timeouts: int = 0
    varbinds: int = 0
    missed: int = 0
    last_duration: float = 0.0
    last_lateness: float = 0.0
    last_deadline: float = 0.0
    # The poll metrics' layout and it joined to the collector's last layout (SampleSets, reused).
    poll_layout: Layout | None = None
    joined: tuple[Layout, Layout] | None = None


def phase_of(name: str) -> float:
    """A deterministic fraction in [0, 1) for a device name (spreads first polls over the interval)."""
    return zlib.crc32(name.encode("utf-8")) / 2**32


def next_slot(offset: float, interval: float, after: float) -> float:
    """The first time >= `after` on the grid `offset + k * interval`."""
    k = math.ceil((after - offset) / interval)
    slot = offset + k * interval
    # Floating error can put the slot a hair before `after`.
    return slot if slot >= after else slot + interval


class Schedule:
    """Due times, deadlines and the unreachable state machine of every device; time is passed in."""

    def __init__(self, settings: SchedulerSettings) -> None:
        self.settings = settings
        self.devices: dict[str, DeviceState] = {}
        self._heap: list[tuple[float, str]] = []
        self.missed_total = 0

    def add(self, name: str, interval: float, now: float) -> DeviceState:
        """Start scheduling a device: its first poll is on its own phase of the interval grid."""
        recheck = self.settings.unreachable_recheck or max(60.0, 2.0 * interval)
        st = DeviceState(name, interval, phase_of(name) * interval, max(recheck, interval))
        st.next_due = next_slot(st.offset, interval, now)
        self.devices[name] = st
        heapq.heappush(self._heap, (st.next_due, name))
        return st

    def remove(self, name: str) -> bool:
        """Stop scheduling a device (its heap entries turn stale); False if it was not scheduled."""
        return self.devices.pop(name, None) is not None

    def next_wakeup(self) -> float | None:
        """When the earliest device is due (None when nothing is scheduled)."""
        while self._heap and self._stale(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[str, float]]:
        """Devices due at `now` with their scheduled times; they are marked running."""
        out: list[tuple[str, float]] = []
        while self._heap and self._heap[0][0] <= now:
            due, name = heapq.heappop(self._heap)
            if self._stale((due, name)):
                continue
            self.devices[name].running = True
            out.append((name, due))
        return out

    def expedite(self, name: str, now: float) -> bool:
        """Make a device due now (a trap asks for its state to be confirmed); False if unknown or running."""
        st = self.devices.get(name)
        if st is None or st.running:
            return False
        # The old heap entry turns stale (next_due no longer matches it); the grid resumes afterwards.
        st.next_due = now
        heapq.heappush(self._heap, (now, name))
        return True

    def _stale(self, entry: tuple[float, str]) -> bool:
        st = self.devices.get(entry[1])
        return st is None or st.running or st.next_due != entry[0]

    def plan(self, name: str, scheduled: float, started: float) -> PollPlan | None:
        """The budget of a poll starting at `started`; None when too little time is left (skip it)."""
        st = self.devices[name]
        hard_stop = scheduled + HARD_STOP_FRACTION * st.interval
        remaining = hard_stop - started
        if remaining < MIN_BUDGET_FRACTION * st.interval:
            return None
        deadline = remaining * SOFT_DEADLINE_FRACTION
        retries = max(0, self.settings.retries)
        # Every attempt of every request must fit twice in the deadline (walks need several requests).
        timeout = min(self.settings.timeout, deadline / (retries + 1) / 2)
        return PollPlan(scheduled, started, deadline, hard_stop, timeout, retries)

    def skip(self, name: str, scheduled: float, now: float) -> float:
        """Record a slot skipped for lack of time and schedule the next one."""
        st = self.devices[name]
        st.missed += 1
        self.missed_total += 1
        return self._reschedule(st, scheduled, now, ok=None)

    def complete(self, name: str, plan: PollPlan, result: PollResult, finished: float) -> float:
        """Record a finished poll, run the backoff state machine, return the next due time."""
        st = self.devices[name]
        st.polls += 1
        st.last_duration = max(0.0, finished - plan.started)
        st.last_lateness = max(0.0, plan.started - plan.scheduled)
        st.last_deadline = plan.deadline_s
        st.timeouts += result.timeouts
        st.varbinds += result.varbinds
        if result.ok:
            st.consecutive_failures = 0
            st.unreachable = False
        else:
            st.failures += 1
            st.consecutive_failures += 1
            if st.consecutive_failures >= self.settings.unreachable_after:
                st.unreachable = True
        return self._reschedule(st, plan.scheduled, finished, ok=result.ok)

    def _reschedule(self, st: DeviceState, scheduled: float, now: float, ok: bool | None) -> float:
        if st.unreachable:
            # Slow recheck, counted from the slot that failed (Zabbix "unreachable period").
            due = scheduled + st.recheck
            if due < now:
                due = now + st.recheck
        else:
            # Back on the device's own grid; slots that already passed are missed, not queued up.
            due = next_slot(st.offset, st.interval, max(now, scheduled + st.interval * 0.5))
            skipped = int((due - scheduled) / st.interval + 1e-9) - 1
            if skipped > 0:
                st.missed += skipped
                self.missed_total += skipped
        st.next_due = due
        st.running = False
        heapq.heappush(self._heap, (due, st.name))
        return due

    def poll_samples(
        self, device: Device, result: PollResult | None, timestamp: float
    ) -> list[Sample] | SampleSet:
        """The device's whole sample set after a poll: data only if it succeeded, plus poll metrics."""
        st = self.devices[device.name]
        labels = device_labels(device)
        ok = result is not None and result.ok
        out: list[Sample] = []
        values = self._poll_values(st, ok)
        if ok and result is not None:
            data = result.samples
            if isinstance(data, SampleSet) and not data.metrics() & POLL_METRICS.keys():
                return self._joined(st, data, labels, values, timestamp)
            out = [s for s in data if s.metric not in POLL_METRICS]
        for metric, value in values.items():
            kind, help_ = POLL_METRICS[metric]
            out.append(Sample(metric, labels, value, timestamp, kind, help_))
        return out

    @staticmethod
    def _joined(
        st: DeviceState, data: SampleSet, labels: Labels, values: dict[str, float], timestamp: float
    ) -> SampleSet:
        # The collector's SampleSet followed by the poll metrics, its layout reused while unchanged.
        poll = st.poll_layout
        if poll is None or poll.labels[0] != labels:
            heads = [(m, kind, help_) for m, (kind, help_) in POLL_METRICS.items()]
            poll = st.poll_layout = Layout.build(heads, [labels] * len(heads))
            st.joined = None
        joined = st.joined
        if joined is None or joined[0] is not data.layout:
            joined = st.joined = (data.layout, data.layout.concat(poll))
        stamps: float | array[float] = timestamp
        if isinstance(data.stamps, array) or data.stamps != timestamp:
            stamps = array("d", [*data.timestamps(), *[timestamp] * len(values)])
        return SampleSet(joined[1], data.values + array("d", values.values()), stamps)

    @staticmethod
    def _poll_values(st: DeviceState, ok: bool) -> dict[str, float]:
        return {
            "govnet_up": 1.0 if ok else 0.0,
            "govnet_poll_duration_seconds": st.last_duration,
            "govnet_poll_lateness_seconds": st.last_lateness,
            "govnet_poll_deadline_seconds": st.last_deadline,
            "govnet_polls_total": float(st.polls),
            "govnet_poll_failures_total": float(st.failures),
            "govnet_poll_timeouts_total": float(st.timeouts),
            "govnet_poll_varbinds_total": float(st.varbinds),
            "govnet_poll_missed_total": float(st.missed),
            "govnet_device_unreachable": 1.0 if st.unreachable else 0.0,
        }


def accepted_keywords(collector: Collector) -> set[str]:
    """Which of deadline_s/timeout_s/retries the collector's poll() takes (the base protocol takes none)."""
    try:
        params = inspect.signature(collector.poll).parameters
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {"deadline_s", "timeout_s", "retries"}
    return {k for k in ("deadline_s", "timeout_s", "retries") if k in params}


async def run_poll(
    collector: Collector,
    inventory: Inventory,
    device: Device,
    plan: PollPlan,
    wall_now: float,
    clock: Callable[[], float],
    keywords: set[str],
) -> PollResult:
    """Run one poll under its hard stop; a collector that overruns is cancelled and counted failed."""
    kwargs: dict[str, Any] = {}
    if "deadline_s" in keywords:
        kwargs["deadline_s"] = plan.deadline_s
    if "timeout_s" in keywords:
        kwargs["timeout_s"] = plan.timeout_s
    if "retries" in keywords:
        kwargs["retries"] = plan.retries
    budget = max(0.0, plan.hard_stop - clock())
    try:
        async with asyncio.timeout(budget):
            return await collector.poll(inventory, device, wall_now, **kwargs)
    except TimeoutError:
        return PollResult(device.name, ok=False, error="deadline exceeded", timeouts=1)
    except Exception as exc:  # a collector bug must not kill the loop
        log.warning("collector raised for %s: %s", device.name, type(exc).__name__)
        return PollResult(device.name, ok=False, error=f"collector error: {type(exc).__name__}")


class PollDriver(Protocol):
    """What the rest of `govnet run` needs from the poller: this Scheduler, or the WorkerPool of
    collectors/workers.py that runs Schedulers in worker processes."""

    clock: Callable[[], float]

    async def run(self) -> None:
        """Poll until stop()."""
        ...

    def stop(self) -> None:
        """Ask run() to return."""
        ...

    def poll_now(self, name: str) -> bool:
        """Poll a device as soon as possible."""
        ...

    def set_devices(
        self, devices: Sequence[Device], now: float, poll_new_now: bool = False
    ) -> tuple[list[str], list[str]]:
        """Poll exactly `devices` from now on; (added, removed)."""
        ...

    def device_names(self) -> list[str]:
        """The devices polled now."""
        ...

    def internal_samples(self) -> list[Sample]:
        """Poller-wide metrics."""
        ...

    def healthy(self, max_stall: float = 5.0) -> bool:
        """True while polling goes on."""
        ...


class Scheduler:
    """The asyncio driver: one loop, a semaphore, hard deadlines, results to the fan-out."""

    def __init__(
        self,
        inventory: Inventory,
        collector: Collector,
        fanout: SampleSink,
        settings: SchedulerSettings | None = None,
        devices: Sequence[Device] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.inventory = inventory
        self.collector = collector
        self.fanout = fanout
        self.settings = settings or SchedulerSettings()
        self.schedule = Schedule(self.settings)
        self.clock = clock
        self.wall = wall
        self._devices = {d.name: d for d in (devices if devices is not None else inventory.devices)}
        self._keywords = accepted_keywords(collector)
        self._sem = asyncio.Semaphore(max(1, self.settings.max_concurrency))
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._varbinds: deque[tuple[float, int]] = deque()
        self._stopping = False
        self.polls_total = 0
        self.failures_total = 0
        self.last_tick = 0.0
        self.shutdown_grace = 5.0

    async def run(self) -> None:
        """Poll until stop() is called; then wait for running polls (each ends by its hard stop)."""
        now = self.clock()
        for d in self._devices.values():
            if d.name not in self.schedule.devices:
                self.schedule.add(d.name, self.inventory.interval_of(d), now)
        try:
            while not self._stopping:
                now = self.clock()
                self.last_tick = now
                for name, scheduled in self.schedule.pop_due(now):
                    task = asyncio.create_task(self._poll(name, scheduled))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                wake = self.schedule.next_wakeup()
                delay = 1.0 if wake is None else min(1.0, max(0.0, wake - self.clock()))
                self._wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            await self._drain_tasks()

    async def _drain_tasks(self) -> None:
        # Running polls end by their hard stop; on shutdown do not wait longer than the grace period.
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=self.shutdown_grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def poll_now(self, name: str) -> bool:
        """Poll a device as soon as possible, off its grid (trap confirmation); thread-unsafe, loop only."""
        ok = self.schedule.expedite(name, self.clock())
        if ok:
            self._wake.set()
        return ok

    def set_devices(
        self, devices: Sequence[Device], now: float, poll_new_now: bool = False
    ) -> tuple[list[str], list[str]]:
        """Poll exactly `devices` from now on: new ones join on their own phase, dropped ones stop.

        With `poll_new_now` the new ones are polled at once (a device taken over from a failed node
        has gone unpolled already), then follow their grid. Returns (added, removed) names. A poll of a
        dropped device still running is not published. Loop only (not thread-safe), like poll_now().
        """
        wanted = {d.name: d for d in devices}
        removed = [n for n in self._devices if n not in wanted]
        added = [n for n in wanted if n not in self._devices]
        for name in removed:
            self.schedule.remove(name)
        self._devices = wanted
        for name, device in wanted.items():
            if name not in self.schedule.devices:  # before run() nothing is scheduled yet
                self.schedule.add(name, self.inventory.interval_of(device), now)
        if poll_new_now:
            for name in added:
                self.schedule.expedite(name, now)
        self._wake.set()
        return added, removed

    def device_names(self) -> list[str]:
        """The devices this scheduler polls now (the per-device scrape targets of this node)."""
        return list(self._devices)

    def stop(self) -> None:
        """Ask run() to return after the running polls end."""
        self._stopping = True
        self._wake.set()

    async def _poll(self, name: str, scheduled: float) -> None:
        device = self._devices[name]
        state = self.schedule.devices[name]
        async with self._sem:
            if self.schedule.devices.get(name) is not state:
                return  # dropped by set_devices() while waiting for a slot
            started = self.clock()
            plan = self.schedule.plan(name, scheduled, started)
            if plan is None:
                self.schedule.skip(name, scheduled, started)
                self._wake.set()
                return
            wall_start = self.wall()
            result = await run_poll(
                self.collector, self.inventory, device, plan, wall_start, self.clock, self._keywords
            )
        finished = self.clock()
        if self.schedule.devices.get(name) is not state:
            return  # dropped (or dropped and re-added) while polling: another node owns it now
        self.schedule.complete(name, plan, result, finished)
        self.polls_total += 1
        if not result.ok:
            self.failures_total += 1
        if result.varbinds:
            self._varbinds.append((finished, result.varbinds))
        samples = self.schedule.poll_samples(device, result, wall_start)
        try:
            self.fanout.publish(name, samples)
        except Exception:  # a sink bug must not stop polling
            log.exception("fan-out failed for %s", name)
        self._wake.set()

    def varbinds_per_second(self, window: float = 60.0) -> float:
        """Varbinds received per second over the last `window` seconds, all devices."""
        now = self.clock()
        while self._varbinds and self._varbinds[0][0] < now - window:
            self._varbinds.popleft()
        return sum(n for _, n in self._varbinds) / window

    def internal_samples(self) -> list[Sample]:
        """Scheduler-wide metrics for /metrics."""
        ts = self.wall()
        st = self.schedule.devices.values()
        values = {
            "govnet_scheduler_devices": float(len(self._devices)),
            "govnet_scheduler_inflight_polls": float(sum(1 for s in st if s.running)),
            "govnet_scheduler_unreachable_devices": float(sum(1 for s in st if s.unreachable)),
            "govnet_scheduler_varbinds_per_second": self.varbinds_per_second(),
            "govnet_scheduler_polls_total": float(self.polls_total),
            "govnet_scheduler_poll_failures_total": float(self.failures_total),
            "govnet_scheduler_missed_polls_total": float(self.schedule.missed_total),
        }
        return [
            Sample(m, (), v, ts, SCHEDULER_METRICS[m][0], SCHEDULER_METRICS[m][1]) for m, v in values.items()
        ]

    def healthy(self, max_stall: float = 5.0) -> bool:
        """True while the loop keeps ticking (for /healthz)."""
        return not self._stopping and self.clock() - self.last_tick < max_stall
