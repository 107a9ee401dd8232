"""Parse stage in worker processes, with a time budget per line: untrusted text never runs in the receiver.

Parsing is per frame and independent (only sequence numbers and hashes must be assigned in order), so it
runs in spawned worker processes while the receiving process only hashes, writes and serves its event
loop. Each worker publishes, in shared memory, which job and which line of it it is parsing. When a line
has not finished within `line_budget` seconds, or the worker dies on one, the worker is killed and
replaced: that line is stored raw (flag `parse_timeout` / `parse_crash`, counted in `timeouts`), and the
job's other lines are parsed again by the new worker. Each frame comes with the seq its record is
meant to get, and records come back as finished store lines (`logstore.batch`: canonical bytes, body
and leaf hashes, index tally, search terms), so the writer only chains and appends them; one pipe
message carries a worker's whole share of a batch each way, and the lines of the answer (~1.1 KiB a
record) go through shared memory instead of the pipe (`Region`).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import mmap
import multiprocessing
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any

from collectors.syslog.formats import CompiledFormat, FormatSet, VendorFormat, compile_format
from collectors.syslog.framing import Lines
from collectors.syslog.parse import parse_frame
from core.gcsettings import tune
from logstore.batch import Numbered, Numberer, decode
from logstore.record import Record, iso_utc, new_record

Frame = tuple[bytes, float, str, str]  # raw bytes, receive time, source address, transport
# The frames of one read (raw bytes each, or the read's complete lines as one block), receive time,
# source, transport.
Frames = list[bytes] | Lines
Group = tuple[Frames, float, str, str]
Run = tuple[int, list[Group]]  # frames whose records get consecutive seqs, from the first one's
Parsed = Numbered | Record  # a numbered run, or (after a worker was replaced) one record to number
# The function a worker parses with: passed by reference (a module-level function pickles by its name).
Parser = Callable[..., Record]
LINE_BUDGET = 2.0  # seconds one line may take (a line takes ~50 µs; a backtracking pattern takes seconds)
_START_GRACE = 60.0  # a freshly spawned worker imports and compiles first; a dead one is seen at once
# Bytes of one shared result region; each worker has two (it may finish the next job while the writer
# still appends the previous one). Pages are only backed once written, so a region costs what the
# largest answer put in it (a bench job of 2,500 records: 2.8 MiB); a larger answer takes the pipe.
REGION_SIZE = 16 << 20
REGIONS = 2 if hasattr(os, "memfd_create") else 0  # (Linux has it: elsewhere every answer takes the pipe)
PIPE = -1  # where an answer's lines are when they are not in a region


class Region:
    """Shared memory (a memfd) where one worker writes the lines of its answers for the writer.

    Spawned workers get it as a Process argument: its descriptor is passed at spawn, like the
    multiprocessing heap's arenas. Its pages are filled by the worker and written to the segment
    (chain hashes filled in place) from there, where the pipe copied them into the kernel and out."""

    def __init__(self, size: int, fd: int = -1) -> None:
        if fd < 0:
            fd = os.memfd_create("govnet-syslog-lines", os.MFD_CLOEXEC)
            os.ftruncate(fd, size)
        self.size = size
        self.fd = fd  # kept open until the worker is spawned (`release_fd`)
        self.view = memoryview(mmap.mmap(fd, size))

    def release_fd(self) -> None:
        """Close the descriptor (the mapping stays); done once the worker has its copy."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __reduce__(self) -> tuple[Any, ...]:
        return _attach, (self.size, reduction.DupFd(self.fd))


def _attach(size: int, dupfd: Any) -> Region:
    region = Region(size, dupfd.detach())
    region.release_fd()
    return region


def default_workers() -> int:
    """Parse workers by default: one per core this process may run on, at most 4.

    Measured on 2 cores (docs/bench.md, issue 20): two workers beside the writer ingest more than one,
    because the writer only numbers, hashes and appends what they return.
    """
    return min(4, max(1, len(os.sched_getaffinity(0))))


def parse_frames(
    frames: Sequence[Frame],
    formats: Sequence[CompiledFormat],
    devices: Mapping[str, str],
    zones: Mapping[str, str] | None = None,
) -> list[Record]:
    """Parse frames in this thread (only for `parse_workers=0`: tests and benchmarks)."""
    return [
        parse_frame(raw, ts, source, transport, formats, devices, zones)
        for raw, ts, source, transport in frames
    ]


def raw_record(frame: Frame, flag: str, devices: Mapping[str, str]) -> Record:
    """The record of a frame kept without parsing: raw bytes, receive time, source, a flag saying why."""
    raw, ts, source, transport = frame
    device = devices.get(source.rsplit(":", 1)[0].strip("[]"))
    return new_record(
        recv_ts=iso_utc(ts), source=source, transport=transport, device=device, format="none",
        raw=base64.b64encode(raw).decode("ascii"), flags=[flag] if device else [flag, "unknown_source"],
    )  # fmt: skip


def _worker(
    inbox: Connection,
    outbox: Connection,
    specs: list[dict[str, Any]],
    devices: dict[str, str],
    zones: dict[str, str],
    progress: Any,
    regions: list[Region],
    parse_frame: Parser,
) -> None:
    """Worker loop: (job, region, runs) in, numbered runs out; `progress[0:2]` = (job, line) being parsed."""
    formats = FormatSet([compile_format(VendorFormat.model_validate(spec)) for spec in specs])
    # Start-up objects frozen out of the collector's sight, `govnet run`'s thresholds: the collector took
    # ~2 % of a worker's `perf` samples at the defaults, its full collections walking the compiled
    # formats and modules (in-process 0.1-0.4 us a line less; docs/bench.md, "Goal 4, seventh pass").
    tune(freeze=True)
    # One store per line into the shared cells, through a memoryview (a ctypes item store costs
    # twice as much); the job is written once per job, after its line counter was reset.
    cell = memoryview(progress).cast("B").cast("q")
    while True:
        try:
            job, where, runs = inbox.recv()
        except (EOFError, OSError):  # parent closed the pipe or died
            return
        cell[1] = 0
        cell[0] = job
        out = []
        i = 0
        for first, groups in runs:
            numberer = Numberer(first)
            for frames, ts, source, transport in groups:
                for raw in frames:
                    cell[1] = i
                    numberer.add(parse_frame(raw, ts, source, transport, formats, devices, zones))
                    i += 1
            out.append(numberer.done())
        cell[1] = i
        send_runs(outbox, job, out, regions[where] if where != PIPE else None, where)


@dataclass(slots=True)
class Pending:
    """Frames handed to the workers (one chunk of runs per worker), to collect in order."""

    chunks: list[list[Run]]
    jobs: list[int]
    slots: list[_Slot]  # the worker each chunk went to (a replaced worker's queued jobs are re-sent)


def send_runs(
    conn: Connection, job: int, runs: list[Numbered], region: Region | None = None, where: int = PIPE
) -> None:
    """Send a job's numbered runs: a pickled header, the runs' lines in `region` (index `where`) when
    they fit, else as raw bytes on the pipe after the header.

    The lines are ~1.1 KiB a record: pickled inside the message they were copied into the pickle,
    into the pipe, into a bytes object read from it, and out of the unpickled one again. In shared
    memory they are copied once, and the writer chains and writes them where they are (`recv_runs`)."""
    blobs = [run.lines for run in runs]
    sizes = [len(blob) for blob in blobs]
    if region is None or sum(sizes) > region.size:
        where = PIPE
    else:
        view = region.view
        at = 0
        for blob, size in zip(blobs, sizes, strict=True):
            view[at : at + size] = blob
            at += size
    for run in runs:
        run.lines = bytearray()
    conn.send_bytes(pickle.dumps((job, where, sizes, runs), protocol=5))
    if where != PIPE:
        return
    fd = conn.fileno()
    for blob in blobs:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]


def recv_runs(
    conn: Connection, buffers: list[bytearray] | None, regions: Sequence[Region] = ()
) -> tuple[int, int, list[Numbered]]:
    """Receive what `send_runs` sent: (job, region index or PIPE, runs). Lines in a region are left
    there (each run's `lines` a view of it: valid until the region is handed out again); lines on the
    pipe are read into `buffers` (reused from one call to the next, grown as needed; their previous
    contents must be done with), or into new buffers when None."""
    # What Connection.recv would unpickle too: the header of our own spawned worker.
    job, where, sizes, runs = pickle.loads(conn.recv_bytes())  # noqa: S301
    if where != PIPE:
        view = regions[where].view
        at = 0
        for run, size in zip(runs, sizes, strict=True):
            run.lines = view[at : at + size]
            at += size
        return job, where, runs
    fd = conn.fileno()
    for k, (run, size) in enumerate(zip(runs, sizes, strict=True)):
        if buffers is None:
            buf = bytearray(size)
        else:
            if len(buffers) <= k:
                buffers.append(bytearray())
            if len(buffers[k]) < size:
                buffers[k] = bytearray(size + size // 4)
            buf = buffers[k]
        view = memoryview(buf)[:size]
        got = 0
        while got < size:
            n = os.readv(fd, [view[got:]])
            if n == 0:
                raise EOFError("worker gone in the middle of its answer")
            got += n
        run.lines = view if buffers is not None else buf
    return job, where, runs


def frames_size(frames: Frames) -> int:
    """Bytes of a group's frames (a block's share of its bytes)."""
    return frames.size if isinstance(frames, Lines) else sum(map(len, frames))


def _count(groups: list[Group]) -> int:
    return sum(len(group[0]) for group in groups)


def _frames(run: Run) -> int:
    return _count(run[1])


def _records(runs: list[Numbered]) -> int:
    return sum(run.count for run in runs)


class _Slot:
    """One worker process with its pipes, its shared progress cells and its result regions."""

    def __init__(self, ctx: Any, n: int, specs: list[dict[str, Any]], devices: dict[str, str],
                 zones: dict[str, str], parser: Parser, region_size: int) -> None:  # fmt: skip
        self.progress = ctx.RawArray("q", 2)
        self.progress[0] = -1
        self.regions = [Region(region_size) for _ in range(REGIONS)]
        # The job whose answer each region holds or will hold (None: free). A collected job's region
        # is freed by the next `submit`: the writer is done with the previous batch's lines by then.
        self.owner: list[int | None] = [None] * REGIONS
        self.taken: set[int] = set()  # jobs collected since the last `submit`
        child_in, self.to = ctx.Pipe(duplex=False)
        self.frm, child_out = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=_worker,
            args=(child_in, child_out, specs, devices, zones, self.progress, self.regions, parser),
            daemon=True,
            name=f"govnet-syslog-parse-{n}",
        )  # fmt: skip
        self.proc.start()
        for region in self.regions:
            region.release_fd()
        self.started = time.monotonic()
        self.early: dict[int, list[Numbered]] = {}  # answers that arrived while another job was awaited
        self.buffers: list[bytearray] = []  # where the lines of the awaited job's runs are read into
        child_in.close()
        child_out.close()
        for conn in (self.to, self.frm):  # a job each way is a few MiB: fewer, larger pipe transfers
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        # Jobs go through a feeder thread: a job can be queued while the worker still parses (and
        # sends back) the previous one, so the worker never waits for the writer between jobs, and
        # no caller blocks on a full pipe (the worker and the writer both sending would deadlock).
        self.outbox: queue.SimpleQueue[tuple[int, int, list[Run]] | None] = queue.SimpleQueue()
        self.feeder = threading.Thread(target=self._feed, name=f"govnet-syslog-feed-{n}", daemon=True)
        self.feeder.start()

    def region_for(self, job: int) -> int:
        """A free region for `job`'s answer, now owned by it (PIPE when both are in use)."""
        for where, owner in enumerate(self.owner):
            if owner is None:
                self.owner[where] = job
                return where
        return PIPE

    def free_taken(self) -> None:
        """Free the regions of the jobs collected so far (their lines are appended or dropped)."""
        if self.taken:
            self.owner = [None if owner in self.taken else owner for owner in self.owner]
            self.taken.clear()

    def _feed(self) -> None:
        while True:
            item = self.outbox.get()
            if item is None:
                return
            try:
                self.to.send(item)
            except (OSError, ValueError):  # the worker is gone; its collector re-sends the job
                return

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.proc.join(5)
        for conn in (self.to, self.frm):
            with contextlib.suppress(OSError):
                conn.close()
        self.outbox.put(None)

    def stop(self) -> None:
        """Let the feeder hand over what is queued, then end it (the worker sees EOF after that)."""
        self.outbox.put(None)
        self.feeder.join(5)


class ParsePool:
    """A few spawned parse workers, each fed over its own pipe (FIFO, so batches come back in order)."""

    def __init__(
        self,
        workers: int,
        formats: Sequence[CompiledFormat],
        devices: Mapping[str, str],
        zones: Mapping[str, str] | None = None,
        line_budget: float = LINE_BUDGET,
        parser: Parser = parse_frame,
        region_size: int = REGION_SIZE,
    ) -> None:
        self.formats = list(formats)
        self.region_size = region_size  # bytes of each worker's shared regions (tests make them small)
        self.parser = parser  # the module-level function workers parse with (tests substitute a hostile one)
        self.devices = dict(devices)
        self.zones = dict(zones or {})
        self.line_budget = line_budget
        self.timeouts = 0  # lines stored raw because parsing them took longer than the budget
        self.crashes = 0  # lines stored raw because a worker died parsing them
        self.restarts = 0  # workers replaced
        self.broken = False  # kept for callers; a pool repairs itself by replacing workers
        # spawn, not fork: the receiving process has threads (asyncio's executor), and a spawned
        # worker holds only its own pipe ends, so it sees EOF and exits if the receiver is killed.
        self._ctx = multiprocessing.get_context("spawn")
        self._specs = [fmt.spec.model_dump() for fmt in self.formats]
        self._job = 0
        self._slots = [self._spawn(n) for n in range(workers)]

    def _spawn(self, n: int) -> _Slot:
        return _Slot(self._ctx, n, self._specs, self.devices, self.zones, self.parser, self.region_size)

    @property
    def workers(self) -> int:
        """Number of worker processes."""
        return len(self._slots)

    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [slot.proc.pid for slot in self._slots if slot.proc.pid is not None]

    def submit(self, runs: list[Run]) -> Pending:
        """Hand runs of frames to the workers (returns at once); `collect` gets the records in order.

        The frames of a run are meant to get consecutive seqs from the run's first; the workers number
        their records so (the writer renumbers a run whose seqs moved on meanwhile).
        """
        for slot in self._slots:
            slot.free_taken()
        total = sum(_frames(run) for run in runs)
        size = -(-total // max(1, len(self._slots)))
        chunks: list[list[Run]] = []
        chunk: list[Run] = []
        room = size
        for first, groups in runs:
            part: list[Group] = []  # this run's groups in the current chunk
            seq = first  # the seq of the next frame
            for group in groups:
                frames = group[0]
                at = 0
                while at < len(frames):
                    take = frames if at == 0 and len(frames) <= room else frames[at : at + room]
                    part.append(group if take is frames else (take, *group[1:]))
                    at += len(take)
                    room -= len(take)
                    if room == 0:
                        chunk.append((seq + at - _count(part), part))
                        chunks.append(chunk)
                        chunk, part, room = [], [], size
                seq += len(frames)
            if part:
                chunk.append((seq - _count(part), part))
        if chunk:
            chunks.append(chunk)
        jobs = [self._send(i, chunk) for i, chunk in enumerate(chunks)]
        return Pending(chunks, jobs, self._slots[: len(chunks)])

    def _send(self, i: int, chunk: list[Run]) -> int:
        """Queue a job for worker `i` (returns at once; jobs reach a worker in the order queued)."""
        self._job += 1
        slot = self._slots[i]
        slot.outbox.put((self._job, slot.region_for(self._job), chunk))
        return self._job

    def collect(self, pending: Pending) -> list[Record]:
        """Records of a `submit`, in frame order (blocks until the workers are done), with the seqs
        they were numbered with."""
        out: list[Record] = []
        for item in self.collect_numbered(pending):
            out += [decode(body) for body in item.bodies()] if isinstance(item, Numbered) else [item]
        return out

    def collect_numbered(self, pending: Pending) -> list[Parsed]:
        """What the workers made of a `submit`, in frame order (blocks until they are done): numbered
        runs, and single records where a worker was replaced (`LogStore.append_batch` takes both).

        The runs' lines may be views of a worker's shared region: use them before the next `submit`,
        which hands the region out again."""
        out: list[Parsed] = []
        for i, (chunk, job, slot) in enumerate(zip(pending.chunks, pending.jobs, pending.slots, strict=True)):
            if self._slots[i] is not slot:  # its worker was replaced since: the job died with it
                job = self._send(i, chunk)
            out += self._collect_chunk(i, chunk, job)
        return out

    def _collect_chunk(self, i: int, chunk: list[Run], job: int) -> list[Parsed]:
        size = sum(_frames(run) for run in chunk)
        rows, bad, why = self._wait(i, job, size)
        if rows is not None:
            return [*rows]
        # The rare path: a worker is stuck or dead. Settle the chunk frame by frame from here on.
        frames: list[tuple[int, Frame]] = []  # (seq, frame)
        for first, groups in chunk:
            for raws, ts, source, transport in groups:
                frames += [(first + k, (raw, ts, source, transport)) for k, raw in enumerate(raws)]
                first += len(raws)
        results: list[Record | None] = [None] * len(frames)
        todo = list(range(len(frames)))  # indexes (into frames) of the frames the current job holds
        fruitless = 0  # replacements in a row that did not settle a line (a worker that cannot start)
        while True:
            # The worker is stuck on (or died at) line `bad` of its job: keep that line raw, replace
            # the worker and hand it the job's other lines (what the dead worker parsed is lost).
            self._slots[i].kill()
            self._slots[i] = self._spawn(i)
            self.restarts += 1
            fruitless += 1
            if bad is not None and 0 <= bad < len(todo):
                fruitless = 0
                k = todo.pop(bad)
                results[k] = raw_record(frames[k][1], why, self.devices)
                if why == "parse_timeout":
                    self.timeouts += 1
                else:
                    self.crashes += 1
            if not todo:
                break
            if fruitless >= 3:
                for k in todo:
                    results[k] = raw_record(frames[k][1], "parse_crash", self.devices)
                    self.crashes += 1
                break
            resend: list[Run] = []
            for k in todo:
                seq, (raw, ts, source, transport) = frames[k]
                resend.append((seq, [([raw], ts, source, transport)]))
            job = self._send(i, resend)
            rows, bad, why = self._wait(i, job, len(todo))
            if rows is not None:
                for k, row in zip(todo, rows, strict=True):
                    results[k] = decode(row.bodies()[0])
                break
        return [r for r in results if r is not None]

    def _wait(self, i: int, job: int, size: int) -> tuple[list[Numbered] | None, int | None, str]:
        """The numbered runs of `job` (`size` records) from worker `i`, or (None, line index, reason)
        when it is over budget or dead."""
        slot = self._slots[i]
        early = slot.early.pop(job, None)
        if early is not None and _records(early) == size:
            return early, None, ""
        last = (-2, -2)
        since = time.monotonic()
        while True:
            try:
                if slot.frm.poll(0.02):
                    # Lines are read into the slot's reused buffers: the previous job's runs were
                    # appended (or dropped) before this one is awaited. An early answer is copied.
                    got_job, _, rows = recv_runs(slot.frm, slot.buffers, slot.regions)
                    slot.taken.add(got_job)
                    if got_job == job and _records(rows) == size:
                        return rows, None, ""
                    # A job queued before this one (after a replacement, re-sent jobs can overtake
                    # jobs queued earlier): keep (a copy of) its answer for its own collect.
                    for run in rows:
                        run.lines = bytearray(run.lines)
                    slot.early[got_job] = rows
                    continue
            except (EOFError, OSError):
                return None, self._line(slot, job), "parse_crash"
            now = time.monotonic()
            seen = (slot.progress[0], slot.progress[1])
            if seen != last:
                last, since = seen, now
            elif not slot.proc.is_alive():
                return None, self._line(slot, job), "parse_crash"
            elif seen[0] == job and now - since > self.line_budget:
                return None, seen[1], "parse_timeout"
            elif seen[0] != job and now - max(since, slot.started) > _START_GRACE:
                return None, None, "parse_crash"

    @staticmethod
    def _line(slot: _Slot, job: int) -> int | None:
        return int(slot.progress[1]) if slot.progress[0] == job else None

    def close(self) -> None:
        """Stop the workers (closing their pipes ends them; stragglers are killed)."""
        for slot in self._slots:
            slot.stop()
        for slot in self._slots:
            for conn in (slot.to, slot.frm):
                with contextlib.suppress(OSError):
                    conn.close()
        for slot in self._slots:
            slot.proc.join(2)
            if slot.proc.is_alive():
                slot.kill()
        self._slots.clear()
