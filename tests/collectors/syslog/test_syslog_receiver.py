"""The receiver against real senders: util-linux logger (TCP octet counting + RFC 5424, UDP + RFC 3164)
and raw sockets (GBK bytes, Hillstone LF+NUL, oversized frames, many concurrent senders)."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from collectors.syslog.formats import load_formats
from collectors.syslog.receiver import Ingest, Receiver, start_receiver
from logstore.store import LogStore
from tests.support.paths import ROOT
from tests.support.require import require_cmd

HOST = "127.38.0.1"
FORMATS = load_formats()


def run(tmp_path: Path, body: Callable[[Receiver], Awaitable[None]], devices: dict[str, str] | None = None,
        max_frame: int = 64 * 1024, parse_workers: int = 0,
        batch_max: int = 500) -> list[dict[str, Any]]:  # fmt: skip
    """Start a receiver on fresh ports, run `body`, stop, return the stored records (store verified)."""
    store = LogStore(tmp_path / "store")

    async def main() -> None:
        ingest = Ingest(store, FORMATS, devices or {}, batch_max=batch_max, parse_workers=parse_workers)
        rx = await start_receiver(ingest, HOST, 0, 0, max_frame=max_frame)
        try:
            await body(rx)
            await ingest.drain()
        finally:
            await rx.close()

    try:
        asyncio.run(main())
        assert store.verify() == []
        return [rec for rec, _ in store.iter_records()]
    finally:
        store.close()


async def logger(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("logger", *args)
    assert await asyncio.wait_for(proc.wait(), 20) == 0


async def wait_for(pred: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def test_logger_tcp_octet_counting_rfc5424(tmp_path: Path) -> None:
    require_cmd("logger")

    async def body(rx: Receiver) -> None:
        await logger("--server", HOST, "--port", str(rx.tcp_port), "--tcp", "--octet-count", "--rfc5424",
                     "-t", "govtest", "-p", "auth.notice", "--sd-id", "ev@32473",
                     "--sd-param", 'user="alice"', "admin alice logged in")  # fmt: skip
        await wait_for(lambda: rx.ingest.stats.received_total >= 1)

    # logger cannot choose its source address; the kernel picks 127.0.0.1 on loopback.
    recs = run(tmp_path, body, devices={HOST: "fw-test", "127.0.0.1": "fw-test"})
    [rec] = recs
    assert rec["transport"] == "tcp" and rec["format"] == "rfc5424"
    assert rec["device"] == "fw-test" and rec["flags"] == []
    assert rec["facility"] == 4 and rec["severity"] == 5 and rec["app"] == "govtest"
    assert rec["user"] == "alice" and rec["msg"].endswith("admin alice logged in")
    assert rec["dev_ts"] and rec["recv_ts"].endswith("Z") and rec["seq"] == 1


def test_logger_udp_rfc3164_unknown_source(tmp_path: Path) -> None:
    require_cmd("logger")

    async def body(rx: Receiver) -> None:
        for i in range(3):
            await logger("--server", HOST, "--port", str(rx.udp_port), "--udp", "--rfc3164", "-t", "fw",
                         f"line {i}")  # fmt: skip
        await wait_for(lambda: rx.ingest.stats.received_total >= 3)

    recs = run(tmp_path, body)
    assert [r["msg"] for r in recs] == ["line 0", "line 1", "line 2"]
    assert all(r["transport"] == "udp" and "unknown_source" in r["flags"] for r in recs)
    assert [r["seq"] for r in recs] == [1, 2, 3]


def _send(port: int, data: bytes, source: str = "127.38.0.2") -> None:
    with socket.create_connection((HOST, port), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(data)


def test_gbk_and_hillstone_nul_over_tcp_lf_framing(tmp_path: Path) -> None:
    gbk = (
        "<134>Mar 12 10:46:04 af fwlog: 日志类型:服务控制或应用控制, 用户:李四, 源IP:10.5.0.9, 系统动作:拒绝"
    ).encode("gbk")
    hill = (
        b"<190>Mar 12 10:46:19 sn Traffic@FLOW: SESSION: 10.3.1.5:1->10.4.0.1:80(TCP), policy 3, session end"
    )

    async def body(rx: Receiver) -> None:
        await asyncio.to_thread(_send, rx.tcp_port, gbk + b"\n" + hill + b"\n\x00" + hill + b"\n\x00")
        await wait_for(lambda: rx.ingest.stats.received_total >= 3)

    recs = run(tmp_path, body, devices={"127.38.0.2": "af-1"})
    assert len(recs) == 3 and all(r["device"] == "af-1" for r in recs)
    assert base64.b64decode(recs[0]["raw"]) == gbk and recs[0]["encoding"] == "gbk"
    assert recs[0]["user"] == "李四" and recs[0]["event_type"] == "policy_deny"
    assert recs[1]["format"] == recs[2]["format"] == "hillstone"
    assert base64.b64decode(recs[2]["raw"]) == hill


def test_oversized_length_prefix_closes_connection(tmp_path: Path) -> None:
    async def body(rx: Receiver) -> None:
        reader, writer = await asyncio.open_connection(HOST, rx.tcp_port)
        writer.write(b"5 <1>ab" + b"999999999 <" + b"x" * 10_000)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # server closed the connection
        writer.close()
        await wait_for(lambda: rx.ingest.stats.oversized_closed_total == 1)

    recs = run(tmp_path, body, max_frame=4096)
    assert base64.b64decode(recs[0]["raw"]) == b"<1>ab"
    assert recs[1]["action"] == "connection_closed" and "exceeds" in recs[1]["msg"]


def test_many_concurrent_senders_nothing_lost(tmp_path: Path) -> None:
    senders, lines = 20, 500

    def sender(k: int) -> None:
        frames = [
            f"<134>1 2026-03-12T10:00:00Z h{k} app - - - sender {k} line {i}".encode() for i in range(lines)
        ]
        data = b"".join(str(len(f)).encode() + b" " + f for f in frames)
        _send(rx_port[0], data)

    rx_port: list[int] = []

    async def body(rx: Receiver) -> None:
        rx_port.append(rx.tcp_port)
        await asyncio.gather(*(asyncio.to_thread(sender, k) for k in range(senders)))
        await wait_for(lambda: rx.ingest.stats.received_total >= senders * lines, 30)

    recs = run(tmp_path, body)
    assert len(recs) == senders * lines
    assert [r["seq"] for r in recs] == list(range(1, senders * lines + 1))
    per_sender: dict[str, list[int]] = {}
    for r in recs:
        _, k, _, i = r["msg"].split()
        per_sender.setdefault(k, []).append(int(i))
    assert all(v == list(range(lines)) for v in per_sender.values())  # per-connection order kept


def test_parse_workers_give_the_same_records_in_order(tmp_path: Path) -> None:
    """Worker processes parse while the writer commits: same records as parsing in place, in order."""
    from collectors.syslog.parse import parse_frame
    from logstore.record import parse_iso

    # (LF framing: the Hillstone examples' trailing LF NUL would end the frame early)
    examples = [ex["message"].encode().replace(b"\n", b" ") for fmt in FORMATS for ex in fmt.spec.examples]
    extra = ["<13>Mar 12 10:00:00 h app: 中文 GBK".encode("gbk"), b"no header at all", b"<999>x", b"1bad"]
    frames = [(examples + extra)[i % (len(examples) + len(extra))] + b" n=%d" % i for i in range(3000)]

    async def body(rx: Receiver) -> None:
        assert rx.ingest.pool is not None and rx.ingest.pool.workers == 2
        await asyncio.to_thread(_send, rx.tcp_port, b"".join(f + b"\n" for f in frames))
        await wait_for(lambda: rx.ingest.stats.received_total >= len(frames), 30)
        assert not rx.ingest.pool.broken

    recs = run(tmp_path, body, devices={"127.38.0.2": "fw-1"}, parse_workers=2, batch_max=97)
    assert [r["seq"] for r in recs] == list(range(1, len(frames) + 1))
    assert [base64.b64decode(r["raw"]) for r in recs] == frames
    for rec in recs:
        raw, ts = base64.b64decode(rec["raw"]), parse_iso(rec["recv_ts"])
        again = parse_frame(raw, ts, rec["source"], "tcp", FORMATS, {"127.38.0.2": "fw-1"})
        again.update(seq=rec["seq"], **{k: None for k, v in again.items() if v == ""})
        assert again == rec
    assert {r["device"] for r in recs} == {"fw-1"}


def test_dead_parse_worker_loses_nothing(tmp_path: Path) -> None:
    """A parse worker that dies is not a lost line: it is replaced and its frames are parsed again."""
    frames = [
        f"<190>Mar 12 2024 10:46:04 USG %%01POLICY/6/POLICYDENY(l):source-ip=10.0.{i % 250}.1.".encode()
        for i in range(600)
    ]

    async def body(rx: Receiver) -> None:
        pool = rx.ingest.pool
        assert pool is not None
        await asyncio.to_thread(_send, rx.tcp_port, b"".join(f + b"\n" for f in frames[:300]))
        await wait_for(lambda: rx.ingest.stats.durable_total >= 300)
        for pid in pool.pids():  # the workers this test's receiver started
            os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(_send, rx.tcp_port, b"".join(f + b"\n" for f in frames[300:]))
        await wait_for(lambda: rx.ingest.stats.received_total >= len(frames))
        await rx.ingest.drain()
        assert pool.restarts >= 1 and pool.workers == 1

    recs = run(tmp_path, body, parse_workers=1, batch_max=50)
    assert [r["seq"] for r in recs] == list(range(1, len(frames) + 1))
    assert [base64.b64decode(r["raw"]) for r in recs] == frames
    bad = [r for r in recs if not (r["event_type"] == "policy_deny" and r["src_ip"])]
    assert not bad, [(r["seq"], r["event_type"], r["src_ip"], r["format"], r["flags"]) for r in bad[:3]] + [
        len(bad)
    ]


def test_govnet_syslog_command_end_to_end(tmp_path: Path) -> None:
    """`govnet syslog` as a process: logger sends, SIGTERM commits, the store holds the line."""
    require_cmd("logger")
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    store_dir = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-m", "govnet", "syslog", "--store", str(store_dir), "--listen", HOST,
         "--tcp-port", str(port), "--udp-port", str(port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "syslog receiver on" in proc.stdout.readline()
        subprocess.run(["logger", "--server", HOST, "--port", str(port), "--tcp", "--octet-count", "e2e tcp"],
                       check=True, timeout=20)  # fmt: skip
        subprocess.run(["logger", "--server", HOST, "--port", str(port), "--udp", "--rfc3164", "e2e udp"],
                       check=True, timeout=20)  # fmt: skip
        time.sleep(0.5)  # let the UDP datagram be read before SIGTERM
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    store = LogStore(store_dir)
    try:
        msgs = sorted(rec["msg"] for rec, _ in store.iter_records())
        assert msgs == ["e2e tcp", "e2e udp"]
        assert store.verify() == []
    finally:
        store.close()


def test_sources_mapped_through_a_real_inventory(tmp_path: Path) -> None:
    """Source address -> device via inventory.load.load_inventory (the shipped minimal example)."""
    from collectors.syslog.receiver import device_map_from_inventory
    from inventory.load import load_inventory

    text = (ROOT / "examples" / "minimal.yaml").read_text(encoding="utf-8")
    inv_file = tmp_path / "inventory.yaml"
    inv_file.write_text(text.replace("10.255.0.1\n", "127.38.0.2\n"), encoding="utf-8")
    devices = device_map_from_inventory(load_inventory(inv_file))
    assert devices["127.38.0.2"] == "core-1"

    async def body(rx: Receiver) -> None:
        await asyncio.to_thread(_send, rx.tcp_port, b"<13>Mar 12 10:00:00 core-1 a: from a known device\n")
        await asyncio.to_thread(
            _send, rx.tcp_port, b"<13>Mar 12 10:00:00 x a: from elsewhere\n", "127.38.0.3"
        )
        await wait_for(lambda: rx.ingest.stats.received_total >= 2)

    recs = sorted(run(tmp_path, body, devices=devices), key=lambda r: r["msg"])
    assert (
        recs[0]["msg"] == "from a known device" and recs[0]["device"] == "core-1" and recs[0]["flags"] == []
    )
    assert recs[1]["device"] is None and recs[1]["flags"] == ["unknown_source"]
