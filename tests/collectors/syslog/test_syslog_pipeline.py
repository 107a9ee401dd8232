"""The ingest pipeline as `govnet run` runs it: parse workers that return canonical bytes, one writer that
numbers, chains and fsyncs, segments sealed and compressed in the background, real TCP and UDP senders,
and a parse worker killed with SIGKILL in the middle of the stream."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from collectors.syslog.formats import load_formats
from collectors.syslog.receiver import Ingest, start_receiver
from logstore.batch import Numbered, number, renumbered
from logstore.record import canonical, new_record, record_leaf
from logstore.store import LogStore, StoreConfig
from tests.support.require import require_cmd

HOST = "127.38.20.1"
SENDER = "127.38.20.2"  # the TCP senders' source address, an inventory device
FORMATS = load_formats()
SENDERS = 4
LINES = 2500  # per TCP sender
UDP_LINES = 300
LINE = (
    "<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, "
    "source-ip=10.1.{s}.{b}, source-port={p}, destination-ip=203.0.113.5, destination-port=445, "
    "time=2024/3/12 10:46:04, source-zone=trust, destination-zone=untrust, rule-name=r{s}_{i}."
)
TAG = re.compile(rb"rule-name=r(\d+)_(\d+)\.")


def _tcp_sender(port: int, s: int) -> None:
    """One connection, the lines in pieces with pauses (so the stream is still arriving at the kill)."""
    data = b"".join(LINE.format(s=s, b=i % 250, p=1024 + i, i=i).encode() + b"\n" for i in range(LINES))
    with socket.create_connection((HOST, port), source_address=(SENDER, 0)) as sock:
        for k in range(0, len(data), 16384):
            sock.sendall(data[k : k + 16384])
            time.sleep(0.002)


def test_worker_killed_mid_stream_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """SIGKILL one of two parse workers while 4 TCP senders and logger over UDP stream: every line is stored
    exactly once, verbatim, in per-connection order, the chain verifies (also from a fresh reader), and
    only a line the killed worker was parsing at that moment may be stored unparsed (flag parse_crash)."""
    require_cmd("logger")
    root = tmp_path / "store"
    # Small segments: several are sealed and compressed in the background during the stream.
    store = LogStore(root, StoreConfig(max_segment_bytes=512 * 1024, compress_in_background=True))
    hooked: list[dict[str, Any]] = []
    store.on_append.append(hooked.extend)
    killed: list[int] = []
    udp_file = tmp_path / "udp.txt"
    udp_file.write_text("".join(f"udp line {i} from logger\n" for i in range(UDP_LINES)))

    async def main() -> dict[str, int]:
        ingest = Ingest(store, FORMATS, {SENDER: "fw-1"}, batch_max=400, parse_workers=2)
        rx = await start_receiver(ingest, HOST, 0, 0)
        pool = ingest.pool
        assert pool is not None and pool.workers == 2
        try:
            senders = [threading.Thread(target=_tcp_sender, args=(rx.tcp_port, s)) for s in range(SENDERS)]
            for t in senders:
                t.start()
            logger = await asyncio.create_subprocess_exec(
                "logger", "--udp", "--server", HOST, "--port", str(rx.udp_port), "--rfc3164", "-t", "app",
                "-f", str(udp_file),
            )  # fmt: skip
            for _ in range(3000):  # kill once part of the stream is durable and the rest still arriving
                if ingest.stats.durable_total >= 1500:
                    break
                await asyncio.sleep(0.01)
            victim = pool.pids()[0]  # a worker this test's receiver started
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            assert await asyncio.wait_for(logger.wait(), 60) == 0
            for t in senders:
                await asyncio.to_thread(t.join, 120)
            want = SENDERS * LINES
            for _ in range(6000):
                lost = (rx.udp_kernel_drops() or 0) + ingest.stats.udp_overflow_total
                if ingest.stats.received_total >= want + UDP_LINES - lost:
                    break
                await asyncio.sleep(0.01)
            await ingest.drain()
            assert victim not in pool.pids() and pool.workers == 2 and pool.restarts >= 1
            return {
                "restarts": pool.restarts, "crashes": pool.crashes, "udp_drops": rx.udp_kernel_drops() or 0,
                "udp_overflow": ingest.stats.udp_overflow_total, "durable": ingest.stats.durable_total,
            }  # fmt: skip
        finally:
            await rx.close()

    try:
        got = asyncio.run(main())
        assert store.verify() == []
        assert len(store.sealed) >= 2  # sealing and background compression happened mid-stream
        recs = [rec for rec, _ in store.iter_records()]
    finally:
        store.close()
    reader = LogStore(root, readonly=True)
    assert reader.verify() == []
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))  # gap-free
    assert len(recs) == got["durable"]
    tcp = [r for r in recs if r["transport"] == "tcp"]
    udp = [r for r in recs if r["transport"] == "udp"]
    # Exactly once and in per-connection order: (sender, index) pairs read from the stored raw bytes.
    order: dict[int, list[int]] = {}
    for rec in tcp:
        raw = base64.b64decode(rec["raw"])
        m = TAG.search(raw)
        assert m is not None, raw
        s, i = int(m.group(1)), int(m.group(2))
        assert raw == LINE.format(s=s, b=i % 250, p=1024 + i, i=i).encode()  # verbatim
        order.setdefault(s, []).append(i)
    assert order == {s: list(range(LINES)) for s in range(SENDERS)}
    # UDP: what the kernel or the queue dropped is counted; everything else is stored once, in order.
    udp_idx = [int(base64.b64decode(r["raw"]).rsplit(b"udp line ", 1)[1].split()[0]) for r in udp]
    assert udp_idx == sorted(set(udp_idx))
    assert len(udp) == UDP_LINES - got["udp_drops"] - got["udp_overflow"] and len(udp) > 0
    # Parsed by the workers (the surviving one and the replacement): only a line the killed worker was
    # in the middle of may be kept raw (a TCP line or a UDP datagram: the worker may die on either).
    unparsed = [r for r in tcp if r["event_type"] != "policy_deny"]
    crashed = [r for r in recs if "parse_crash" in r["flags"]]
    assert all(r["flags"] == ["parse_crash"] for r in unparsed) and len(crashed) == got["crashes"] <= 1
    assert all(r in crashed for r in unparsed)
    parsed = [r for r in tcp if r["event_type"] == "policy_deny"]
    assert all(r["rule"] == TAG.search(base64.b64decode(r["raw"])).group(0)[10:-1].decode() for r in parsed)  # type: ignore[union-attr]
    assert all(r["device"] == "fw-1" and r["src_ip"].startswith("10.1.") for r in parsed)
    # The on_append hooks (security correlation) saw exactly the stored records.
    assert hooked == recs
    assert killed and subprocess.run(["kill", "-0", str(killed[0])], capture_output=True).returncode != 0


class _AuditsOnce(LogStore):
    """A store that, before the first batch the parse workers numbered, appends an audit record (as
    the control channel does when an export runs): the seqs the workers assumed have moved on."""

    audited = False

    def append_batch(self, recs: Any) -> list[int]:
        if not self.audited and any(isinstance(r, Numbered) for r in recs):
            self.audited = True
            self.append(new_record(event_type="audit", action="export", outcome="success", msg="in between"))
        return super().append_batch(recs)


def test_audit_record_between_hand_out_and_commit_is_renumbered(tmp_path: Path) -> None:
    """An audit record appended after the workers numbered two batches (the one being committed and the
    next, already handed out): both are renumbered, seqs stay gap-free, every line is stored once, in
    order, verbatim, and the chain verifies; the batch after them is numbered right from the start."""
    store = _AuditsOnce(tmp_path / "store", StoreConfig())
    lines = [LINE.format(s=1, b=i % 250, p=1024 + i, i=i).encode() for i in range(200)]

    async def main() -> None:
        ingest = Ingest(store, FORMATS, {SENDER: "fw-1"}, batch_max=50, parse_workers=1)
        ingest.start()
        ingest.submit_many(lines, f"{SENDER}:5140", "tcp")  # queued before the writer runs: 4 batches
        await ingest.drain()
        await ingest.close()

    asyncio.run(main())
    assert store.metrics["renumbered_total"] == 100
    recs = [rec for rec, _ in store.iter_records()]
    assert [r["seq"] for r in recs] == list(range(1, 202))
    assert recs[0]["event_type"] == "audit"
    assert [base64.b64decode(r["raw"]) for r in recs[1:]] == lines
    assert all(r["event_type"] == "policy_deny" and r["device"] == "fw-1" for r in recs[1:])
    assert store.verify() == []
    store.close()
    reader = LogStore(tmp_path / "store", readonly=True)
    assert reader.verify() == [] and reader.last_seq == 201


def test_numbered_records_hash_like_records() -> None:
    """A record numbered in a worker (`logstore.batch`) has the bytes and leaf hash of the same record
    serialised whole, for every kind of value a record holds; renumbering a run from its bytes gives
    what numbering the records at the new seqs gives."""
    recs = [
        new_record(recv_ts="2026-03-12T02:46:04.000001Z", device="fw-1", event_type="policy_deny",
                   msg='quote " backslash \\ "seq":null, 中文 \U0001f600 \x00\x1f', src_port=65535,
                   user="", raw="PDE5MD4=", flags=["a", "unknown_source"]),
        new_record(recv_ts="2026-03-12T02:46:04.000001Z", device=None, event_type="store",
                   msg=',"seq":null,'),
    ]  # fmt: skip
    for seq in (1, 9, 10**12):
        run = number([dict(r) for r in recs], seq)
        assert run.first == seq and run.count == len(recs)
        for i, rec in enumerate(recs):
            whole = {**rec, "seq": seq + i, **{k: None for k, v in rec.items() if v == ""}}
            assert run.bodies()[i] == canonical(whole)
            assert run.leaves[32 * i : 32 * i + 32].hex() == record_leaf(whole)
            line = bytes(run.lines[run.starts[i] :]).split(b"\n", 1)[0]
            assert line == b'{"h":"' + b"0" * 64 + b'","r":' + canonical(whole) + b"}"
        again = renumbered(run, seq + 5)
        fresh = number([dict(r) for r in recs], seq + 5)
        assert (again.lines, again.starts, again.leaves, again.terms, again.tally) == (
            fresh.lines,
            fresh.starts,
            fresh.leaves,
            fresh.terms,
            fresh.tally,
        )
