"""Child process for the benches: poll devices with govnet's SnmpCollector and report its own CPU.

Reads one JSON object on stdin: {"inventory": {...}, "devices": [names] | null, "polls": N, "warmup": W,
"concurrency": C, "exposition": bool}.  Runs W unmeasured rounds (imports, key localisation, socket
set-up), then N measured rounds over all devices (C at a time), and prints one JSON object: polls, ok,
varbinds, cpu_s, wall_s.
With "exposition", each poll is taken end to end like `govnet run` serves it: its samples go to the
latest store and the device's page is fetched from a real MetricsServer (`/metrics?device=NAME`,
HTTP in a thread of this process; the tiny client's CPU is counted too, so this errs against govnet).
Running in its own process keeps the measurement free of the parent's agent/exporter bookkeeping.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
import time
import urllib.parse
from typing import Any

from collectors.base import PollResult
from collectors.snmp import SnmpCollector
from inventory.model import Device, Inventory


class _Scraper:
    """The latest store and a MetricsServer on loopback; `scrape(name)` fetches one device's page."""

    def __init__(self) -> None:
        from core.latest import LatestStore
        from exporters.prometheus import MetricsServer, SamplesCollector

        self.store = LatestStore()
        self.server = MetricsServer("127.0.0.1:0", SamplesCollector(self.store))
        self.server.start()
        self.bytes = 0

    def scrape(self, name: str, samples: list[Any]) -> None:
        self.store.publish(name, samples)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        conn.request("GET", f"/metrics?device={urllib.parse.quote(name)}")
        body = conn.getresponse().read()
        conn.close()
        self.bytes += len(body)


async def _round(
    collector: Any, inv: Inventory, devices: list[Device], concurrency: int, scraper: _Scraper | None = None
) -> list[PollResult]:
    sem = asyncio.Semaphore(concurrency)

    async def one(dev: Device) -> PollResult:
        async with sem:
            result: PollResult = await collector.poll(inv, dev, time.time())
        if scraper is not None:
            await asyncio.to_thread(scraper.scrape, dev.name, result.samples)
        return result

    return await asyncio.gather(*(one(d) for d in devices))


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    inv = Inventory.model_validate(spec["inventory"])
    names = spec.get("devices")
    devices = [inv.device(n) for n in names] if names else list(inv.devices)
    concurrency = int(spec.get("concurrency", 1))
    collector = SnmpCollector()
    scraper = _Scraper() if spec.get("exposition") else None
    errors: list[str] = []
    for _ in range(int(spec.get("warmup", 1))):
        await _round(collector, inv, devices, concurrency, scraper)
    polls = ok = varbinds = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(int(spec["polls"])):
        for r in await _round(collector, inv, devices, concurrency, scraper):
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
    if scraper is not None:
        scraper.server.stop()
    return {"polls": polls, "ok": ok, "varbinds": varbinds, "cpu_s": cpu, "wall_s": wall, "errors": errors}


def main() -> None:
    """Entry point: spec on stdin, result on stdout."""
    spec = json.load(sys.stdin)
    print(json.dumps(asyncio.run(_main(spec))))


if __name__ == "__main__":
    main()
