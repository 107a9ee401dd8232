"""kill -9 during TCP ingestion: every line reported durable is present after restart, the chain
verifies, and the crash is recorded as an explicit event."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from logstore.store import LogStore

HOST = "127.38.0.1"
LINES = 100_000

# The receiver runs in its own process so it can be killed for real; it reports after each fsync.
CHILD = r"""
import asyncio, sys
from pathlib import Path
from collectors.syslog.formats import load_formats
from collectors.syslog.receiver import Ingest, start_receiver
from logstore.store import LogStore

async def main():
    store = LogStore(Path(sys.argv[1]))
    ingest = Ingest(store, load_formats(), {}, batch_max=2000,
                    on_durable=lambda n, seq: print(f"durable {n} {seq}", flush=True))
    rx = await start_receiver(ingest, sys.argv[2], 0, None)
    print(f"port {rx.tcp_port}", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_kill9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store_dir), HOST], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        frames = b"".join(
            b"<134>Mar 12 10:00:00 fw1 fwlog: line %d policy deny src 10.0.0.%d\n" % (i, i % 250)
            for i in range(LINES)
        )
        sent_error: list[BaseException] = []

        def send() -> None:
            try:
                with socket.create_connection((HOST, port), timeout=30) as sock:
                    sock.sendall(frames)
            except OSError as exc:  # the receiver dies under our feet: expected
                sent_error.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        durable = 0
        for line in proc.stdout:
            durable = int(line.split()[1])
            if durable >= LINES // 3:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # Read whatever acknowledgements the child printed before dying.
        for line in proc.stdout:
            durable = max(durable, int(line.split()[1]))
        sender.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert LINES // 3 <= durable < LINES, "kill landed outside the ingestion window"
    store = LogStore(store_dir)
    try:
        assert store.verify() == []
        recs = [rec for rec, _ in store.iter_records()]
        lines = [base64.b64decode(r["raw"]) for r in recs if r["event_type"] != "store"]
        assert len(lines) >= durable  # nothing acknowledged is missing
        for i, raw in enumerate(lines):  # and what is there is the exact prefix of what was sent
            assert raw.split(b"line ", 1)[1].split(b" ", 1)[0] == str(i).encode()
        assert recs[-1]["event_type"] == "store" and recs[-1]["action"] == "unclean_shutdown"
        assert recs[-1]["seq"] == len(recs)
    finally:
        store.close()
    print(f"kill -9 after {durable} durable lines; {len(lines)} present after restart")
