"""Loaded by every Python process of a `govnet run` started by bench.node_memory (on PYTHONPATH).

With GOVNET_MEMPROBE=DIR set: tracemalloc from the first import (GOVNET_MEMPROBE_FRAMES frames per
allocation), and SIGUSR2 writes a snapshot to DIR/<pid>.snap; with GOVNET_MEMPROBE_ONLY=TEXT only in
the processes whose command line contains TEXT (tracing slows allocation: trace one side at a time).
Nothing happens without GOVNET_MEMPROBE.
"""

import os
import sys

_DIR = os.environ.get("GOVNET_MEMPROBE")
if _DIR and os.environ.get("GOVNET_MEMPROBE_ONLY", "") in " ".join(sys.orig_argv):
    import signal
    import tracemalloc

    tracemalloc.start(int(os.environ.get("GOVNET_MEMPROBE_FRAMES", "10")))

    def _dump(signum: int, frame: object) -> None:
        path = os.path.join(_DIR, f"{os.getpid()}.snap")
        tracemalloc.take_snapshot().dump(path + ".tmp")
        os.replace(path + ".tmp", path)

    signal.signal(signal.SIGUSR2, _dump)
