"""More lab processes for a big lab: each serves the SNMP agents of every Nth device.

The lab process (`--procs N`) starts N-1 shard processes (`python -m lab.server ... --shard K/N`).
Every process builds the whole inventory's device state from the same start time, so all hold the
same picture; each binds only its own devices' addresses (device i is served by process i mod N).
The lab process keeps the control socket, the SSH CLIs, syslog and traps; it applies each fault
itself and then sends the same request, with its `now`, to every shard over the shard's stdin,
so the replicas stay identical and a fault is visible over SNMP when the control call returns.
A shard whose stdin closes (the lab process died) stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import Any

log = logging.getLogger("lab.shards")

START_TIMEOUT_S = 300.0  # a shard of a few thousand 48-port devices builds its views in seconds
CALL_TIMEOUT_S = 60.0


def shard_of(index: int, procs: int) -> int:
    """The process (0 = the lab process) that serves the device at `index` in the inventory."""
    return index % procs


class Shard:
    """One shard process and its request pipe (one request at a time)."""

    def __init__(self, number: int, proc: asyncio.subprocess.Process) -> None:
        self.number = number
        self.proc = proc
        self.lock = asyncio.Lock()

    async def call(self, req: dict[str, Any]) -> dict[str, Any]:
        """Send one request and read its answer ({"ok": False, ...} when the shard is gone)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self.lock:
            try:
                self.proc.stdin.write(json.dumps(req).encode() + b"\n")
                await self.proc.stdin.drain()
                line = await asyncio.wait_for(self.proc.stdout.readline(), CALL_TIMEOUT_S)
            except (ConnectionError, TimeoutError) as exc:
                return {"ok": False, "error": f"shard {self.number}: {type(exc).__name__}"}
        if not line:
            return {"ok": False, "error": f"shard {self.number} exited ({self.proc.returncode})"}
        answer: dict[str, Any] = json.loads(line)
        return answer


class Shards:
    """The shard processes of one lab process."""

    def __init__(self) -> None:
        self.shards: list[Shard] = []

    @classmethod
    async def start(cls, argv: list[str], procs: int) -> Shards:
        """Start shards 1..procs-1 with the lab's own arguments (they build while the caller does)."""
        self = cls()
        try:
            for k in range(1, procs):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "lab.server", *argv, "--shard", f"{k}/{procs}",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                self.shards.append(Shard(k, proc))
        except BaseException:
            await self.close()
            raise
        return self

    async def ready(self) -> None:
        """Wait until every shard printed READY (its sockets are bound); RuntimeError if one failed."""
        for shard in self.shards:
            assert shard.proc.stdout is not None
            line = await asyncio.wait_for(shard.proc.stdout.readline(), START_TIMEOUT_S)
            if not line.startswith(b"READY"):
                raise RuntimeError(f"lab shard {shard.number} did not start (exit {shard.proc.returncode})")

    async def broadcast(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        """Send `req` to every shard at once; their answers in shard order."""
        return list(await asyncio.gather(*(s.call(req) for s in self.shards)))

    async def watch(self, on_exit: Any) -> None:
        """Call `on_exit(shard number, code)` when a shard exits while the lab runs."""

        async def one(shard: Shard) -> None:
            code = await shard.proc.wait()
            on_exit(shard.number, code)

        await asyncio.gather(*(one(s) for s in self.shards))

    async def close(self) -> None:
        """Stop every shard: close its stdin (it stops at EOF), then terminate, then kill."""
        for shard in self.shards:
            if shard.proc.stdin is not None:
                with contextlib.suppress(Exception):
                    shard.proc.stdin.close()
        for shard in self.shards:
            for action in (None, shard.proc.terminate, shard.proc.kill):
                if action is not None:
                    with contextlib.suppress(ProcessLookupError):
                        action()
                try:
                    await asyncio.wait_for(shard.proc.wait(), 10.0)
                    break
                except TimeoutError:
                    continue
        self.shards.clear()


async def serve_requests(handle: Any, stop: asyncio.Event) -> None:
    """A shard's side of the pipe: JSON requests on stdin, answers on stdout; EOF stops the shard."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            try:
                req = json.loads(line)
                answer = await handle(req) if isinstance(req, dict) else {"ok": False}
            except ValueError:
                answer = {"ok": False, "error": "bad JSON"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        stop.set()
