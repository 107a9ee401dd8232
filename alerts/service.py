"""The alert loop for `govnet run`: evaluate and deliver every interval; blocking sends off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from alerts.engine import Engine
from alerts.notify.dispatch import Dispatcher

log = logging.getLogger(__name__)


async def run_alerts(
    engine: Engine,
    dispatcher: Dispatcher,
    interval: float,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
) -> int:
    """Evaluate rules and deliver due notifications until `stop` is set; returns the number of cycles.

    Samples reach the engine through the fan-out (`engine.publish`) on the event loop thread; the
    evaluation runs there too (it is CPU work on shared state), while delivery, which blocks on
    HTTP/SMTP, runs in a worker thread so a slow receiver never stalls polling.
    """
    cycles = 0
    while not stop.is_set():
        now = clock()
        try:
            engine.evaluate(now)
            await asyncio.to_thread(dispatcher.run_due, now)
        except Exception:  # one bad cycle must not end alerting; the next one retries
            log.exception("alert cycle failed")
        cycles += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    return cycles
