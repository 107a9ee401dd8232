"""RFC 6587 TCP framing, sans I/O: octet counting ("LEN SP MSG") and LF framing, with bounded memory.

A frame is octet-counted only when it starts `LEN SP <`: an octet-counted frame carries a syslog message,
which begins with its PRI. Anything else is LF-framed, so a device line that begins with digits and a
space (StoneOS body-only records such as `48088401 IPS@IPS: ...`) is one line, not a length.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
        """Append received bytes; return the frames they complete.

        After an oversized or malformed length prefix, `error` is set (frames before it are still
        returned) and the connection must be closed: there is no way to resynchronise.
        """
        if self.error is not None:
            return []
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
