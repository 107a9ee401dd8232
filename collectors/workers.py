"""Poll on every core: N poller worker processes under one supervisor, devices split by the hash ring.

`govnet run` with `scheduler.workers` > 1 starts `python -m collectors.worker` N times. Each worker runs
an ordinary `Scheduler` over its share of the devices (the consistent-hash ring over the live workers,
the same ring the cluster uses between nodes) and sends each poll's sample set back over its stdout
pipe in batches (length-prefixed pickle frames; HELP text once per metric). The supervisor, in the
main process, hands the samples to the one fan-out (latest store, alert engine, Influx writer) and
serves the one API. When a worker dies its devices move at once to the live workers (polled now, as
they went unpolled); the worker is restarted after a backoff and takes its share back.

The pipe carries only data between our own processes (parent and child run the same code), hence pickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import pickle
import struct
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.scheduler import SCHEDULER_METRICS, SchedulerSettings
from core.pipeline import SampleSink
from core.ring import HashRing
from core.samples import Layout, MetricType, Sample, SampleSet
from inventory.model import Device, Inventory

log = logging.getLogger(__name__)

_LEN = struct.Struct("!I")
MAX_FRAME = 256 * 1024 * 1024
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)

WORKER_METRICS: dict[str, tuple[MetricType, str]] = {
    "govnet_workers": ("gauge", "Poller worker processes configured."),
    "govnet_workers_up": ("gauge", "Poller worker processes running now."),
    "govnet_worker_devices": ("gauge", "Devices assigned to the worker."),
    "govnet_worker_restarts_total": ("counter", "Times the worker process was restarted after it ended."),
    "govnet_worker_takeovers_total": ("counter", "Devices moved to a live worker because theirs ended."),
}

# A sample on the wire: (metric, labels, value, timestamp, type); HELP travels once per metric.
WireSample = tuple[str, tuple[tuple[str, str], ...], float, float, MetricType]


def encode(message: Any) -> bytes:
    """One frame: 4-byte big-endian length, then the pickled message."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message (raises asyncio.IncompleteReadError at the end of the stream)."""
    (n,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if n > MAX_FRAME:
        raise ValueError(f"frame of {n} bytes")
    return pickle.loads(await reader.readexactly(n))  # noqa: S301 -- our own parent or child only


# A SampleSet on the wire: its layout only when it differs from the one last sent for the device (else
# None: the supervisor keeps the last one per worker and device), the values as bytes, the timestamp(s).
WireSet = tuple[Layout | None, bytes, float | bytes]


class SampleBatcher:
    """Worker side: collects poll results and writes them as one frame per batch (a SampleSink)."""

    def __init__(self, write: Callable[[bytes], None], max_devices: int = 200) -> None:
        self._write = write
        self.max_devices = max_devices
        self._pending: list[tuple[str, list[WireSample] | WireSet]] = []
        self._helps: dict[str, str] = {}
        self._sent_help: set[str] = set()
        self._sent_layout: dict[str, Layout] = {}

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Queue one device's sample set (sent at the next flush)."""
        if isinstance(samples, SampleSet):
            layout: Layout | None = samples.layout
            if self._sent_layout.get(device) is layout:
                layout = None
            else:
                self._sent_layout[device] = samples.layout
            st = samples.stamps
            self._pending.append(
                (device, (layout, samples.values.tobytes(), st if isinstance(st, float) else st.tobytes()))
            )
            if len(self._pending) >= self.max_devices:
                self.flush()
            return
        self._sent_layout.pop(device, None)
        wire: list[WireSample] = []
        for s in samples:
            if s.metric not in self._sent_help and s.help:
                self._helps[s.metric] = s.help
                self._sent_help.add(s.metric)
            wire.append((s.metric, s.labels, s.value, s.timestamp, s.type))
        self._pending.append((device, wire))
        if len(self._pending) >= self.max_devices:
            self.flush()

    def flush(self) -> None:
        """Write the queued sample sets as one frame."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        helps, self._helps = self._helps, {}
        self._write(encode(("samples", helps, batch)))


@dataclass
class _Worker:
    index: int
    proc: asyncio.subprocess.Process | None = None
    devices: set[str] = field(default_factory=set)
    restarts: int = 0
    stats: dict[str, float] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)  # the last layout it sent per device

    @property
    def name(self) -> str:
        return f"w{self.index}"

    @property
    def live(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class WorkerPool:
    """The supervisor: starts and restarts the workers, splits the devices, forwards their samples.

    It offers the scheduler's face to the rest of `govnet run` (run, stop, poll_now, set_devices,
    device_names, internal_samples, healthy), so traps, the cluster shard and /healthz work unchanged.
    """

    def __init__(
        self,
        inventory: Path,
        settings: SchedulerSettings,
        workers: int,
        fanout: SampleSink,
        devices: Sequence[Device],
        command: Sequence[str] | None = None,
        loaded: Inventory | None = None,
    ) -> None:
        self.inventory = inventory
        # The validated inventory, sent to each worker as its first frame: a worker that parsed the
        # YAML itself kept ~27 kB per device of parser leftovers (fragmented heap) for its lifetime.
        # Only what polling reads (defaults and devices): links, sites, services stay here.
        self._inventory_frame = encode(("inventory", polling_part(loaded))) if loaded is not None else None
        self.settings = settings
        self.fanout = fanout
        self.command = list(command or [sys.executable, "-m", "collectors.worker"])
        self._workers = [_Worker(i) for i in range(max(1, workers))]
        self._devices = [d.name for d in devices]
        self._owner: dict[str, _Worker] = {}
        self._stopping = False
        self._stopped = asyncio.Event()
        self.takeovers_total = 0
        self.last_tick = 0.0
        self.clock: Callable[[], float] = time.monotonic

    # -- the scheduler's face ------------------------------------------------------------------

    def device_names(self) -> list[str]:
        """The devices polled by this node (all workers)."""
        return list(self._devices)

    def poll_now(self, name: str) -> bool:
        """Ask the device's worker to poll it now (trap confirmation)."""
        w = self._owner.get(name)
        if w is None or not w.live:
            return False
        self._send(w, ("poll_now", name))
        return True

    def set_devices(
        self, devices: Sequence[Device], now: float, poll_new_now: bool = False
    ) -> tuple[list[str], list[str]]:
        """Poll exactly `devices` from now on (the cluster's shard); returns (added, removed)."""
        wanted = [d.name for d in devices]
        old = set(self._devices)
        added = [n for n in wanted if n not in old]
        removed = [n for n in self._devices if n not in set(wanted)]
        self._devices = wanted
        self._rebalance(poll_now=set(added) if poll_new_now else set())
        return added, removed

    def stop(self) -> None:
        """Ask run() to stop the workers and return."""
        self._stopping = True
        self._stopped.set()

    def healthy(self, max_stall: float = 5.0) -> bool:
        """True while the supervisor ticks and at least one worker runs."""
        live = any(w.live for w in self._workers)
        return not self._stopping and live and self.clock() - self.last_tick < max_stall

    def internal_samples(self) -> list[Sample]:
        """The scheduler metrics summed over the live workers, and the workers' own."""
        ts = time.time()
        out: list[Sample] = []
        for metric, (kind, help_) in SCHEDULER_METRICS.items():
            value = sum(w.stats.get(metric, 0.0) for w in self._workers if w.live)
            out.append(Sample(metric, (), value, ts, kind, help_))

        def own(metric: str, value: float, labels: tuple[tuple[str, str], ...] = ()) -> None:
            kind, help_ = WORKER_METRICS[metric]
            out.append(Sample(metric, labels, value, ts, kind, help_))

        own("govnet_workers", float(len(self._workers)))
        own("govnet_workers_up", float(sum(1 for w in self._workers if w.live)))
        own("govnet_worker_takeovers_total", float(self.takeovers_total))
        for w in self._workers:
            labels = (("worker", str(w.index)),)
            own("govnet_worker_devices", float(len(w.devices)), labels)
            own("govnet_worker_restarts_total", float(w.restarts), labels)
        return out

    # -- supervision ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the workers, keep them running and their share current until stop()."""
        self.last_tick = self.clock()
        tasks = [asyncio.create_task(self._supervise(w), name=f"worker-{w.index}") for w in self._workers]
        try:
            while not self._stopping:
                self.last_tick = self.clock()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._stopped.wait()
        finally:
            for w in self._workers:
                self._send(w, ("stop",))
            _done, pending = await asyncio.wait(tasks, timeout=10.0)
            for w in self._workers:
                if w.live and w.proc is not None:
                    w.proc.kill()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _supervise(self, w: _Worker) -> None:
        # Start, read until the worker ends, hand its devices to the others, wait, start again.
        first = True
        failures = 0
        while not self._stopping:
            try:
                w.proc = await asyncio.create_subprocess_exec(
                    *self.command,
                    "--inventory",
                    str(self.inventory),
                    "--settings",
                    json.dumps(dataclasses.asdict(self.settings)),
                    "--index",
                    str(w.index),
                    *(["--inventory-from-stdin"] if self._inventory_frame is not None else []),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=1 << 20,
                )
            except OSError as exc:
                log.error("worker %d: cannot start: %s", w.index, exc)
                w.proc = None
            else:
                if self._inventory_frame is not None and w.proc.stdin is not None:
                    w.proc.stdin.write(self._inventory_frame)
                if not first:
                    w.restarts += 1
                started = self.clock()
                # The first start spreads devices over their phases; a restart takes its share back
                # on the grid too (the others polled those devices meanwhile).
                self._rebalance(poll_now=set())
                await self._read(w)
                if w.proc is not None:
                    await w.proc.wait()
                    if not self._stopping:
                        log.warning("worker %d ended (exit %s); its devices move", w.index, w.proc.returncode)
                if self.clock() - started > 60.0:
                    failures = 0
            first = False
            w.stats = {}
            w.layouts = {}  # a new worker process sends every layout afresh
            if self._stopping:
                return
            self._rebalance(poll_now=set(w.devices))
            delay = RESTART_BACKOFF[min(failures, len(RESTART_BACKOFF) - 1)]
            failures += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopped.wait()

    async def _read(self, w: _Worker) -> None:
        assert w.proc is not None and w.proc.stdout is not None
        reader = w.proc.stdout
        while True:
            try:
                message = await read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            except (ValueError, pickle.UnpicklingError, EOFError) as exc:
                log.error("worker %d: bad frame (%s); restarting it", w.index, exc)
                if w.live:
                    w.proc.kill()
                return
            kind = message[0]
            if kind == "samples":
                _, helps, batch = message
                w.helps.update(helps)
                for device, wire in batch:
                    # Decoded even when the device moved away meanwhile: the worker counts its layout
                    # as sent, so ours must follow, or a later set could meet a stale layout.
                    samples = self._decode(w, device, wire)
                    # A device moved away meanwhile is published by its new owner only.
                    if samples is None or self._owner.get(device) is not w:
                        continue
                    try:
                        self.fanout.publish(device, samples)
                    except Exception:
                        log.exception("fan-out failed for %s", device)
            elif kind == "stats":
                w.stats = dict(message[1])

    @staticmethod
    def _decode(w: _Worker, device: str, wire: list[WireSample] | WireSet) -> Sequence[Sample] | None:
        if isinstance(wire, list):
            w.layouts.pop(device, None)
            return [
                Sample(m, labels, value, ts, typ, w.helps.get(m, "")) for m, labels, value, ts, typ in wire
            ]
        layout, raw, stamps = wire
        if layout is None:
            layout = w.layouts.get(device)
            if layout is None:  # cannot happen between one worker and us; never guess
                log.error("worker %d: no layout for %s", w.index, device)
                return None
        else:
            layout = w.layouts[device] = layout.interned()
        values = array("d")
        values.frombytes(raw)
        st: float | array[float] = stamps if isinstance(stamps, float) else array("d", stamps)
        try:
            return SampleSet(layout, values, st)
        except ValueError:  # values that do not fit the layout: never publish them under it
            log.error(
                "worker %d: %d values for a layout of %d series (%s)",
                w.index,
                len(values),
                len(layout),
                device,
            )
            w.layouts.pop(device, None)
            return None

    def _rebalance(self, poll_now: set[str]) -> None:
        # The ring over the live workers (all of them before any has started) decides each share.
        live = [w for w in self._workers if w.live]
        members = live or self._workers
        ring = HashRing([w.name for w in members])
        by_name = {w.name: w for w in members}
        share: dict[int, set[str]] = {w.index: set() for w in self._workers}
        owner: dict[str, _Worker] = {}
        for device in self._devices:
            name = ring.owner(device)
            if name is None:
                continue
            target = by_name[name]
            share[target.index].add(device)
            owner[device] = target
        for w in self._workers:
            new = share[w.index]
            moved_in = new - w.devices
            if w.live:
                taken = {d for d in moved_in if d in poll_now}
                self.takeovers_total += len(taken)
                if new != w.devices:
                    self._send(w, ("devices", sorted(new), sorted(taken)))
            w.devices = new
        self._owner = owner

    def _send(self, w: _Worker, message: Any) -> None:
        if not w.live or w.proc is None or w.proc.stdin is None:
            return
        try:
            w.proc.stdin.write(encode(message))
        except (ConnectionError, RuntimeError) as exc:
            log.warning("worker %d: cannot send: %s", w.index, exc)


def polling_part(inventory: Inventory) -> Inventory:
    """The inventory a poller worker needs: its defaults and devices (the rest is the supervisor's)."""
    empty: dict[str, Any] = {k: [] for k in ("sites", "ha_groups", "links", "backup_jobs", "services")}
    return inventory.model_copy(update=empty)


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
