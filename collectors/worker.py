"""A poller worker process (`python -m collectors.worker --inventory F --settings JSON --index I`).

With `--inventory-from-stdin` the supervisor's validated inventory arrives as the first frame instead
of being parsed from F again (what `govnet run` does: less memory per worker).
It polls the devices the supervisor names (frames on stdin) with an ordinary Scheduler and writes each
poll's samples back in batches (frames on stdout; logs go to stderr). It ends when stdin closes, so a
worker never outlives its supervisor, even after a kill -9 of `govnet run`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
from pathlib import Path

from collectors.scheduler import Scheduler, SchedulerSettings
from collectors.workers import SampleBatcher, encode, read_frame
from inventory.model import Inventory

log = logging.getLogger("govnet.worker")

FLUSH_INTERVAL = 0.1
PIPE_BYTES = 1 << 20
STATS_INTERVAL = 1.0


async def serve(
    inventory_path: Path, settings: SchedulerSettings, out_fd: int, inventory_from_stdin: bool = False
) -> int:
    """Poll what the supervisor says until stdin closes or it says stop."""
    from collectors.snmp import SnmpCollector
    from inventory.load import load_inventory

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    if inventory_from_stdin:
        # The supervisor's validated inventory (its first frame): no YAML parse here.
        try:
            message = await read_frame(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return 0
        if message[0] != "inventory" or not isinstance(message[1], Inventory):
            log.error("expected the inventory as the first frame")
            return 2
        inventory: Inventory = message[1]
    else:
        inventory = load_inventory(inventory_path)
    known = {d.name: d for d in inventory.devices}

    def write(data: bytes) -> None:
        # Blocking writes to the pipe: the supervisor reads continuously; a full pipe is back-pressure.
        view = memoryview(data)
        while view:
            n = os.write(out_fd, view)
            view = view[n:]

    batcher = SampleBatcher(write)
    collector = SnmpCollector(timeout_s=settings.timeout, retries=settings.retries)
    scheduler = Scheduler(inventory, collector, batcher, settings, devices=[])

    async def control() -> None:
        try:
            while True:
                message = await read_frame(reader)
                if message[0] == "devices":
                    _, names, poll_now = message
                    devices = [known[n] for n in names if n in known]
                    scheduler.set_devices(devices, scheduler.clock())
                    for name in poll_now:
                        scheduler.poll_now(name)
                elif message[0] == "poll_now":
                    scheduler.poll_now(message[1])
                elif message[0] == "stop":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the supervisor is gone
        scheduler.stop()

    async def flusher() -> None:
        ticks = 0
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            batcher.flush()
            ticks += 1
            if ticks * FLUSH_INTERVAL >= STATS_INTERVAL:
                ticks = 0
                stats = {s.metric: s.value for s in scheduler.internal_samples()}
                write(encode(("stats", stats)))

    tasks = [asyncio.create_task(control()), asyncio.create_task(flusher())]
    try:
        await scheduler.run()
    finally:
        batcher.flush()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process."""
    parser = argparse.ArgumentParser(prog="govnet-worker")
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--settings", type=json.loads, required=True, help="SchedulerSettings as JSON")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--inventory-from-stdin", action="store_true", help="first frame: the inventory")
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the supervisor alone decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The frames own fd 1; anything else printing to stdout goes to stderr instead.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    # A 1 MiB pipe (Linux; 64 KiB by default) holds ~7 s of a 2 500-device share's sample sets, so a
    # supervisor busy for a few seconds (an alert evaluation at 5 000 devices) does not stall polling.
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(out_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s %(levelname)s worker-{args.index} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(
            serve(args.inventory, SchedulerSettings(**args.settings), out_fd, args.inventory_from_stdin)
        )
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
