"""Parse stage in worker processes: they parse the next batch while the writer commits the current one.

Parsing is per frame and independent (only sequence numbers and hashes must be assigned in order), so it
can use the other cores; the store stays in the receiving process. Records come back as tuples of the
record fields (cheaper to pickle than dicts). A worker that dies or breaks its pipe is never a lost
line: its frames are parsed in the calling thread and the pool stops being used.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from operator import itemgetter
from typing import Any

from collectors.syslog.formats import CompiledFormat, VendorFormat, compile_format
from collectors.syslog.parse import parse_frame
from logstore.record import FIELDS, Record

Frame = tuple[bytes, float, str, str]  # raw bytes, receive time, source address, transport
_as_tuple = itemgetter(*FIELDS)


def parse_frames(
    frames: Sequence[Frame], formats: Sequence[CompiledFormat], devices: Mapping[str, str]
) -> list[Record]:
    """Parse frames in this thread."""
    return [
        parse_frame(raw, ts, source, transport, formats, devices) for raw, ts, source, transport in frames
    ]


def _worker(
    inbox: Connection, outbox: Connection, specs: list[dict[str, Any]], devices: dict[str, str]
) -> None:
    """Worker loop: a list of frames in, a list of field tuples out; ends when the parent goes away."""
    formats = [compile_format(VendorFormat.model_validate(spec)) for spec in specs]
    while True:
        try:
            frames = inbox.recv()
        except (EOFError, OSError):  # parent closed the pipe or died
            return
        outbox.send([_as_tuple(rec) for rec in parse_frames(frames, formats, devices)])


@dataclass(slots=True)
class Pending:
    """Frames handed to the workers (one chunk per worker), to collect in order."""

    chunks: list[list[Frame]]
    sent: list[bool]


class ParsePool:
    """A few spawned parse workers, each fed over its own pipe (FIFO, so batches come back in order)."""

    def __init__(self, workers: int, formats: Sequence[CompiledFormat], devices: Mapping[str, str]) -> None:
        self.formats = list(formats)
        self.devices = dict(devices)
        self.broken = False
        # spawn, not fork: the receiving process has threads (asyncio's executor), and a spawned
        # worker holds only its own pipe ends, so it sees EOF and exits if the receiver is killed.
        ctx = multiprocessing.get_context("spawn")
        specs = [fmt.spec.model_dump() for fmt in self.formats]
        self._procs: list[Any] = []
        self._to: list[Connection] = []
        self._from: list[Connection] = []
        for n in range(workers):
            child_in, parent_out = ctx.Pipe(duplex=False)
            parent_in, child_out = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker, args=(child_in, child_out, specs, self.devices), daemon=True,
                name=f"govnet-syslog-parse-{n}",
            )  # fmt: skip
            proc.start()
            child_in.close()
            child_out.close()
            self._procs.append(proc)
            self._to.append(parent_out)
            self._from.append(parent_in)

    @property
    def workers(self) -> int:
        """Number of worker processes."""
        return len(self._procs)

    def submit(self, frames: list[Frame]) -> Pending:
        """Hand frames to the workers (returns at once); `collect` gets the records in order."""
        n = max(1, len(self._to))
        size = -(-len(frames) // n)
        chunks = [frames[i : i + size] for i in range(0, len(frames), size)] if frames else []
        sent = []
        for conn, chunk in zip(self._to, chunks, strict=False):
            ok = False
            if not self.broken:
                try:
                    conn.send(chunk)
                    ok = True
                except (OSError, ValueError):
                    self.broken = True
            sent.append(ok)
        sent += [False] * (len(chunks) - len(sent))
        return Pending(chunks, sent)

    def collect(self, pending: Pending) -> list[Record]:
        """Records of a `submit`, in frame order (blocks until the workers are done)."""
        out: list[Record] = []
        for i, (chunk, sent) in enumerate(zip(pending.chunks, pending.sent, strict=True)):
            rows: list[tuple[Any, ...]] | None = None
            if sent:
                try:
                    rows = self._from[i].recv()
                except (EOFError, OSError):
                    self.broken = True
            if rows is not None and len(rows) == len(chunk):
                out += [dict(zip(FIELDS, row, strict=True)) for row in rows]
            else:
                out += parse_frames(chunk, self.formats, self.devices)
        return out

    def close(self) -> None:
        """Stop the workers (closing their pipes ends them; stragglers are terminated)."""
        for conn in (*self._to, *self._from):
            with contextlib.suppress(OSError):
                conn.close()
        for proc in self._procs:
            proc.join(2)
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
        self._procs.clear()
