"""Stopping a process a test started: a signal, a bounded wait, then SIGKILL (always by its own PID)."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
    """Send `sig` to `proc` if it still runs, wait up to `timeout` s, then kill it; its exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode
