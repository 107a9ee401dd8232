"""asyncio syslog receiver (UDP, TCP with RFC 6587 framing) feeding one batching, durable writer."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collectors.sockstats import grow_receive_buffer, udp_kernel_drops
from collectors.syslog.formats import CompiledFormat, FormatSet
from collectors.syslog.framing import Framer, Lines
from collectors.syslog.limits import Limits, SourcePolicy
from collectors.syslog.parse import parse_frame
from collectors.syslog.parse_pool import (
    LINE_BUDGET,
    Frames,
    Group,
    Parsed,
    ParsePool,
    Pending,
    Run,
    frames_size,
)
from collectors.syslog.sequence import SEQUENCE_HINT, SequenceGaps, sequence_id
from logstore.batch import Numbered
from logstore.record import Record, iso_utc, new_record
from logstore.store import LogStore

# What waits for the writer: the frames one read completed (raw bytes, with their one receive time,
# source and transport), or a receiver event record. Per read, not per frame: the writer's queue,
# batching and bookkeeping cost per group, and a read of 64 KiB holds ~240 firewall lines.
Item = Group | dict[str, Any]


@dataclass
class IngestStats:
    """Counters exported as metrics (govnet_syslog_*)."""

    received_total: int = 0
    durable_total: int = 0
    batches_total: int = 0
    oversized_closed_total: int = 0
    truncated_total: int = 0
    udp_overflow_total: int = 0  # UDP datagrams dropped because the queue was full
    udp_refused_total: int = 0  # UDP datagrams from senders not on the allow-list (refusal configured)
    refused: dict[str, int] = field(default_factory=dict)  # stream connections refused, by reason
    closed: dict[str, int] = field(default_factory=dict)  # stream connections cut, by reason
    connections: int = 0
    last_durable_seq: int = 0
    errors: list[str] = field(default_factory=list)
    last_seen: dict[str, float] = field(default_factory=dict)  # source host -> last durable receive time


class Ingest:
    """Collects frames from every listener; one writer parses and commits them in batches (one fsync each)."""

    def __init__(
        self,
        store: LogStore,
        formats: Sequence[CompiledFormat],
        devices: Mapping[str, str],
        batch_max: int = 5000,
        max_pending: int = 50_000,
        clock: Callable[[], float] = time.time,
        on_durable: Callable[[int, int], None] | None = None,
        forward: Callable[[list[bytes]], None] | None = None,
        parse_workers: int = 0,
        zones: Mapping[str, str] | None = None,
        parse_budget: float = LINE_BUDGET,
        max_pending_bytes: int = 64 * 1024 * 1024,
        batch_max_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.batch_max_bytes = batch_max_bytes  # large frames make smaller batches (memory per commit)
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0  # bytes of the frames waiting for the writer
        self.forward = forward  # receives the raw frames of each batch once it is durable
        self.on_durable = on_durable  # (frames durable so far, last durable seq) after each commit
        self.store = store
        self.formats = formats if isinstance(formats, FormatSet) else FormatSet(list(formats))
        self.devices = dict(devices)
        self.zones = dict(zones or {})  # source address -> the device clock's time zone
        self.batch_max = batch_max
        self.max_pending = max_pending
        self.clock = clock
        self.stats = IngestStats()
        self.sequences = SequenceGaps()  # gaps in the devices' own sequenceId numbering, by source host
        # 0: parse in the writer thread (tests, benchmarks); N: N worker processes parse while the writer
        # commits, each line within `parse_budget` seconds (`govnet run` and `govnet syslog` use workers).
        self.pool = (
            ParsePool(parse_workers, self.formats, self.devices, self.zones, parse_budget)
            if parse_workers > 0
            else None
        )
        self._pending: list[Item] = []
        self.pending_items = 0  # frames and events waiting for the writer
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def submit(self, raw: bytes, source: str, transport: str) -> None:
        """Queue one frame (receive time taken now)."""
        self._queue(([raw], self.clock(), source, transport), len(raw))

    def submit_many(self, frames: Frames, source: str, transport: str) -> None:
        """Queue the frames one read completed (one receive time: they were complete at that moment);
        the list (or block) is kept as it is."""
        if frames:
            self._queue((frames, self.clock(), source, transport), frames_size(frames))

    def _queue(self, group: Group, size: int) -> None:
        self._pending.append(group)
        self.pending_bytes += size
        self.pending_items += len(group[0])
        self.stats.received_total += len(group[0])
        self._signal()

    def submit_event(self, rec: Record) -> None:
        """Queue a receiver event (oversized frame, overflow) as its own record."""
        self._pending.append(rec)
        self.pending_items += 1
        self._signal()

    def _signal(self) -> None:
        self._idle.clear()
        self._wake.set()
        if self.pending_items >= self.max_pending or self.pending_bytes >= self.max_pending_bytes:
            self._room.clear()

    @property
    def full(self) -> bool:
        """True when senders should wait (TCP backpressure)."""
        return not self._room.is_set()

    async def wait_room(self) -> None:
        """Block a TCP reader until the writer has caught up."""
        await self._room.wait()

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="syslog-writer")

    async def drain(self) -> None:
        """Wait until everything submitted so far is durable."""
        await self._idle.wait()

    async def close(self) -> None:
        """Commit what is pending and stop the writer."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        elif self.pool is not None:
            self.pool.close()

    def _head(self, limit: int) -> list[Item]:
        """The next batch at the head of the queue (not taken yet): at most `limit` records and about
        `batch_max_bytes` (at least one); its last read's frames may be cut (see `_take`)."""
        out: list[Item] = []
        count = size = 0
        for item in self._pending:
            room = limit - count
            if room <= 0:
                break
            if not isinstance(item, tuple):
                out.append(item)
                count += 1
                continue
            frames = item[0]
            take = frames if len(frames) <= room else frames[:room]
            took = frames_size(take)
            if size + took > self.batch_max_bytes:
                # Only the read that crosses the byte bound is walked frame by frame (a block by its
                # frames' shares of its bytes).
                k = 0
                sizes = (
                    [take[i : i + 1].size for i in range(len(take))]
                    if isinstance(take, Lines)
                    else map(len, take)
                )
                for n in sizes:
                    if size + n > self.batch_max_bytes and (count or k):
                        break
                    size += n
                    k += 1
                if k:
                    out.append(item if k == len(frames) else (take[:k], *item[1:]))
                break
            out.append(item if take is frames else (take, *item[1:]))
            count += len(take)
            size += took
            if take is not frames:
                break
        return out

    def _at_head(self, batch: list[Item]) -> bool:
        """True when `batch` (from `_head`) is still what the head of the queue holds."""
        pending = self._pending
        if len(pending) < len(batch):
            return False
        for mine, theirs in zip(batch, pending, strict=False):
            if mine is not theirs and not (
                isinstance(mine, tuple)
                and isinstance(theirs, tuple)
                and mine[1:] == theirs[1:]
                and theirs[0][: len(mine[0])] == mine[0]
                and mine is batch[-1]
            ):
                return False
        return True

    def _take(self, batch: list[Item]) -> list[Item]:
        """Remove `batch` (from `_head`, still at the head) from the queue; a read it holds only the
        first frames of stays queued with the rest."""
        pending = self._pending
        n = len(batch)
        last, queued = batch[-1], pending[n - 1]
        if last is not queued and isinstance(last, tuple) and isinstance(queued, tuple):
            pending[n - 1] = (queued[0][len(last[0]) :], *queued[1:])
            del pending[: n - 1]
        else:
            del pending[:n]
        self.pending_bytes -= _bytes(batch)
        self.pending_items -= _count(batch)
        if self.pending_items < self.max_pending and self.pending_bytes < self.max_pending_bytes:
            self._room.set()
        return batch

    def _start(self, batch: list[Item], first: int) -> Pending | None:
        """Hand a batch's frames to the parse workers, numbered as if the batch's first record got seq
        `first` (None when parsing happens in the writer thread)."""
        if self.pool is None or self.pool.broken or not batch:
            return None
        return self.pool.submit(_runs(batch, first))

    async def _run(self) -> None:
        # Two-stage pipeline when there are parse workers: they parse batch N+1 while this process
        # hashes, writes and fsyncs batch N. Nothing counts as durable before its own fsync.
        while True:
            await self._wake.wait()
            self._wake.clear()
            parsing: Pending | None = None  # the head batch's frames, already handed to the workers
            nxt: list[Item] = []
            while self._pending:
                batch = self._take(nxt if parsing is not None else self._head(self.batch_max))
                nxt = self._head(self.batch_max) if self.pool is not None else []
                try:
                    seqs, parsing = await asyncio.to_thread(self._commit, batch, parsing, nxt)
                except OSError as exc:
                    # Not durable: keep the batch at the head of the queue and retry (senders are held
                    # back by backpressure meanwhile); the workers' copy of the next batch was discarded.
                    parsing = None
                    self._pending[:0] = batch
                    self.pending_bytes += _bytes(batch)
                    self.pending_items += _count(batch)
                    self.stats.errors.append(f"store write failed: {type(exc).__name__}")
                    await asyncio.sleep(1.0)
                    continue
                frames: list[bytes] = []
                durable = 0
                # Keyed by host, not "host:port": one entry per sender however often it reconnects.
                seen = self.stats.last_seen
                for item in batch:
                    if isinstance(item, tuple):
                        group, ts, source, _ = item
                        host = source.rsplit(":", 1)[0].strip("[]")
                        seen[host] = ts
                        durable += len(group)
                        if self.forward is not None:
                            frames += group
                        # Frames arrive here in receive order per connection; only frames that carry
                        # a sequenceId pay for more than this byte search (none for a block whose
                        # lines cannot carry one).
                        if isinstance(group, Lines) and group.plain:
                            continue
                        for raw in [raw for raw in group if SEQUENCE_HINT in raw]:
                            seq = sequence_id(raw)
                            if seq is not None:
                                self.sequences.observe(host, seq)
                self.stats.durable_total += durable
                self.stats.batches_total += 1
                if seqs:
                    self.stats.last_durable_seq = seqs[-1]
                if self.forward is not None:
                    self.forward(frames)
                if self.on_durable is not None:
                    self.on_durable(self.stats.durable_total, self.stats.last_durable_seq)
                if parsing is not None and not self._at_head(nxt):
                    # Only the writer removes from the head, so this cannot happen; never commit
                    # records parsed from other frames than the ones at the head.
                    self._discard(parsing)
                    parsing = None
            if parsing is not None:
                self._discard(parsing)
            self._room.set()
            self._idle.set()
            if self._closing:
                if self.pool is not None:
                    self.pool.close()
                return

    def _discard(self, parsing: Pending) -> None:
        """Read and drop the workers' results for frames that will be handed to them again."""
        if self.pool is not None:
            self.pool.collect_numbered(parsing)

    def _commit(
        self, batch: list[Item], parsing: Pending | None, nxt: list[Item]
    ) -> tuple[list[int], Pending | None]:
        """Parse `batch` (or collect the workers' parse), hand `nxt` to the workers, commit `batch`."""
        # The seqs the records will get if nothing else is appended meanwhile (the control channel's
        # audit records may be: the store then renumbers what the workers numbered).
        first = self.store.last_seq + 1
        if parsing is None and self.pool is not None:  # untrusted text is parsed only in the workers
            parsing = self.pool.submit(_runs(batch, first))
        # Queued behind `batch` in each worker's pipe: the workers go straight on to the next batch
        # while this one is collected, chained and fsynced.
        handed = self._start(nxt, first + _count(batch))
        recs: list[Record | Numbered]
        if parsing is not None and self.pool is not None:
            recs = _interleave(batch, self.pool.collect_numbered(parsing))
        else:
            recs = []
            for item in batch:
                if isinstance(item, tuple):
                    group, ts, source, transport = item
                    fmts, devices, zones = self.formats, self.devices, self.zones
                    recs += [parse_frame(raw, ts, source, transport, fmts, devices, zones) for raw in group]
                else:
                    recs.append(item)
        try:
            return self.store.append_batch(recs), handed
        except OSError:
            if handed is not None:
                self._discard(handed)
            raise


def _runs(batch: list[Item], first: int) -> list[Run]:
    """The batch's frames as runs of consecutive seqs, the batch's first record getting `first`
    (receiver events between frames take their own seqs)."""
    runs: list[Run] = []
    groups: list[Group] = []
    start = seq = first
    for item in batch:
        if isinstance(item, tuple):
            if not groups:
                start = seq
            groups.append(item)
            seq += len(item[0])
        else:
            if groups:
                runs.append((start, groups))
                groups = []
            seq += 1
    if groups:
        runs.append((start, groups))
    return runs


def _interleave(batch: list[Item], parsed: list[Parsed]) -> list[Record | Numbered]:
    """The batch in order: the workers' runs (frame order) with the receiver events between them."""
    if all(isinstance(item, tuple) for item in batch):
        return list(parsed)  # no receiver events in the batch (the usual case)
    out: list[Record | Numbered] = []
    rest = iter(parsed)
    owed = 0  # frames before the current event not yet covered by a run (runs never span an event)
    for item in batch:
        if isinstance(item, tuple):
            owed += len(item[0])
            continue
        while owed > 0:
            run = next(rest)
            out.append(run)
            owed -= run.count if isinstance(run, Numbered) else 1
        out.append(item)
    out += rest
    return out


def _bytes(items: list[Item]) -> int:
    return sum(frames_size(item[0]) for item in items if isinstance(item, tuple))


def _count(items: list[Item]) -> int:
    """Records `items` make: one per frame, one per event."""
    return sum(len(item[0]) if isinstance(item, tuple) else 1 for item in items)


def receiver_event(action: str, source: str, msg: str, now: float) -> Record:
    """A record about the receiver itself (e.g. a sender cut off for an oversized frame)."""
    return new_record(
        recv_ts=iso_utc(now), event_type="store", source=source, action=action, outcome="recorded", msg=msg,
        app="govnet-syslog", flags=["receiver_event"],
    )  # fmt: skip


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, ingest: Ingest, policy: SourcePolicy) -> None:
        self.ingest = ingest
        self.policy = policy

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        # UDP cannot be slowed down: past the queue bound a datagram is dropped and counted (memory
        # stays bounded); the kernel's own drops are read from /proc/net/udp (udp_kernel_drops).
        stats = self.ingest.stats
        if self.policy.refused(str(addr[0]), "udp"):
            stats.udp_refused_total += 1
            return
        if self.ingest.full:
            stats.udp_overflow_total += 1
            return
        self.ingest.submit(data, f"{addr[0]}:{addr[1]}", "udp")


# Bytes asked of a connection's stream per read: what asyncio's transport already holds (it receives
# up to 256 KiB at a time), so a busy sender's read is one group of ~900 lines instead of four of ~240
# (per read and per group the framer, the writer's queue and the workers each pay a fixed cost).
READ_CHUNK = 256 * 1024


@dataclass
class Receiver:
    """Running listeners; `close()` stops them and commits what was received."""

    ingest: Ingest
    tcp: asyncio.Server | None = None
    tls: asyncio.Server | None = None
    udp: asyncio.DatagramTransport | None = None
    max_frame: int = 64 * 1024
    limits: Limits = field(default_factory=Limits)
    policy: SourcePolicy = field(default_factory=lambda: SourcePolicy(refuse_unknown=False))
    tls_context: ssl.SSLContext | None = None
    buffered: int = 0  # bytes of partial frames held for all stream connections
    handshaking: int = 0  # TLS handshakes in progress
    _per_listener: dict[str, int] = field(default_factory=dict)
    _per_source: dict[str, int] = field(default_factory=dict)
    _reported: dict[str, int] = field(default_factory=dict)  # drop counters at the last report

    @property
    def tcp_port(self) -> int:
        """Bound TCP port."""
        assert self.tcp is not None
        port: int = self.tcp.sockets[0].getsockname()[1]
        return port

    @property
    def tls_port(self) -> int:
        """Bound TLS port."""
        assert self.tls is not None
        port: int = self.tls.sockets[0].getsockname()[1]
        return port

    @property
    def udp_port(self) -> int:
        """Bound UDP port."""
        assert self.udp is not None
        port: int = self.udp.get_extra_info("sockname")[1]
        return port

    def udp_kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped on the UDP socket (receive buffer full), None if unknown."""
        return udp_kernel_drops(self.udp.get_extra_info("socket") if self.udp is not None else None)

    async def handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Plain TCP sender (RFC 6587)."""
        await self.handle_stream(reader, writer, "tcp")

    async def handle_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """TLS sender (RFC 5425: octet counting; LF framing accepted too); the handshake runs here."""
        await self.handle_stream(reader, writer, "tls")

    def _count(self, table: dict[str, int], reason: str) -> None:
        table[reason] = table.get(reason, 0) + 1

    def _admit(self, host: str, transport: str) -> str | None:
        """Why a new connection is refused (None: admitted and counted)."""
        if self.policy.refused(host, transport):
            return "source_not_allowed"
        if self._per_listener.get(transport, 0) >= self.limits.max_connections:
            return "listener_full"
        if self._per_source.get(host, 0) >= self.limits.max_per_source:
            return "source_full"
        self._per_listener[transport] = self._per_listener.get(transport, 0) + 1
        self._per_source[host] = self._per_source.get(host, 0) + 1
        return None

    def _release(self, host: str, transport: str) -> None:
        self._per_listener[transport] -= 1
        self._per_source[host] -= 1
        if not self._per_source[host]:
            del self._per_source[host]

    async def handle_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str
    ) -> None:
        """Admit a stream sender (caps, allow-list, TLS handshake), then read frames until it ends."""
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else "?"
        source = f"{peer[0]}:{peer[1]}" if peer else "?"
        refusal = self._admit(host, transport)
        if refusal is not None:
            self._count(self.ingest.stats.refused, refusal)
            writer.transport.abort()  # no FIN handshake to wait for: the sender gets a reset
            return
        self.ingest.stats.connections += 1
        try:
            if transport == "tls":
                assert self.tls_context is not None
                if self.handshaking >= self.limits.max_handshakes:
                    self._count(self.ingest.stats.refused, "handshakes_full")
                    writer.transport.abort()
                    return
                loop = asyncio.get_running_loop()
                began = loop.time()
                self.handshaking += 1
                try:
                    await writer.start_tls(
                        self.tls_context, ssl_handshake_timeout=self.limits.tls_handshake_timeout
                    )
                except (ssl.SSLError, ConnectionError, OSError, TimeoutError):
                    # asyncio reports an expired handshake as ConnectionAbortedError: tell it by the clock.
                    slow = loop.time() - began >= self.limits.tls_handshake_timeout * 0.99
                    self._count(
                        self.ingest.stats.refused, "tls_handshake_timeout" if slow else "tls_handshake_failed"
                    )
                    writer.transport.abort()
                    return
                finally:
                    self.handshaking -= 1
            await self._read_frames(reader, writer, source, transport)
        finally:
            self.ingest.stats.connections -= 1
            self._release(host, transport)

    async def _read_frames(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: str, transport: str
    ) -> None:
        framer = Framer(self.max_frame)
        ingest = self.ingest
        limits = self.limits
        held = 0  # this connection's share of `buffered`
        frame_started: float | None = None  # monotonic time the partial frame in the buffer began
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = loop.time()
                wait = limits.idle_timeout
                if frame_started is not None:
                    wait = min(wait, frame_started + limits.frame_timeout - now)
                try:
                    async with asyncio.timeout(max(wait, 0.0)):
                        data = await reader.read(READ_CHUNK)
                except TimeoutError:
                    reason = "idle" if frame_started is None else "frame_timeout"
                    self._count(ingest.stats.closed, reason)
                    ingest.submit_event(
                        receiver_event(
                            "connection_closed",
                            source,
                            f"{reason}: no complete frame in time",
                            ingest.clock(),
                        )
                    )
                    break
                if not data:
                    rest = framer.rest().strip(b"\x00\r\n")
                    if rest:
                        ingest.submit(rest, source, transport)
                    break
                frames = framer.feed_block(data)
                ingest.submit_many(frames, source, transport)
                if framer.error is not None:
                    ingest.stats.oversized_closed_total += 1
                    self._count(ingest.stats.closed, "oversized")
                    ingest.submit_event(
                        receiver_event("connection_closed", source, framer.error, ingest.clock())
                    )
                    break
                now_held = len(framer.buf)
                self.buffered += now_held - held
                held = now_held
                if not held:
                    frame_started = None
                elif frame_started is None or frames:
                    # A frame completed in this read: what is held now is a new partial frame. (A
                    # steady stream whose reads end mid-line was cut every frame_timeout otherwise.)
                    frame_started = loop.time()
                if self.buffered > limits.buffer_bytes:
                    # Partial frames of every connection together are bounded: the one that just
                    # grew past the budget is cut (its complete frames were kept).
                    self._count(ingest.stats.closed, "buffer_full")
                    ingest.submit_event(
                        receiver_event(
                            "connection_closed", source, "reassembly memory budget exceeded", ingest.clock()
                        )
                    )
                    break
                if ingest.full:
                    await ingest.wait_room()
        except (ConnectionError, OSError) as exc:
            ingest.stats.errors.append(type(exc).__name__)
            del ingest.stats.errors[:-100]
        finally:
            self.buffered -= held
            ingest.stats.truncated_total += framer.truncated
            writer.close()

    def report_drops(self) -> None:
        """Store one record of the UDP datagrams dropped since the last report (none if nothing was).

        Called once a minute: the store says when and how much was lost, and a flood costs one
        record per minute however large it is.
        """
        st = self.ingest.stats
        now = {
            "queue full": st.udp_overflow_total,
            "kernel buffer full": self.udp_kernel_drops() or 0,
            "sender not allowed": st.udp_refused_total,
        }
        parts = [
            f"{n - self._reported.get(k, 0)} ({k})" for k, n in now.items() if n > self._reported.get(k, 0)
        ]
        self._reported = now
        if parts:
            msg = "UDP datagrams dropped since the last report: " + ", ".join(parts)
            self.ingest.submit_event(receiver_event("udp_dropped", "", msg, self.ingest.clock()))

    async def close(self) -> None:
        """Stop listening and commit everything received."""
        for server in (self.tcp, self.tls):
            if server is not None:
                server.close()
        if self.udp is not None:
            self.udp.close()
        await self.ingest.close()


async def start_receiver(
    ingest: Ingest,
    host: str,
    tcp_port: int | None,
    udp_port: int | None,
    max_frame: int = 64 * 1024,
    tls_port: int | None = None,
    tls_context: ssl.SSLContext | None = None,
    limits: Limits | None = None,
    policy: SourcePolicy | None = None,
) -> Receiver:
    """Bind the listeners (port 0 picks a free one) and start the writer.

    Without `policy` every sender is accepted (unknown ones are flagged by the parser).
    """
    rx = Receiver(
        ingest,
        max_frame=max_frame,
        limits=limits or Limits(),
        policy=policy or SourcePolicy(refuse_unknown=False),
        tls_context=tls_context,
    )
    ingest.max_pending_bytes = rx.limits.queue_bytes
    ingest.start()
    loop = asyncio.get_running_loop()
    if tcp_port is not None:
        rx.tcp = await asyncio.start_server(rx.handle_tcp, host, tcp_port, limit=max_frame)
    if tls_port is not None:
        if tls_context is None:
            raise ValueError("a TLS port needs a TLS context (certificate and key)")
        # Plain accept, then the handshake inside the handler: caps and the handshake timeout apply
        # before a connection costs TLS state.
        rx.tls = await asyncio.start_server(rx.handle_tls, host, tls_port, limit=max_frame)
    if udp_port is not None:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(ingest, rx.policy), local_addr=(host, udp_port)
        )
        rx.udp = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                grow_receive_buffer(sock, rx.limits.udp_receive_buffer)
    return rx


def server_tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS 1.2+ server context; with `client_ca`, senders must present a certificate it signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def device_map_from_inventory(inventory: Any) -> dict[str, str]:
    """Source address -> device name for every inventory device."""
    return {str(device.address): device.name for device in inventory.devices}


def zone_map_from_inventory(inventory: Any) -> dict[str, str]:
    """Source address -> time zone of the device's clock (its own, else the inventory default)."""
    default = getattr(getattr(inventory, "defaults", None), "timezone", None) or "Asia/Shanghai"
    return {str(d.address): getattr(d, "timezone", None) or default for d in inventory.devices}
