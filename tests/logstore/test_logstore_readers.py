"""One writer, many readers, with real processes: `govnet syslog` receives a fast TCP stream while
other processes export (10x), verify the store (10x) and search it; a second writer refuses to start
and names the first one's PID. Afterwards the chain verifies, sequence numbers are gap-free and
unique, every line sent is stored once, every export verifies and has its audit record."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logstore.control import AuditUnavailable, ControlServer, append_audit
from logstore.lock import StoreLocked
from logstore.record import new_record
from logstore.store import LogStore, ReadOnlyStore
from tests.support.paths import GOVNET as GOVNET_BIN

GOVNET = [str(GOVNET_BIN)]
HOST = "127.39.0.1"
RATE = int(os.environ.get("GOVNET_TEST_SYSLOG_RATE", "10000"))  # lines/s the sender aims at
MIN_SECONDS = 8.0
# The stream stops after this long: every verification reads the whole store, so on a loaded machine
# slower readers meant a bigger store meant slower readers (7.7 min at load 4, 15-20 at load 13-17).
MAX_SECONDS = 45.0
KEY_ENV = {"GOVNET_TEST_EXPORT_KEY": "k" * 32}


def line(i: int) -> bytes:
    # A real Huawei USG policy log shape (parsed by collectors/syslog/formats/huawei_usg.yaml).
    return (
        b"<190>Mar 12 2024 10:46:04 USG6600 %%%%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, "
        b"source-ip=10.1.%d.%d, source-port=%d, destination-ip=203.0.113.5, destination-port=445, "
        b"time=2024/3/12 10:46:04, source-zone=trust, destination-zone=untrust, rule-name=deny_smb n%d.\n"
        % (i // 250 % 250, i % 250, 1024 + i % 60000, i)
    )


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **KEY_ENV}
    return subprocess.run([*GOVNET, *args], capture_output=True, text=True, timeout=timeout, env=env)


class Sender(threading.Thread):
    """Streams numbered lines over one TCP connection at RATE lines/s until told to stop."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sent = 0
        self.stop = threading.Event()
        self.started = 0.0
        self.elapsed = 0.0

    def run(self) -> None:
        tick = 0.02
        per_tick = max(1, int(RATE * tick))
        with socket.create_connection((HOST, self.port), timeout=60) as sock:
            self.started = time.monotonic()
            due = self.started
            limit = int(RATE * MAX_SECONDS)
            while not self.stop.is_set() and self.sent < limit:
                sock.sendall(b"".join(line(self.sent + k) for k in range(per_tick)))
                self.sent += per_tick
                due += tick
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.elapsed = time.monotonic() - self.started
            self.stop.wait()  # the connection stays open until the test is done with the readers


@pytest.mark.timeout(1200)
def test_exports_and_verifications_beside_a_streaming_writer(tmp_path: Path) -> None:
    store = tmp_path / "store"
    rx = subprocess.Popen(
        [
            *GOVNET,
            "syslog",
            "--store",
            str(store),
            "--listen",
            HOST,
            "--tcp-port",
            "0",
            "--udp-port",
            "0",
            "--segment-bytes",
            str(4 * 1024 * 1024),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rx.stdout is not None
        banner = rx.stdout.readline()
        port = int(re.search(r"tcp (\d+)", banner).group(1))  # type: ignore[union-attr]
        sender = Sender(port)
        sender.start()
        time.sleep(1.0)

        # A second writer on the same store refuses to start and names the holder.
        second = run("syslog", "--store", str(store), "--listen", HOST, "--tcp-port", "0", "--udp-port", "0",
                     timeout=60)  # fmt: skip
        assert second.returncode == 2
        assert f"process {rx.pid}" in second.stderr and "already open for writing" in second.stderr

        def export(n: int) -> tuple[Path, subprocess.CompletedProcess[str]]:
            # The last 20 seconds, as an auditor exports a recent range while the receiver runs: the
            # range ends in the segment being written (and starts in a sealed one once there are some).
            out = tmp_path / f"export-{n}"
            now = time.time()
            span = (iso(now - 20.0), iso(now + 3600.0))  # the receiver may lag up to its 50k-frame queue
            fmt = "csv" if n % 2 else "ndjson"
            key = "env:GOVNET_TEST_EXPORT_KEY"
            res = run("export-logs", "--store", str(store), "--from", span[0], "--to", span[1],
                      "--format", fmt, "--out", str(out), "--hmac-key", key)  # fmt: skip
            return out, res

        def verify(_n: int) -> subprocess.CompletedProcess[str]:
            return run("verify-store", "--store", str(store))

        with ThreadPoolExecutor(3) as pool:
            exports = pool.map(export, range(10))
            verifies = pool.map(verify, range(10))
            exports_done, verifies_done = list(exports), list(verifies)
        searched = run("search-logs", "--store", str(store), "--ip", "10.1.0.7", "--limit", "3")
        while time.monotonic() - sender.started < MIN_SECONDS:
            time.sleep(0.2)
        sender.stop.set()
        sender.join(60)
        time.sleep(0.5)
        rx.send_signal(signal.SIGTERM)
        assert rx.wait(120) == 0, rx.stderr.read() if rx.stderr else ""
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait(10)

    for res in verifies_done:
        assert res.returncode == 0, res.stdout + res.stderr
        assert res.stdout.startswith("OK seq 1..")
    for out, res in exports_done:
        assert res.returncode == 0, res.stderr
        assert re.match(r"exported [1-9]\d* records", res.stdout), res.stdout
        check = run("verify-export", str(out), "--hmac-key", "env:GOVNET_TEST_EXPORT_KEY")
        assert check.returncode == 0 and check.stdout.startswith("OK "), check.stdout
    assert searched.returncode == 0, searched.stderr
    assert '"src_ip": "10.1.0.7"' in searched.stdout

    final = LogStore(store)  # the receiver is gone: this test is now the writer
    try:
        assert final.verify() == []
        recs = [rec for rec, _ in final.iter_records()]
        seqs = [r["seq"] for r in recs]
        assert seqs == list(range(1, len(seqs) + 1))  # gap-free and unique
        lines = [base64.b64decode(r["raw"]) for r in recs if r["event_type"] not in ("store", "audit")]
        assert lines == [line(i).rstrip(b"\n") for i in range(sender.sent)]  # all of them, in order, once
        audits = [r for r in recs if r["event_type"] == "audit"]
        assert sorted(r["action"] for r in audits) == ["export"] * 10 + ["search"]
        assert all(any(f.startswith("peer_uid:") for f in r["flags"]) for r in audits)  # via the writer
        assert not [r for r in recs if r["action"] == "unclean_shutdown"]  # no reader ever opened it to write
    finally:
        final.close()
    rate = sender.sent / sender.elapsed
    print(f"\n{sender.sent} lines in {sender.elapsed:.1f} s = {rate:.0f} lines/s over TCP (target {RATE}); "
          f"10 exports, 10 store verifications, 1 search from other processes")  # fmt: skip


def test_a_reader_never_writes_and_audits_through_the_writer(tmp_path: Path) -> None:
    """In one process, for the details: the lock names the holder, a reader leaves every byte alone
    (even a half-written line at the tail), and its audit record goes through the writer's socket."""
    writer = LogStore(tmp_path)
    writer.append_batch([new_record(msg=f"line {i}") for i in range(10)])
    with pytest.raises(StoreLocked) as err:
        LogStore(tmp_path)
    assert err.value.pid == os.getpid() and f"process {os.getpid()}" in str(err.value)
    active = tmp_path / "segments" / writer.active.file
    with active.open("ab") as fh:  # a write in progress, as a reader may catch it
        fh.write(b'{"h":"00')
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    reader = LogStore(tmp_path, readonly=True)
    assert reader.last_seq == 10 and reader.verify() == []
    assert [r["seq"] for r, _ in reader.iter_records()] == list(range(1, 11))
    with pytest.raises(ReadOnlyStore):
        reader.append(new_record(msg="nope"))
    with pytest.raises(AuditUnavailable):  # no writer serving its socket: no audit, no action
        append_audit(reader, {"action": "search", "user": "auditor"})
    assert {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    with active.open("r+b") as fh:  # the write completes (the writer would truncate a torn tail)
        fh.truncate(writer.active.bytes)
    control = ControlServer(writer)
    control.start()
    try:
        seq = append_audit(reader, {"action": "search", "user": "auditor", "msg": "ip=10.0.0.1"})
        with pytest.raises(AuditUnavailable, match="may not be set"):
            append_audit(reader, {"action": "x", "event_type": "policy_deny"})  # only audit records pass
    finally:
        control.close()
    assert seq == 11
    reader.refresh()
    rec = next(r for r, _ in reader.iter_records() if r["seq"] == 11)
    assert (rec["event_type"], rec["user"], rec["action"]) == ("audit", "auditor", "search")
    writer.close()
    assert not (tmp_path / "control.sock").exists()
