"""Forward durable frames to an external log platform over TCP (RFC 6587 octet counting).

The local store stays the record of truth: frames are forwarded only after they are durable
locally, the queue is bounded, and anything dropped because the platform was unreachable for too
long is counted exactly (the frames remain in the local store and can be exported or replayed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass


@dataclass
class ForwardStats:
    """Counters exported as metrics (govnet_syslog_forward_*)."""

    forwarded_total: int = 0
    dropped_total: int = 0
    connects_total: int = 0
    connected: bool = False


class Forwarder:
    """One TCP connection to the platform, reconnecting with capped backoff; bounded queue."""

    def __init__(self, host: str, port: int, max_queue: int = 100_000, max_backoff: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.max_backoff = max_backoff
        self.stats = ForwardStats()
        self._queue: deque[bytes] = deque()
        self._max_queue = max_queue
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def push(self, frames: list[bytes]) -> None:
        """Queue durable frames; beyond the cap the oldest are dropped and counted."""
        self._queue.extend(frames)
        overflow = len(self._queue) - self._max_queue
        for _ in range(max(0, overflow)):
            self._queue.popleft()
            self.stats.dropped_total += 1
        if self._queue:
            self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        """Start the sending task."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="syslog-forwarder")

    async def flush(self) -> None:
        """Wait until every queued frame has been written to the platform (wrap in asyncio.timeout)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop sending (what is still queued stays counted as not forwarded)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.5
        while not self._closing:
            try:
                _reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.5
            self.stats.connects_total += 1
            self.stats.connected = True
            try:
                await self._send_loop(writer)
            except OSError:
                pass  # reconnect; frames of the failed write were put back
            finally:
                self.stats.connected = False
                writer.close()

    async def _send_loop(self, writer: asyncio.StreamWriter) -> None:
        while not self._closing:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), 1000))]
            data = b"".join(b"%d %s" % (len(f), f) for f in batch)
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                self._queue.extendleft(reversed(batch))  # at-least-once: resend after reconnect
                raise
            self.stats.forwarded_total += len(batch)
