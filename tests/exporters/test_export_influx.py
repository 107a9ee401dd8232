"""Influx export through the durable spool against a REAL VictoriaMetrics (its InfluxDB v2 write API).

Covers: a normal write; a TSDB outage (every point written meanwhile arrives once); the spool cap
(dropped_total equals the points missing at the TSDB); kill -9 of a writer process mid-stream.
A stub HTTP server stands in for the status codes VictoriaMetrics never returns (429, 503, 400).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from core.samples import Sample, labels_of
from exporters.influx import InfluxClientSender, InfluxWriter, Outcome, classify_status, line_of
from exporters.spool import Spool
from tests.support.govnet_run import wait_for
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.require import require_cmd

HOST = "127.23.0.2"


class VictoriaMetrics:
    """A real victoria-metrics process with its own data dir, restartable on the same port."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port(HOST)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "victoria-metrics",
                f"-storageDataPath={self.data}",
                f"-httpListenAddr={HOST}:{self.port}",
                "-search.latencyOffset=0s",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._healthy, 20, "victoria-metrics to start")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def export(self, name: str) -> dict[float, list[float]]:
        """timestamp (ms) -> values stored, for series `<name>_value` (all label sets)."""
        urllib.request.urlopen(self.url + "/internal/force_flush", timeout=10).close()
        body = urllib.parse.urlencode({"match[]": f"{name}_value", "start": "0"}).encode()
        with urllib.request.urlopen(self.url + "/api/v1/export", data=body, timeout=10) as r:
            out: dict[float, list[float]] = {}
            for line in r.read().decode().splitlines():
                row = json.loads(line)
                for ts, v in zip(row["timestamps"], row["values"], strict=True):
                    out.setdefault(ts, []).append(v)
            return out


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    require_cmd("victoria-metrics")
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def points(name: str, start: int, n: int, t0_ms: int) -> list[Sample]:
    """n samples with value = sequence number and 1 ms apart timestamps."""
    return [
        Sample(
            name,
            labels_of(device="r1", site="ncc", role="core_switch", vendor="huawei"),
            float(i),
            (t0_ms + i) / 1000,
        )
        for i in range(start, start + n)
    ]


def make_writer(url: str, spool_dir: Path, max_bytes: int = 1 << 20, batch: int = 100) -> InfluxWriter:
    spool = Spool(spool_dir, max_bytes=max_bytes, segment_bytes=max(4096, max_bytes // 16))
    sender = InfluxClientSender(url, "govnet", "govnet", "test-token", "ms", timeout_s=2.0)
    return InfluxWriter(
        spool, sender, batch_size=batch, flush_interval=0.05, backoff_initial=0.05, backoff_max=0.3
    )


def now_ms() -> int:
    return int(time.time() * 1000) - 3_600_000  # an hour ago: inside retention, clear of "now"


def test_line_protocol_escapes_and_flattens_untrusted_text() -> None:
    s = Sample("govnet_if_oper_up", (("device", "r 1"), ("ifalias", "a,b=c\nevil value=9 1")), 1.0, 1.5)
    line = line_of(s, "ms")
    assert line == rb"govnet_if_oper_up,device=r\ 1,ifalias=a\,b\=c\ evil\ value\=9\ 1 value=1.0 1500"
    assert line_of(Sample("x", (), float("nan"), 1.0)) is None
    assert classify_status(204) is Outcome.OK
    assert [classify_status(c) for c in (429, 500, 503, None)] == [Outcome.RETRY] * 4
    assert [classify_status(c) for c in (400, 401, 404, 413)] == [Outcome.REJECT] * 4


def test_normal_write_arrives(vm: VictoriaMetrics, tmp_path: Path) -> None:
    writer = make_writer(vm.url, tmp_path / "spool")
    writer.start()
    t0 = now_ms()
    try:
        writer.publish("r1", points("govnet_t_normal", 0, 250, t0))
        wait_for(lambda: writer.written == 250, 20, "250 points written")
    finally:
        writer.stop()
    got = vm.export("govnet_t_normal")
    assert sorted(got) == [t0 + i for i in range(250)]
    assert all(got[t0 + i] == [float(i)] for i in range(250))
    assert writer.dropped == 0 and writer.spool.points == 0


def test_outage_every_point_arrives_once(vm: VictoriaMetrics, tmp_path: Path) -> None:
    writer = make_writer(vm.url, tmp_path / "spool")
    writer.start()
    t0 = now_ms()
    try:
        writer.publish("r1", points("govnet_t_outage", 0, 100, t0))
        wait_for(lambda: writer.written == 100, 20, "first points written")
        vm.stop()
        for i in range(100, 1100, 100):
            writer.publish("r1", points("govnet_t_outage", i, 100, t0))
            time.sleep(0.05)
        wait_for(
            lambda: writer.write_errors >= 2 and writer.spool.points == 1000, 20, "retries during outage"
        )
        vm.start()
        wait_for(lambda: writer.written == 1100, 30, "spool drained after recovery")
    finally:
        writer.stop()
    got = vm.export("govnet_t_outage")
    assert sorted(got) == [t0 + i for i in range(1100)]
    assert all(v == [float(ts - t0)] for ts, v in got.items())  # exactly once, the right value
    assert writer.dropped == 0


def test_spool_cap_drops_are_counted_exactly(vm: VictoriaMetrics, tmp_path: Path) -> None:
    writer = make_writer(vm.url, tmp_path / "spool", max_bytes=40_000, batch=50)
    writer.start()
    t0 = now_ms()
    total = 3000
    try:
        vm.stop()
        for i in range(0, total, 50):
            writer.publish("r1", points("govnet_t_cap", i, 50, t0))
            writer.flush()
        assert writer.spool.bytes <= 40_000
        assert writer.dropped > 0
        vm.start()
        wait_for(lambda: writer.spool.points == 0 and writer.written + writer.dropped == total, 30, "drain")
    finally:
        writer.stop()
    got = vm.export("govnet_t_cap")
    missing = total - len(got)
    assert missing == writer.dropped, (missing, writer.dropped)
    assert all(len(v) == 1 for v in got.values())
    # Oldest dropped: what arrived is the newest run of points.
    assert sorted(got) == [t0 + i for i in range(total - len(got), total)]
    dropped_metric = {s.metric: s.value for s in writer.internal_samples()}["govnet_influx_dropped_total"]
    assert dropped_metric == missing


WRITER = r"""
import sys, time
from pathlib import Path
from exporters.influx import InfluxClientSender, InfluxWriter
from exporters.spool import Spool
from core.samples import Sample, labels_of

url, spool_dir, mode, t0 = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
spool = Spool(spool_dir, max_bytes=1 << 22, segment_bytes=8192)
writer = InfluxWriter(spool, InfluxClientSender(url, "o", "b", "t", "ms", 2.0), batch_size=50,
                      flush_interval=10.0, backoff_initial=0.05, backoff_max=0.3)
writer.start()
labels = labels_of(device="r1", site="ncc", role="core_switch", vendor="huawei")
if mode == "write":
    i = 0
    while True:
        batch = [Sample("govnet_t_kill", labels, float(j), (t0 + j) / 1000) for j in range(i, i + 50)]
        writer.publish("r1", batch)
        writer.flush()  # returns after fsync: everything up to i+49 is durable now
        i += 50
        print(i - 1, writer.written, flush=True)
        time.sleep(0.002)
else:
    while writer.spool.points_on_disk():
        time.sleep(0.05)
    writer.stop()
    print("drained", writer.written, flush=True)
"""


def test_kill_9_mid_stream_loses_nothing_spooled(vm: VictoriaMetrics, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    spool_dir = tmp_path / "spool"
    t0 = now_ms()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), vm.url, str(spool_dir), "write", str(t0)],
        stdout=subprocess.PIPE,
        env=env,
    )
    last_spooled = -1
    written_before_kill = 0
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            last_spooled, written_before_kill = (int(x) for x in raw.split())
            if last_spooled >= 4000 and written_before_kill > 0:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert last_spooled >= 4000 and written_before_kill > 0
    drain = subprocess.run(
        [sys.executable, str(script), vm.url, str(spool_dir), "drain", str(t0)],
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert drain.stdout.startswith(b"drained")
    got = vm.export("govnet_t_kill")
    # Nothing that was durable in the spool is lost.
    assert set(range(last_spooled + 1)) <= {int(ts - t0) for ts in got}
    # The ack position survived the kill: at most the one batch in flight at the kill was sent twice.
    dup = Counter({ts: len(v) - 1 for ts, v in got.items() if len(v) > 1})
    assert sum(dup.values()) <= 50, sum(dup.values())
    print(f"kill -9 after {last_spooled + 1} spooled points; duplicates at the TSDB: {sum(dup.values())}")


class StubInflux(BaseHTTPRequestHandler):
    """Answers /api/v2/write with a scripted sequence of status codes and records each body."""

    script: ClassVar[list[int]] = []
    bodies: ClassVar[list[tuple[int, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.script.pop(0) if self.script else 204
        self.bodies.append((status, body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_retry_on_5xx_and_429_skip_on_4xx_in_order(tmp_path: Path) -> None:
    StubInflux.script = [503, 429, 204, 400, 500, 204]
    StubInflux.bodies = []
    server = ThreadingHTTPServer((HOST, 0), StubInflux)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    writer = make_writer(f"http://{HOST}:{server.server_address[1]}", tmp_path / "spool", batch=10)
    t0 = now_ms()
    try:
        for i in range(0, 40, 10):  # four batches of ten
            writer.publish("r1", points("govnet_t_stub", i, 10, t0))
            writer.flush()
        writer.start()
        wait_for(lambda: writer.spool.points == 0, 20, "stub drained")
    finally:
        writer.stop()
        server.shutdown()
        server.server_close()
    first_values = [float(b.split(b"\n")[0].split(b" ")[1].split(b"=")[1]) for _, b in StubInflux.bodies]
    statuses = [s for s, _ in StubInflux.bodies]
    assert statuses == [503, 429, 204, 400, 500, 204, 204]
    # batch 0 tried three times, batch 1 rejected once and skipped, then batches 2 and 3 in order.
    assert first_values == [0.0, 0.0, 0.0, 10.0, 20.0, 20.0, 30.0]
    assert writer.written == 30 and writer.rejected == 10 and writer.write_errors == 3
    assert writer.dropped == 0
