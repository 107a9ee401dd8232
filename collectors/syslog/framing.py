"""RFC 6587 TCP framing, sans I/O: octet counting ("LEN SP MSG") and LF framing, with bounded memory.

A frame is octet-counted only when it starts `LEN SP <`: an octet-counted frame carries a syslog message,
which begins with its PRI. Anything else is LF-framed, so a device line that begins with digits and a
space (StoneOS body-only records such as `48088401 IPS@IPS: ...`) is one line, not a length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import re2

_OPTS = re2.Options()
_OPTS.encoding = re2.Options.Encoding.LATIN1  # bytes as bytes: a non-ASCII byte is one character
_OPTS.log_errors = False
# A line start other than `<PRI>` followed by a character other than "1": a line that is not
# `<`-led (the block path does not apply), or that may be RFC 5424 (version "1"), the only kind of
# frame that can carry a sequenceId (`sequence.py`). RE2 scans a 64 KiB read in ~5 us; the
# sequenceId byte search it spares took ~40 us, a count of "\n<" ~100 us.
_ODD = rb"(?:[^<]|<[^0-9]|<[0-9][^0-9>]|<[0-9]{2}[^0-9>]|<[0-9]{3}[^>]|<[0-9]{1,3}>1)"
_ODD_FIRST = re2.compile(_ODD, _OPTS)
_ODD_NEXT = re2.compile(rb"\n" + _ODD, _OPTS)
_NOT_LT = re2.compile(rb"\n[^<]", _OPTS)


class Lines:
    """The LF frames of one read kept as one block (`data`, each line a frame ending in LF), or frames
    `start`..`stop` of it: the receiver queues, counts and hands out reads without a bytes object or
    a pickled item per line; whoever needs the frames (a parse worker) splits the block once."""

    __slots__ = ("count", "data", "plain", "start", "stop")

    def __init__(
        self, data: bytes, count: int, start: int = 0, stop: int | None = None, plain: bool = False
    ) -> None:
        self.data = data
        self.count = count  # frames in the whole block (its LFs)
        self.start = start
        self.stop = count if stop is None else stop
        # True when no line is RFC 5424 (`<PRI>` then not "1"): none can carry a sequenceId.
        self.plain = plain

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, key: slice) -> Lines:
        start, stop, _ = key.indices(self.stop - self.start)
        return Lines(self.data, self.count, self.start + start, self.start + max(start, stop), self.plain)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.frames())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Lines):
            return NotImplemented
        return (self.start, self.stop, self.data) == (other.start, other.stop, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return Lines, (self.data, self.count, self.start, self.stop, self.plain)

    def frames(self) -> list[bytes]:
        """The frames, each without its LF."""
        # Split no further than `stop` (a block cut between two workers' shares is split by both).
        pieces = self.data.split(b"\n", self.stop)
        del pieces[self.stop :]  # the rest after the last LF wanted (empty after the block's last)
        if self.start:
            del pieces[: self.start]
        return pieces

    @property
    def size(self) -> int:
        """Bytes these frames hold, for memory accounting: the block's bytes shared out by frame
        position, so the sizes of the parts of a block add up to the block's."""
        n = len(self.data)
        return n * self.stop // self.count - n * self.start // self.count if self.count else 0


class FrameTooLarge(ValueError):
    """An octet-count prefix announces more than the allowed frame size: the sender must be cut off."""


@dataclass(slots=True)
class Framer:
    """Feed bytes, get complete frames; buffered bytes never exceed max_frame plus one read."""

    max_frame: int = 64 * 1024
    buf: bytearray = field(default_factory=bytearray)
    truncated: int = 0  # LF frames cut at max_frame (the rest of the line is discarded)
    error: str | None = None
    _skipping: bool = False

    def feed(self, data: bytes) -> list[bytes]:
        """Append received bytes; return the frames they complete (see `feed_block`)."""
        got = self.feed_block(data)
        return got if isinstance(got, list) else got.frames()

    def feed_block(self, data: bytes) -> list[bytes] | Lines:
        """Append received bytes; return the frames they complete, as `Lines` when they are exactly
        the read's complete lines (the usual stream: every line starts with its PRI).

        After an oversized or malformed length prefix, `error` is set (frames before it are still
        returned) and the connection must be closed: there is no way to resynchronise.
        """
        if self.error is not None:
            return []
        if not self._skipping:
            block = self._lines(data)
            if block is not None:
                return block
        self.buf += data
        frames = self._lf_run() if not self._skipping else []
        while True:
            try:
                frame = self._next()
            except FrameTooLarge as exc:
                self.error = str(exc)
                del self.buf[:]
                return frames
            if frame is None:
                return frames
            frames.append(frame)

    def _lines(self, data: bytes) -> Lines | None:
        """Fastest path: the held partial frame and `data` up to its last LF, as one block, when every
        line in it starts with `<` (so none is empty, separator-led or octet-counted: `_next` would
        give exactly these lines) and none is longer than `max_frame`; None otherwise (nothing consumed)."""
        end = data.rfind(b"\n") + 1
        if not end:
            return None
        buf = self.buf
        if buf:
            block = bytes(buf) + (data if end == len(data) else data[:end])
        else:
            block = data if end == len(data) else data[:end]
        # Whole-block scans instead of a Python step per line (RE2's DFA; str.count beats bytes.count).
        plain = _ODD_FIRST.match(block) is None and _ODD_NEXT.search(block) is None
        # (The last LF is followed by nothing, so a search of the whole block tests every other one.)
        if not plain and (block[0] != 0x3C or _NOT_LT.search(block) is not None):
            return None
        if not _fits(block, self.max_frame):
            return None
        # What stays held: the start of the next frame (separators after a frame, CR or NUL after LF,
        # dropped as `_next` drops them); one that `_next` would already cut (too long) or that may
        # be octet-counted (complete without an LF) is left to it.
        rest = data[end:].lstrip(b"\n\r\x00") if end < len(data) else b""
        if len(rest) > self.max_frame or (rest and _counted(rest) is not False):
            return None
        del buf[:]
        buf += rest
        return Lines(block, block.decode("latin-1").count("\n"), plain=plain)

    def _lf_run(self) -> list[bytes]:
        """Fast path: the complete LF-framed frames at the head of the buffer, split in one pass.

        Gives exactly what `_next` would: it stops (leaving the rest to `_next`) at the first frame
        that could be octet-counted (`LEN SP <`) or is longer than `max_frame`.
        """
        buf = self.buf
        end = buf.rfind(b"\n")
        if end < 0 or _counted(buf) is not False:
            return []
        limit = self.max_frame
        pieces = bytes(buf[:end]).split(b"\n")
        # Whole-list builtins first: when no line is empty or starts below "9" (no CR or NUL to strip,
        # no digit that could start an octet count) and none is too long, the lines are the frames.
        if min(pieces)[:1] > b"9" and max(map(len, pieces)) <= limit:
            del buf[: end + 1]
            return pieces
        frames: list[bytes] = []
        used = 0
        for piece in pieces:
            frame = piece.lstrip(b"\r\x00")  # separators (CR, NUL after LF) before a frame
            if frame:
                if len(frame) > limit or (0x31 <= frame[0] <= 0x39 and _counted(frame) is not False):
                    break
                frames.append(frame)
            used += len(piece) + 1
        del buf[:used]
        return frames

    def _next(self) -> bytes | None:
        buf = self.buf
        if self._skipping:
            nl = buf.find(b"\n")
            if nl < 0:
                del buf[:]
                return None
            del buf[: nl + 1]
            self._skipping = False
        # Separators between frames: stray LF/CR and the NUL some devices append after LF.
        start = 0
        while start < len(buf) and buf[start] in b"\n\r\x00":
            start += 1
        if start:
            del buf[:start]
        if not buf:
            return None
        counted = _counted(buf)
        if counted is None:
            return None  # "LEN" or "LEN SP" so far: wait for the byte that decides
        if counted:
            digits = buf.index(b" ")
            length = int(bytes(buf[:digits]))
            if length > self.max_frame:
                raise FrameTooLarge(f"octet count {length} exceeds the {self.max_frame}-byte limit")
            if len(buf) < digits + 1 + length:
                return None
            frame = bytes(buf[digits + 1 : digits + 1 + length])
            del buf[: digits + 1 + length]
            return frame
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > self.max_frame:
                frame = bytes(buf[: self.max_frame])
                del buf[:]
                self._skipping = True
                self.truncated += 1
                return frame
            return None
        if nl > self.max_frame:
            frame = bytes(buf[: self.max_frame])
            del buf[: nl + 1]
            self.truncated += 1
            return frame
        frame = bytes(buf[:nl])
        del buf[: nl + 1]
        return frame

    def rest(self) -> bytes:
        """Bytes left when the connection closes (an unterminated last LF frame)."""
        data = bytes(self.buf)
        del self.buf[:]
        return data


def _fits(block: bytes, limit: int) -> bool:
    """True when no line of `block` (LF-terminated lines) is longer than `limit` bytes."""
    n = len(block)
    if n <= limit + 1:
        return True
    pos = 0
    while pos < n:
        # The last LF within `limit` bytes of a line start ends every line that starts before it.
        nl = block.rfind(b"\n", pos, pos + limit + 1)
        if nl < 0:
            return False
        pos = nl + 1
    return True


def _counted(buf: bytes | bytearray) -> bool | None:
    """True when `buf` starts with an octet count ("LEN SP <"), None when it may (too short to tell)."""
    digits = 0
    n = len(buf)
    while digits < n and digits <= 10 and 0x30 <= buf[digits] <= 0x39:
        digits += 1
    if digits == 0 or digits > 10 or buf[0] == 0x30:
        return False
    if digits == n:
        return None
    if buf[digits] != 0x20:
        return False
    if digits + 1 == n:
        return None
    return buf[digits + 1] == 0x3C
