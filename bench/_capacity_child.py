"""Child process for the capacity bench: run govnet's real Scheduler + SnmpCollector for a while.

Spec on stdin: {"inventory": {...}, "duration_s": D, "max_concurrency": C, "timeout_s": T}.  Every
device is polled on its own interval (from the inventory) exactly as `govnet run` does, for D seconds;
then the scheduler is stopped.  Prints one JSON object: polls, failures, missed, lateness and duration
percentiles, and the process CPU over the run (so the poller's own cost, not the lab's).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from collectors.scheduler import Scheduler, SchedulerSettings
from collectors.snmp import SnmpCollector
from core.samples import Sample
from inventory.model import Inventory


class RecordingSink:
    """Keeps, per finished poll, whether it succeeded, its lateness and its duration."""

    def __init__(self) -> None:
        self.polls: list[tuple[float, float, float]] = []  # (up, lateness, duration)
        self.samples = 0

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Record the scheduler's poll metrics of one device's sample set."""
        vals = {s.metric: s.value for s in samples if not s.label_dict.get("ifname")}
        self.samples += len(samples)
        self.polls.append(
            (
                vals.get("govnet_up", 0.0),
                vals.get("govnet_poll_lateness_seconds", 0.0),
                vals.get("govnet_poll_duration_seconds", 0.0),
            )
        )


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    inv = Inventory.model_validate(spec["inventory"])
    sink = RecordingSink()
    settings = SchedulerSettings(
        max_concurrency=int(spec.get("max_concurrency", 64)), timeout=float(spec.get("timeout_s", 2.0))
    )
    scheduler = Scheduler(inv, SnmpCollector(), sink, settings)
    # Polls already due when the run ends still complete (each ends by its hard stop), so every slot of
    # the measured window is counted.
    scheduler.shutdown_grace = float(spec.get("grace_s", 60.0))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(float(spec["duration_s"]))
    scheduler.stop()
    await task
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    late = [p[1] for p in sink.polls]
    dur = [p[2] for p in sink.polls]
    return {
        "devices": len(inv.devices),
        "polls": len(sink.polls),
        "failures": sum(1 for p in sink.polls if p[0] != 1.0),
        "missed": scheduler.schedule.missed_total,
        "samples": sink.samples,
        "lateness_p50": percentile(late, 0.5),
        "lateness_p99": percentile(late, 0.99),
        "lateness_max": max(late, default=0.0),
        "duration_p50": percentile(dur, 0.5),
        "duration_p99": percentile(dur, 0.99),
        "duration_max": max(dur, default=0.0),
        "cpu_s": cpu,
        "wall_s": wall,
        "load1": os.getloadavg()[0],
    }


def main() -> None:
    """Entry point: spec on stdin, result on stdout."""
    print(json.dumps(asyncio.run(_main(json.load(sys.stdin)))))


if __name__ == "__main__":
    main()
