"""asyncio syslog receiver (UDP, TCP with RFC 6587 framing) feeding one batching, durable writer."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collectors.syslog.formats import CompiledFormat, FormatSet
from collectors.syslog.framing import Framer
from collectors.syslog.parse import parse_frame
from collectors.syslog.parse_pool import LINE_BUDGET, ParsePool, Pending
from collectors.syslog.sequence import SequenceGaps, sequence_id
from logstore.record import Record, iso_utc, new_record
from logstore.store import LogStore

Item = tuple[bytes, float, str, str] | dict[str, Any]


@dataclass
class IngestStats:
    """Counters exported as metrics (govnet_syslog_*)."""

    received_total: int = 0
    durable_total: int = 0
    batches_total: int = 0
    oversized_closed_total: int = 0
    truncated_total: int = 0
    udp_overflow_total: int = 0
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
    ) -> None:
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
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def submit(self, raw: bytes, source: str, transport: str) -> None:
        """Queue one frame (receive time taken now)."""
        self._pending.append((raw, self.clock(), source, transport))
        self.stats.received_total += 1
        self._signal()

    def submit_many(self, frames: list[bytes], source: str, transport: str) -> None:
        """Queue the frames one read completed (one receive time: they were complete at that moment)."""
        if not frames:
            return
        now = self.clock()
        self._pending.extend([(frame, now, source, transport) for frame in frames])
        self.stats.received_total += len(frames)
        self._signal()

    def submit_event(self, rec: Record) -> None:
        """Queue a receiver event (oversized frame, overflow) as its own record."""
        self._pending.append(rec)
        self._signal()

    def _signal(self) -> None:
        self._idle.clear()
        self._wake.set()
        if len(self._pending) >= self.max_pending:
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

    def _take(self, count: int) -> list[Item]:
        batch = self._pending[:count]
        del self._pending[:count]
        if len(self._pending) < self.max_pending:
            self._room.set()
        return batch

    def _start(self, batch: list[Item]) -> Pending | None:
        """Hand a batch's frames to the parse workers (None when parsing happens in the writer thread)."""
        if self.pool is None or self.pool.broken or not batch:
            return None
        return self.pool.submit([item for item in batch if isinstance(item, tuple)])

    async def _run(self) -> None:
        # Two-stage pipeline when there are parse workers: they parse batch N+1 while this process
        # hashes, writes and fsyncs batch N. Nothing counts as durable before its own fsync.
        while True:
            await self._wake.wait()
            self._wake.clear()
            parsing: Pending | None = None  # the head batch's frames, already handed to the workers
            nxt: list[Item] = []
            while self._pending:
                batch = self._take(len(nxt) if parsing is not None else self.batch_max)
                nxt = self._pending[: self.batch_max] if self.pool is not None else []
                try:
                    seqs, parsing = await asyncio.to_thread(self._commit, batch, parsing, nxt)
                except OSError as exc:
                    # Not durable: keep the batch at the head of the queue and retry (senders are held
                    # back by backpressure meanwhile); the workers' copy of the next batch was discarded.
                    parsing = None
                    self._pending[:0] = batch
                    self.stats.errors.append(f"store write failed: {type(exc).__name__}")
                    await asyncio.sleep(1.0)
                    continue
                frames = [item[0] for item in batch if isinstance(item, tuple)]
                # Keyed by host, not "host:port": one entry per sender however often it reconnects.
                seen = self.stats.last_seen
                for item in batch:
                    if isinstance(item, tuple):
                        host = item[2].rsplit(":", 1)[0].strip("[]")
                        seen[host] = item[1]
                        # Frames arrive here in receive order per connection; the check is a byte search
                        # unless the frame carries a sequenceId.
                        seq = sequence_id(item[0])
                        if seq is not None:
                            self.sequences.observe(host, seq)
                self.stats.durable_total += len(frames)
                self.stats.batches_total += 1
                if seqs:
                    self.stats.last_durable_seq = seqs[-1]
                if self.forward is not None:
                    self.forward(frames)
                if self.on_durable is not None:
                    self.on_durable(self.stats.durable_total, self.stats.last_durable_seq)
                if parsing is not None and self._pending[: len(nxt)] != nxt:
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
            self.pool.collect(parsing)

    def _commit(
        self, batch: list[Item], parsing: Pending | None, nxt: list[Item]
    ) -> tuple[list[int], Pending | None]:
        """Parse `batch` (or collect the workers' parse), hand `nxt` to the workers, commit `batch`."""
        if parsing is None and self.pool is not None:  # untrusted text is parsed only in the workers
            parsing = self.pool.submit([item for item in batch if isinstance(item, tuple)])
        if parsing is not None and self.pool is not None:
            parsed = iter(self.pool.collect(parsing))
            recs = [next(parsed) if isinstance(item, tuple) else item for item in batch]
        else:
            recs = [
                parse_frame(item[0], item[1], item[2], item[3], self.formats, self.devices, self.zones)
                if isinstance(item, tuple)
                else item
                for item in batch
            ]
        handed = self._start(nxt)  # the workers parse the next batch while this one is hashed and fsynced
        try:
            return self.store.append_batch(recs), handed
        except OSError:
            if handed is not None:
                self._discard(handed)
            raise


def receiver_event(action: str, source: str, msg: str, now: float) -> Record:
    """A record about the receiver itself (e.g. a sender cut off for an oversized frame)."""
    return new_record(
        recv_ts=iso_utc(now), event_type="store", source=source, action=action, outcome="recorded", msg=msg,
        app="govnet-syslog", flags=["receiver_event"],
    )  # fmt: skip


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        # UDP cannot be slowed down: keep accepting (memory grows past max_pending) and count it.
        if self.ingest.full:
            self.ingest.stats.udp_overflow_total += 1
        self.ingest.submit(data, f"{addr[0]}:{addr[1]}", "udp")


@dataclass
class Receiver:
    """Running listeners; `close()` stops them and commits what was received."""

    ingest: Ingest
    tcp: asyncio.Server | None = None
    tls: asyncio.Server | None = None
    udp: asyncio.DatagramTransport | None = None
    max_frame: int = 64 * 1024

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

    async def handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Plain TCP sender (RFC 6587)."""
        await self.handle_stream(reader, writer, "tcp")

    async def handle_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """TLS sender (RFC 5425: octet counting; LF framing accepted too)."""
        await self.handle_stream(reader, writer, "tls")

    async def handle_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str
    ) -> None:
        """Read frames from one stream sender until EOF, error or an oversized frame."""
        peer = writer.get_extra_info("peername")
        source = f"{peer[0]}:{peer[1]}" if peer else "?"
        framer = Framer(self.max_frame)
        ingest = self.ingest
        ingest.stats.connections += 1
        try:
            while True:
                data = await reader.read(256 * 1024)
                if not data:
                    rest = framer.rest().strip(b"\x00\r\n")
                    if rest:
                        ingest.submit(rest, source, transport)
                    break
                ingest.submit_many(framer.feed(data), source, transport)
                if framer.error is not None:
                    ingest.stats.oversized_closed_total += 1
                    ingest.submit_event(
                        receiver_event("connection_closed", source, framer.error, ingest.clock())
                    )
                    break
                if ingest.full:
                    await ingest.wait_room()
        except (ConnectionError, OSError) as exc:
            ingest.stats.errors.append(type(exc).__name__)
        finally:
            ingest.stats.truncated_total += framer.truncated
            ingest.stats.connections -= 1
            writer.close()

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
) -> Receiver:
    """Bind the listeners (port 0 picks a free one) and start the writer."""
    rx = Receiver(ingest, max_frame=max_frame)
    ingest.start()
    loop = asyncio.get_running_loop()
    if tcp_port is not None:
        rx.tcp = await asyncio.start_server(rx.handle_tcp, host, tcp_port, limit=max_frame)
    if tls_port is not None:
        if tls_context is None:
            raise ValueError("a TLS port needs a TLS context (certificate and key)")
        rx.tls = await asyncio.start_server(rx.handle_tls, host, tls_port, limit=max_frame, ssl=tls_context)
    if udp_port is not None:
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(ingest), local_addr=(host, udp_port))
        rx.udp = transport
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
