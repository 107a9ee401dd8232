"""The slow-frame timer (limits.frame_timeout) cuts a frame that never completes, never a steady stream
whose reads happen to end mid-line (that cut a busy sender every 60 s and lost its in-flight lines)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

from collectors.syslog.limits import Limits
from collectors.syslog.receiver import Ingest, start_receiver
from logstore.store import LogStore

HOST = "127.48.0.1"  # this file's loopback range


def _run(tmp_path: Path, payload: list[bytes], pause: float) -> tuple[int, dict[str, int], list[Exception]]:
    async def main() -> tuple[int, dict[str, int], list[Exception]]:
        store = LogStore(tmp_path)
        ingest = Ingest(store, [], {})
        rx = await start_receiver(ingest, HOST, 0, None, limits=Limits(frame_timeout=1.0))
        errors: list[Exception] = []

        def send() -> None:
            try:
                with socket.create_connection((HOST, rx.tcp_port), timeout=10) as sock:
                    for chunk in payload:
                        sock.sendall(chunk)
                        time.sleep(pause)
            except OSError as exc:
                errors.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        await asyncio.to_thread(sender.join)
        await asyncio.sleep(0.3)
        await ingest.drain()
        closed = dict(ingest.stats.closed)
        await rx.close()
        store.close()
        return ingest.stats.durable_total, closed, errors

    return asyncio.run(main())


def test_a_steady_stream_ending_reads_mid_line_is_never_cut(tmp_path: Path) -> None:
    # 3 s of writes, each completing the previous line and starting the next: a partial frame is
    # always pending, yet frames complete all the time.
    chunks = [b"tial\nline %d par" % i for i in range(150)]
    stored, closed, errors = _run(tmp_path, chunks, 0.02)
    assert closed == {} and errors == []
    assert stored == 151  # 150 completed lines and the last partial one, kept at the close


def test_a_frame_that_never_completes_is_still_cut(tmp_path: Path) -> None:
    chunks = [b"complete line\nslow"] + [b"." for _ in range(40)]  # 2 s of dribbling one frame
    stored, closed, _errors = _run(tmp_path, chunks, 0.05)
    assert closed == {"frame_timeout": 1}
    assert stored == 1  # the complete line (the cut is the receiver's own connection_closed record)
