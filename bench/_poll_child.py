"""Child process for the benches: poll devices with govnet's SnmpCollector and report its own CPU.

Reads one JSON object on stdin: {"inventory": {...}, "devices": [names] | null, "polls": N, "warmup": W,
"concurrency": C}.  Runs W unmeasured rounds (imports, key localisation, socket set-up), then N measured
rounds over all devices (C at a time), and prints one JSON object: polls, ok, varbinds, cpu_s, wall_s.
Running in its own process keeps the measurement free of the parent's agent/exporter bookkeeping.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from collectors.base import PollResult
from collectors.snmp import SnmpCollector
from inventory.model import Device, Inventory


async def _round(collector: Any, inv: Inventory, devices: list[Device], concurrency: int) -> list[PollResult]:
    sem = asyncio.Semaphore(concurrency)

    async def one(dev: Device) -> PollResult:
        async with sem:
            result: PollResult = await collector.poll(inv, dev, time.time())
            return result

    return await asyncio.gather(*(one(d) for d in devices))


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    inv = Inventory.model_validate(spec["inventory"])
    names = spec.get("devices")
    devices = [inv.device(n) for n in names] if names else list(inv.devices)
    concurrency = int(spec.get("concurrency", 1))
    collector = SnmpCollector()
    errors: list[str] = []
    for _ in range(int(spec.get("warmup", 1))):
        await _round(collector, inv, devices, concurrency)
    polls = ok = varbinds = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(int(spec["polls"])):
        for r in await _round(collector, inv, devices, concurrency):
            polls += 1
            ok += r.ok
            varbinds += r.varbinds
            if not r.ok and r.error and len(errors) < 5:
                errors.append(f"{r.device}: {r.error}")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    close = getattr(collector, "close", None)
    if close is not None:
        res = close()
        if asyncio.iscoroutine(res):
            await res
    return {"polls": polls, "ok": ok, "varbinds": varbinds, "cpu_s": cpu, "wall_s": wall, "errors": errors}


def main() -> None:
    """Entry point: spec on stdin, result on stdout."""
    spec = json.load(sys.stdin)
    print(json.dumps(asyncio.run(_main(spec))))


if __name__ == "__main__":
    main()
