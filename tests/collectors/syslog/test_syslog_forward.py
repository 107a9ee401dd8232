"""Forwarding durable frames to an external platform: a private rsyslogd (imtcp -> file) is the platform."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

from collectors.syslog.formats import load_formats
from collectors.syslog.forward import Forwarder
from collectors.syslog.receiver import Ingest, start_receiver
from logstore.store import LogStore
from tests.support.require import require

HOST = "127.38.0.1"
CONF = """
global(workDirectory="{work}")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\\n")
input(type="imtcp" address="{host}" port="{port}" ruleset="out")
ruleset(name="out") {{ action(type="omfile" file="{out}" template="raw") }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_rsyslogd(work: Path, port: int) -> subprocess.Popen[bytes]:
    rsyslogd = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    require(rsyslogd is not None, "executable 'rsyslogd' (run ./scripts/system-deps.sh as root)")
    assert rsyslogd is not None
    conf = work / "rsyslog.conf"
    conf.write_text(CONF.format(work=work, host=HOST, port=port, out=work / "out.log"))
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(work / "pid")])
    for _ in range(200):
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("rsyslogd did not start listening")


def test_forward_survives_platform_starting_late(tmp_path: Path) -> None:
    work = tmp_path / "rsyslog"
    work.mkdir()
    port = free_port()
    frames = [b"<134>1 2026-03-12T10:00:00Z fw app - - - forwarded %d" % i for i in range(300)]
    frames.append("<134>Mar 12 10:46:04 af fwlog: 日志类型:IPS防护日志, 系统动作:阻断".encode("gbk"))
    store = LogStore(tmp_path / "store")
    rsyslog: list[subprocess.Popen[bytes]] = []

    async def main() -> None:
        fwd = Forwarder(HOST, port, max_backoff=0.5)
        fwd.start()
        ingest = Ingest(store, load_formats(), {}, forward=fwd.push)
        rx = await start_receiver(ingest, HOST, 0, None)
        try:
            _r, writer = await asyncio.open_connection(HOST, rx.tcp_port)
            writer.write(b"".join(b"%d %s" % (len(f), f) for f in frames))
            await writer.drain()
            writer.close()
            for _ in range(500):
                if ingest.stats.durable_total >= len(frames):
                    break
                await asyncio.sleep(0.02)
            assert fwd.stats.forwarded_total == 0  # the platform is down: nothing forwarded yet
            rsyslog.append(await asyncio.to_thread(start_rsyslogd, work, port))
            async with asyncio.timeout(30):
                await fwd.flush()
            assert fwd.stats.forwarded_total == len(frames) and fwd.stats.dropped_total == 0
        finally:
            await rx.close()
            await fwd.close()

    try:
        asyncio.run(main())
        out = work / "out.log"
        for _ in range(200):  # rsyslog writes asynchronously
            if out.exists() and out.read_bytes().count(b"\n") >= len(frames):
                break
            time.sleep(0.05)
        lines = out.read_bytes().splitlines()
        assert lines == frames  # same bytes, same order (GBK included)
        assert len([r for r, _ in store.iter_records()]) == len(frames)
    finally:
        store.close()
        for proc in rsyslog:
            proc.terminate()
            proc.wait(10)


def test_forward_queue_is_bounded_and_drops_are_counted() -> None:
    async def main() -> None:
        fwd = Forwarder(HOST, free_port(), max_queue=100)  # nobody listens: nothing can be sent
        fwd.push([b"x %d" % i for i in range(250)])
        assert fwd.stats.dropped_total == 150 and len(fwd._queue) == 100
        assert fwd._queue[0] == b"x 150"  # the oldest were dropped

    asyncio.run(main())
