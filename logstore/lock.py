"""One writer per store: an exclusive `flock` on `<store>/LOCK` that names its holder's PID."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = "LOCK"


class StoreLocked(RuntimeError):
    """Another process holds the store's writer lock; `pid` is the holder (None when not yet written)."""

    def __init__(self, root: Path, pid: int | None) -> None:
        who = f"process {pid}" if pid is not None else "another process (PID not yet recorded)"
        super().__init__(
            f"log store {root} is already open for writing by {who}; only one writer may run per store "
            "(readers such as export-logs, verify-store and search-logs need no lock)"
        )
        self.root, self.pid = root, pid


class WriterLock:
    """Held for the whole life of a writer; the kernel releases it when the process dies (kill -9 too)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise StoreLocked naming the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(self.root, holder_pid(self.root)) from None
        # The PID is written after the lock is held, so a reader of the file can trust it only
        # while the lock is held: exactly when StoreLocked reports it.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Give the lock back (the PID file stays; it means nothing without the lock)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder_pid(root: Path) -> int | None:
    """The PID recorded by the current lock holder, if readable."""
    try:
        text = (Path(root) / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def try_lock(root: Path) -> WriterLock | None:
    """The writer lock if nobody holds it, else None (for commands that write only when alone)."""
    lock = WriterLock(root)
    try:
        lock.acquire()
    except StoreLocked:
        return None
    return lock
