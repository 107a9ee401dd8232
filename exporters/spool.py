"""A durable on-disk FIFO of line-protocol batches: append with fsync, read in order, ack, cap by bytes.

Layout: `DIR/seg-<20-digit seq>.spool` segment files, each starting with `GVSPOOL1` and holding
records `[u32 length][u32 crc32(payload)][payload]`, payload = `[u32 points][lines joined by \\n]`;
`DIR/ack` holds the position (segment, offset) up to which the server acknowledged; `DIR/lock`
is flock()ed so two processes never share a spool.

Guarantees:
- `append()` returns after the record is written and fsync()ed: a kill -9 (or power loss) after that
  loses nothing. A torn tail (crash mid-write) fails its length/crc check on reopen and is cut off.
- Records are read in append order; a segment is deleted only when every record in it was acked.
- The ack position is rewritten (write + rename) after each ack, so a restart after kill -9 resumes
  after the last acknowledged record. It is not fsync()ed: after a power loss the last acknowledged
  batches may be sent again (InfluxDB overwrites identical points, so this is harmless there).
- Beyond `max_bytes` the OLDEST whole segment is dropped and its unsent points counted exactly in
  `dropped_points`: during a long outage the freshest data is worth more, the TSDB gets the recent
  past when it returns, and dropping a whole segment is one unlink instead of rewriting files.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import struct
import threading
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"GVSPOOL1"
HEADER = struct.Struct("<II")
COUNT = struct.Struct("<I")
ACK = struct.Struct("<QQI")
MAX_RECORD = 256 * 1024 * 1024
_SEGMENT = re.compile(r"^seg-(\d{20})\.spool$")


class SpoolError(RuntimeError):
    """The spool directory cannot be used (locked by another process, unwritable...)."""


@dataclass(slots=True, eq=False)
class RecordRef:
    """Where one record (one batch) lives and how many points it holds."""

    seq: int
    offset: int
    size: int
    points: int


@dataclass(slots=True)
class SpoolRecord:
    """A record handed to the sender: its position and its line-protocol body."""

    ref: RecordRef
    body: bytes


@dataclass(slots=True, eq=False)
class _Segment:
    seq: int
    path: Path
    size: int
    records: deque[RecordRef] = field(default_factory=deque)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_record(lines: Sequence[bytes]) -> bytes:
    """Frame a batch of lines as one record."""
    payload = COUNT.pack(len(lines)) + b"\n".join(lines)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class Spool:
    """The durable FIFO; thread-safe (one appender, one sender)."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or min(64 << 20, max(4096, max_bytes // 16))
        self._cond = threading.Condition()
        self._segments: list[_Segment] = []
        self._fd: int | None = None
        self._inflight: RecordRef | None = None
        self._orphaned = False
        self.bytes = 0
        self.points = 0
        self.dropped_points = 0
        self.appended_points = 0
        self.acked_points = 0
        self.discarded_tail_bytes = 0
        self._closed = False
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SpoolError(f"spool {directory} is in use by another process") from None
        self._recover()

    # -- recovery -------------------------------------------------------------------------------

    def _read_ack(self) -> tuple[int, int]:
        try:
            raw = (self.directory / "ack").read_bytes()
            seq, offset, crc = ACK.unpack(raw)
        except (OSError, struct.error):
            return (0, 0)
        if zlib.crc32(raw[:16]) != crc:
            log.warning("spool ack file is corrupt; replaying from the oldest segment")
            return (0, 0)
        return (seq, offset)

    def _recover(self) -> None:
        ack_seq, ack_off = self._read_ack()
        paths = sorted(
            (int(m.group(1)), p) for p in self.directory.iterdir() if (m := _SEGMENT.match(p.name))
        )
        for seq, path in paths:
            if seq < ack_seq:
                path.unlink()
                continue
            seg = self._scan(seq, path, ack_off if seq == ack_seq else 0)
            if seg.records:
                self._segments.append(seg)
            else:
                path.unlink()
        last = paths[-1][0] if paths else 0
        # Always append to a fresh segment: never write after a tail that was just repaired.
        self._open_segment(max(last, ack_seq) + 1)

    def _scan(self, seq: int, path: Path, skip_before: int) -> _Segment:
        data = path.read_bytes()
        seg = _Segment(seq, path, len(data))
        if not data.startswith(MAGIC):
            log.warning("spool segment %s has no valid header; discarded", path.name)
            self.discarded_tail_bytes += len(data)
            seg.size = 0
            return seg
        pos = len(MAGIC)
        while pos < len(data):
            if pos + HEADER.size > len(data):
                break
            length, crc = HEADER.unpack_from(data, pos)
            end = pos + HEADER.size + length
            if length < COUNT.size or length > MAX_RECORD or end > len(data):
                break
            payload = data[pos + HEADER.size : end]
            if zlib.crc32(payload) != crc:
                break
            if pos >= skip_before:
                (n,) = COUNT.unpack_from(payload)
                seg.records.append(RecordRef(seq, pos, end - pos, n))
                self.bytes += end - pos
                self.points += n
            pos = end
        if pos < len(data):
            # A torn or corrupt tail: everything from here on is unreadable, cut it off.
            log.warning("spool segment %s: %d bytes of torn tail discarded", path.name, len(data) - pos)
            self.discarded_tail_bytes += len(data) - pos
            with open(path, "r+b") as fh:
                fh.truncate(pos)
                os.fsync(fh.fileno())
            seg.size = pos
        return seg

    # -- appending ------------------------------------------------------------------------------

    def _open_segment(self, seq: int) -> None:
        path = self.directory / f"seg-{seq:020d}.spool"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.write(fd, MAGIC)
        os.fsync(fd)
        _fsync_dir(self.directory)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._segments.append(_Segment(seq, path, len(MAGIC)))

    @property
    def _active(self) -> _Segment:
        return self._segments[-1]

    def _rotate(self) -> None:
        self._open_segment(self._active.seq + 1)
        self._delete_acked_segments()

    def append(self, lines: Sequence[bytes]) -> int:
        """Write one batch durably; returns the points accepted (0 if the batch alone exceeds the cap)."""
        if not lines:
            return 0
        record = encode_record(lines)
        n = len(lines)
        with self._cond:
            if self._closed:
                raise SpoolError("spool is closed")
            if len(record) > self.max_bytes:
                self.dropped_points += n
                log.warning("a batch of %d points is larger than the spool cap; dropped", n)
                return 0
            while self.bytes + len(record) > self.max_bytes and self.points_on_disk():
                self._drop_oldest()
            if self._active.size >= self.segment_bytes:
                self._rotate()
            seg = self._active
            assert self._fd is not None
            os.write(self._fd, record)
            os.fsync(self._fd)
            seg.records.append(RecordRef(seg.seq, seg.size, len(record), n))
            seg.size += len(record)
            self.bytes += len(record)
            self.points += n
            self.appended_points += n
            self._cond.notify_all()
            return n

    def points_on_disk(self) -> bool:
        """True while unacknowledged records remain."""
        return any(seg.records for seg in self._segments)

    def _drop_oldest(self) -> None:
        seg = next(s for s in self._segments if s.records)
        if seg is self._active:
            self._open_segment(seg.seq + 1)
        self._segments.remove(seg)
        for ref in seg.records:
            self.bytes -= ref.size
            self.points -= ref.points
            if ref is self._inflight:
                # Being sent right now: it counts as written or dropped when the send ends.
                self._orphaned = True
            else:
                self.dropped_points += ref.points
        seg.path.unlink(missing_ok=True)
        self._delete_acked_segments()

    def _delete_acked_segments(self) -> None:
        keep: list[_Segment] = []
        for seg in self._segments:
            if not seg.records and seg is not self._active:
                seg.path.unlink(missing_ok=True)
            else:
                keep.append(seg)
        self._segments = keep

    # -- sending --------------------------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        """Wait until a record is available (or the spool closes); True if one is."""
        with self._cond:
            if not self.points_on_disk() and not self._closed:
                self._cond.wait(timeout)
            return self.points_on_disk()

    def peek(self) -> SpoolRecord | None:
        """The oldest unacknowledged record, now in flight (one sender at a time)."""
        with self._cond:
            if self._inflight is not None:
                raise SpoolError("a record is already in flight")
            while True:
                seg = next((s for s in self._segments if s.records), None)
                if seg is None:
                    return None
                ref = seg.records[0]
                with open(seg.path, "rb") as fh:
                    fh.seek(ref.offset)
                    raw = fh.read(ref.size)
                length, crc = HEADER.unpack_from(raw)
                payload = raw[HEADER.size :]
                if len(payload) == length and zlib.crc32(payload) == crc:
                    self._inflight = ref
                    self._orphaned = False
                    return SpoolRecord(ref, payload[COUNT.size :])
                # Corrupted on disk after it was written: it can never be sent.
                log.error("spool record in %s at %d is corrupt; dropped", seg.path.name, ref.offset)
                self._forget(seg, ref)
                self.dropped_points += ref.points

    def _forget(self, seg: _Segment, ref: RecordRef) -> None:
        seg.records.popleft()
        self.bytes -= ref.size
        self.points -= ref.points
        self._write_ack(ref.seq, ref.offset + ref.size)
        self._delete_acked_segments()

    def ack(self, ref: RecordRef) -> None:
        """The server took the record (or rejected it for good): never send it again."""
        with self._cond:
            self._end_flight(ref)
            if self._orphaned:
                self._orphaned = False
                self.acked_points += ref.points
                return
            seg = next(s for s in self._segments if s.records)
            if seg.records[0] is not ref:
                raise SpoolError("ack out of order")
            self._forget(seg, ref)
            self.acked_points += ref.points

    def release(self, ref: RecordRef) -> None:
        """The send failed and will be retried (unless the cap dropped the record meanwhile)."""
        with self._cond:
            self._end_flight(ref)
            if self._orphaned:
                self._orphaned = False
                self.dropped_points += ref.points

    def _end_flight(self, ref: RecordRef) -> None:
        if self._inflight is not ref:
            raise SpoolError("record is not in flight")
        self._inflight = None

    def _write_ack(self, seq: int, offset: int) -> None:
        head = struct.pack("<QQ", seq, offset)
        tmp = self.directory / "ack.tmp"
        tmp.write_bytes(head + struct.pack("<I", zlib.crc32(head)))
        os.replace(tmp, self.directory / "ack")

    def close(self) -> None:
        """Close the files and release the directory lock (everything appended stays on disk)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
