"""Segment files: one JSON line per record (`{"h": chain hash, "r": record}`), plain or gzip-compressed."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import mmap
import os
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from isal import isal_zlib  # ISA-L's deflate: plain gzip output, ~8x faster than zlib's level 1

from logstore.record import Record, canonical, leaf_hash, meta_of, record_leaf
from logstore.verify import Entry


def encode_line(chain: str, rec: Record) -> bytes:
    """The on-disk line of a record (the record part is its canonical encoding)."""
    return b'{"h":"' + chain.encode() + b'","r":' + canonical(rec) + b"}\n"


def decode_line(line: bytes) -> tuple[str, Record]:
    """Parse one line; raise ValueError when it is not a well-formed record line."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or not isinstance(obj.get("h"), str) or not isinstance(obj.get("r"), dict):
        raise ValueError("not a record line")
    return obj["h"], obj["r"]


def segment_name(first_seq: int) -> str:
    """The name of the segment whose first record has `first_seq`."""
    return f"seg-{first_seq:012d}"


def read_lines(path: Path, limit: int | None = None) -> Iterator[bytes]:
    """Lines of a segment file (gzip when the name ends in .gz), newline included; with `limit`,
    only the complete lines within the first `limit` bytes of the (uncompressed) records.

    The file is opened before this returns (a missing file raises here, not at the first line), so
    a reader can fall back to the compressed file when the writer has just sealed the segment.
    """
    fh: Any = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")  # noqa: SIM115
    return _lines(fh, limit)


def _lines(fh: Any, limit: int | None) -> Iterator[bytes]:
    with fh:
        if limit is None:
            yield from fh
            return
        left = limit
        for line in fh:
            if len(line) > left:
                return
            left -= len(line)
            yield line


def entries(path: Path, limit: int | None = None) -> Iterator[tuple[Entry, Record | None]]:
    """Read records back as chain-check entries (unreadable lines become error entries)."""
    return entries_of(read_lines(path, limit))


def entries_of(lines: Iterator[bytes]) -> Iterator[tuple[Entry, Record | None]]:
    """Chain-check entries of already opened segment lines."""
    for line in lines:
        try:
            if line.startswith(b'{"h":"') and line[70:76] == b'","r":' and line.endswith(b"}\n"):
                # Fast path: hash the stored record bytes as they are (the store wrote them canonical;
                # any other spelling of the same record hashes differently and is reported).
                chain, body = line[6:70].decode("ascii"), line[76:-2]
                rec = loads(body)
                if not isinstance(rec, dict):
                    raise ValueError("not a record line")
                leaf = leaf_hash(meta_of(rec), hashlib.sha256(body).hexdigest())
            else:
                chain, rec = decode_line(line)
                leaf = record_leaf(rec)
            seq = rec.get("seq")
            if not isinstance(seq, int):
                raise ValueError("record has no integer seq")
            yield Entry(seq, chain, leaf), rec
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            yield Entry(None, None, None, error=type(exc).__name__), None


def loads(data: bytes) -> Any:
    """orjson where it accepts the text (fast), else the standard library (the reference reader)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


# Event types the per-hour device statistics leave out (govnet's own records, not a device's lines).
UNCOUNTED = frozenset(("store", "audit"))


@dataclass(slots=True)
class Tally:
    """What a run of records adds to its segment's index, apart from seqs and hashes."""

    min_ts: str
    max_ts: str
    devices: list[str]  # in order of first appearance ("" for none)
    types: dict[str, int]
    hourly: dict[str, dict[str, int]] = field(default_factory=dict)
    device_last: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SegmentIndex:
    """What a segment holds: sequence and time range, devices, event types, chain ends, Merkle root."""

    name: str
    first_seq: int = 0
    last_seq: int = 0
    count: int = 0
    prev_hash: str = ""
    last_hash: str = ""
    merkle_root: str = ""
    min_ts: str = ""
    max_ts: str = ""
    devices: list[str] = field(default_factory=list)
    types: dict[str, int] = field(default_factory=dict)
    file: str = ""
    bytes: int = 0
    # Random access into a sealed, compressed segment: [first seq, byte offset] of each gzip member
    # (the file is a plain multi-member gzip: any gzip reader still reads it whole).
    blocks: list[list[int]] = field(default_factory=list)
    # Audit statistics without reading records: per UTC hour ("2026-03-12T07") lines per device,
    # and each device's newest receive time.
    hourly: dict[str, dict[str, int]] = field(default_factory=dict)
    device_last: dict[str, str] = field(default_factory=dict)
    # `devices` as a set, for the per-record membership test (a list scan grew with the devices).
    device_set: set[str] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.device_set = set(self.devices)

    def add(self, rec: Record, chain: str) -> None:
        """Account for one appended record."""
        self.add_entry(rec["seq"], rec["recv_ts"], rec["device"], rec["event_type"], chain)

    def add_entry(self, seq: int, ts: str, device: str | None, event_type: str, chain: str) -> None:
        """Account for one appended record, given the fields the index keeps."""
        if self.count == 0:
            self.first_seq = seq
            self.min_ts = ts
        self.count += 1
        self.last_seq = seq
        self.last_hash = chain
        if ts < self.min_ts:
            self.min_ts = ts
        if ts > self.max_ts:
            self.max_ts = ts
        device = device or ""
        if device not in self.device_set:
            self.device_set.add(device)
            self.devices.append(device)
        self.types[event_type] = self.types.get(event_type, 0) + 1
        if event_type not in UNCOUNTED:
            hour = self.hourly.get(ts[:13])
            if hour is None:
                hour = self.hourly[ts[:13]] = {}
            hour[device] = hour.get(device, 0) + 1
            if ts > self.device_last.get(device, ""):
                self.device_last[device] = ts

    def add_run(self, first_seq: int, count: int, last_hash: str, tally: Tally) -> None:
        """Account for `count` appended records, seqs `first_seq`.., as `add_entry` on each would."""
        if self.count == 0:
            self.first_seq = first_seq
            self.min_ts = tally.min_ts
        self.count += count
        self.last_seq = first_seq + count - 1
        self.last_hash = last_hash
        if tally.min_ts < self.min_ts:
            self.min_ts = tally.min_ts
        if tally.max_ts > self.max_ts:
            self.max_ts = tally.max_ts
        for device in tally.devices:
            if device not in self.device_set:
                self.device_set.add(device)
                self.devices.append(device)
        types = self.types
        for event_type, n in tally.types.items():
            types[event_type] = types.get(event_type, 0) + n
        for hour, per_device in tally.hourly.items():
            mine = self.hourly.get(hour)
            if mine is None:
                mine = self.hourly[hour] = {}
            for device, n in per_device.items():
                mine[device] = mine.get(device, 0) + n
        last = self.device_last
        for device, ts in tally.device_last.items():
            if ts > last.get(device, ""):
                last[device] = ts

    def may_hold(self, from_ts: str, to_ts: str, device: str | None, event_type: str | None) -> bool:
        """False when the index proves no record matches (used to skip whole segments)."""
        if self.count == 0 or self.max_ts < from_ts or self.min_ts >= to_ts:
            return False
        if device is not None and device not in self.device_set:
            return False
        return event_type is None or event_type in self.types

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the sidecar file."""
        data = asdict(self)
        del data["device_set"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SegmentIndex:
        """Inverse of to_json."""
        return cls(**data)


SEQ_KEY = re.compile(rb',"seq":(\d+)')  # a key, never text: inside strings a quote is escaped


def compress_segment(
    src: Path,
    dst: Path,
    level: int,
    on_block: Callable[[bytes], None] | None = None,
    block_bytes: int = 256 * 1024,
) -> list[list[int]]:
    """Write `src` as a multi-member gzip file (one member per ~`block_bytes` of whole lines) to `dst`
    durably; return the block table. `on_block(lines)` sees every block of record lines (for indexing).

    Whole blocks, not lines, are the unit: sealing runs beside ingest, and a Python step per line
    cost as much as compressing."""
    blocks: list[list[int]] = []
    offset = 0
    rest = b""
    with src.open("rb") as fin, dst.open("wb") as fout:
        while True:
            data = fin.read(block_bytes)
            buf = rest + data
            if not buf:
                break
            cut = buf.rfind(b"\n") + 1 if data else len(buf)
            if cut == 0:  # one line longer than a block: read on
                rest = buf
                continue
            block, rest = buf[:cut], buf[cut:]
            m = SEQ_KEY.search(block)  # the first line's seq (a key, never text)
            comp = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
            out = comp.compress(block) + comp.flush()
            fout.write(out)
            blocks.append([int(m.group(1)) if m else 0, offset])
            offset += len(out)
            if on_block is not None:
                on_block(block)
        fout.flush()
        os.fsync(fout.fileno())
    return blocks


class BlockCompressor:
    """Compresses a segment as its lines are appended, into exactly the blocks (and bytes)
    `compress_segment` makes of the finished file, so sealing does not read 64 MiB back.

    Reading the sealed segment back cost the syslog writer ~0.3-0.5 us per line (the kernel's copy,
    and a disk read now that segments are written past the page cache), besides the copies of
    `compress_segment`'s own buffers. `dst` is written as blocks complete; `finish` completes it durably.
    """

    def __init__(self, dst: Path, level: int, block_bytes: int = 256 * 1024) -> None:
        self.dst = dst
        self.level = level
        self.block_bytes = block_bytes
        self.blocks: list[list[int]] = []
        self._out = dst.open("wb")
        # The segment's bytes from `_done` on that are not in a block yet: `_pending[:_held]`, in one
        # buffer kept for the segment (a new one per block cost a page fault per 4 KiB).
        self._pending = bytearray(2 * block_bytes)
        self._held = 0
        self._done = 0
        # compress_segment reads `block_bytes` at a time and cuts each block at the last LF read so far.
        self._chunk_end = block_bytes
        self._offset = 0  # compressed bytes written

    def add(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        """The bytes just appended to the segment."""
        for piece in pieces:
            self.add_from(piece if not isinstance(piece, memoryview) else bytes(piece), 0, len(piece))

    def add_from(self, buf: bytes | bytearray | mmap.mmap, start: int, end: int) -> None:
        """The bytes just appended to the segment, `buf[start:end]`: blocks that lie wholly inside it
        are compressed from it in place; only a block's start left from earlier appends is copied."""
        base = self._done + self._held - start  # the segment offset of buf[0]
        pos = start
        while base + end >= self._chunk_end:
            limit = self._chunk_end - base
            cut = buf.rfind(b"\n", pos, limit) + 1
            if cut:
                if self._held:
                    self._hold(buf, pos, cut)
                    self._emit(self._pending, 0, self._held)
                    self._held = 0
                else:
                    self._emit(buf, pos, cut)
                pos = cut
            else:
                cut = self._pending.rfind(b"\n", 0, self._held) + 1
                if cut:
                    self._emit(self._pending, 0, cut)
                    self._drop(cut)
            self._chunk_end += self.block_bytes
        if pos < end:
            self._hold(buf, pos, end)

    def _hold(self, buf: bytes | bytearray | mmap.mmap, start: int, stop: int) -> None:
        n = stop - start
        if self._held + n > len(self._pending):  # a line longer than a block: grow
            self._pending += bytes(self._held + n - len(self._pending))
        with memoryview(buf) as view:
            self._pending[self._held : self._held + n] = view[start:stop]
        self._held += n

    def _drop(self, cut: int) -> None:
        rest = self._held - cut
        self._pending[:rest] = self._pending[cut : self._held]
        self._held = rest

    def _emit(self, buf: bytes | bytearray | mmap.mmap, start: int, stop: int) -> None:
        m = SEQ_KEY.search(buf, start, stop)  # the first line's seq (a key, never text)
        first = int(m.group(1)) if m else 0
        with memoryview(buf) as view, view[start:stop] as block:
            comp = isal_zlib.compressobj(self.level, isal_zlib.DEFLATED, 31)
            out = comp.compress(block) + comp.flush()
        self._out.write(out)
        self.blocks.append([first, self._offset])
        self._offset += len(out)
        self._done += stop - start

    def finish(self) -> list[list[int]]:
        """Compress what is left (the segment is complete), make `dst` durable; the block table."""
        held = self._held
        if held and self._done + held > self._chunk_end - self.block_bytes:
            cut = self._pending.rfind(b"\n", 0, held) + 1  # the last, partial read of compress_segment
            if 0 < cut < held:
                self._emit(self._pending, 0, cut)
                self._drop(cut)
        if self._held:
            self._emit(self._pending, 0, self._held)
            self._held = 0
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        return self.blocks

    def abandon(self) -> None:
        """Drop the partial output (the segment will be compressed from its file when sealed)."""
        self._out.close()
        self.dst.unlink(missing_ok=True)


def read_block(path: Path, blocks: list[list[int]], index: int) -> bytes:
    """The uncompressed lines of one block of a compressed segment."""
    start = blocks[index][1]
    end = blocks[index + 1][1] if index + 1 < len(blocks) else None
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read() if end is None else fh.read(end - start)
    return zlib.decompress(data, 31)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that it is either absent, old or complete and durable."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


BLOCK = 4096  # O_DIRECT's unit here: offsets, lengths and buffer addresses are multiples of it
DIRECT_MIN = 64 * 1024  # smaller appends go through the page cache (a direct write would not pay)


class Staging:
    """A page-aligned buffer for direct writes, grown as needed and reused (by each segment of a store:
    new pages cost a fault and a zeroing each, ~0.1 us per line when every segment took fresh ones)."""

    def __init__(self) -> None:
        self.buf: mmap.mmap | None = None

    def get(self, size: int) -> mmap.mmap:
        """A buffer of at least `size` bytes (its contents are not kept when it grows)."""
        if self.buf is None or len(self.buf) < size:
            if self.buf is not None:
                self.buf.close()
            length = (size + size // 4 + BLOCK) // BLOCK * BLOCK
            self.buf = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        return self.buf


class Appender:
    """Appends to a segment file: whole 4 KiB blocks with O_DIRECT, the last partial block through the
    page cache; `sync` makes both durable (fsync).

    A buffered write of fresh page-cache pages cost the syslog writer 0.5-1.5 us per 1.1 KiB line on
    this machine (the kernel's copy into new pages, their allocation and buffer heads, writeback in
    fsync), more than anything else it does; a direct write moves the same bytes by DMA from one
    reused buffer. The block holding the end of the file is written again (whole) with the next
    append, so the file never holds padding: its size and contents are those buffered appends give,
    and readers (buffered) see the same bytes (the kernel keeps direct and buffered I/O coherent).
    Where O_DIRECT is refused (tmpfs, some filesystems) every append is buffered.
    """

    def __init__(self, path: Path, staging: Staging | None = None) -> None:
        self.path = path
        self._staging = staging or Staging()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._direct = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        except (OSError, AttributeError):
            self._direct = -1
        self.size = os.fstat(self._fd).st_size
        keep = self.size % BLOCK
        self._tail = os.pread(self._fd, keep, self.size - keep) if keep else b""  # the last partial block
        # After a direct write: (buffer, start, end) where the appended bytes sit contiguously.
        self.staged: tuple[mmap.mmap, int, int] | None = None

    def write(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        """Append `pieces` (not durable before `sync`); on an error the file may hold part of them."""
        total = len(self._tail) + sum(len(p) for p in pieces)
        full = total - total % BLOCK
        self.staged = None
        if self._direct < 0 or full < DIRECT_MIN:
            at = self.size
            for piece in pieces:
                _pwrite_all(self._fd, memoryview(piece), at, False)
                at += len(piece)
            self.size = at
            self._tail = _suffix([self._tail, *pieces], at % BLOCK)
            return
        buf = self._staging.get(total)
        view = memoryview(buf)
        try:
            base = self.size - len(self._tail)
            at = len(self._tail)
            view[:at] = self._tail
            for piece in pieces:
                view[at : at + len(piece)] = piece
                at += len(piece)
            _pwrite_all(self._direct, view[:full], base, True)
            if full < total:
                _pwrite_all(self._fd, view[full:total], base + full, False)
            self.staged = (buf, len(self._tail), total)  # after the old tail: the appended bytes
            self._tail = bytes(view[full:total])
            self.size = base + total
        finally:
            view.release()

    def sync(self) -> None:
        """fsync: what was appended is durable when this returns."""
        os.fsync(self._fd)

    def fileno(self) -> int:
        """The (buffered) descriptor, for fsync."""
        return self._fd

    def flush(self) -> None:
        """Nothing is held in this process (kept for the file-object interface)."""

    def close(self) -> None:
        """Close the descriptors (without syncing)."""
        for fd in (self._direct, self._fd):
            if fd >= 0:
                os.close(fd)
        self._direct = self._fd = -1


def _pwrite_all(fd: int, view: memoryview, offset: int, direct: bool) -> None:
    done = 0
    while done < len(view):
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0 or (direct and n < len(view)):
            # A direct write cannot go on from an unaligned point: fail the append (the store cuts
            # the file back to its last durable size).
            raise OSError(errno.ENOSPC, "short write")
        done += n


def _suffix(pieces: Sequence[bytes | bytearray | memoryview], n: int) -> bytes:
    """The last `n` bytes of the pieces joined (n at most their length)."""
    out: list[bytes] = []
    for piece in reversed(pieces):
        if n <= 0:
            break
        part = bytes(piece[max(0, len(piece) - n) :])
        out.append(part)
        n -= len(part)
    return b"".join(reversed(out))
