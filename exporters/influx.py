"""Write samples to InfluxDB (v2 write API, line protocol) through the durable spool.

Mapping: measurement = the full metric name (`govnet_if_in_octets_total`), tags = the labels, one
float field `value`, timestamp in the configured precision. Flow: `publish()` encodes lines into an
in-memory batch; a flusher thread appends a batch to the spool (fsync) when it reaches `batch_size`
or every `flush_interval`; a sender thread drains the spool in order, retrying 5xx/429/connection
errors with backoff, skipping (and counting) batches the server rejects with another 4xx.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from core.samples import MetricType, Sample
from exporters.spool import Spool

log = logging.getLogger(__name__)

PRECISION_FACTOR = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

INFLUX_METRICS: dict[str, tuple[MetricType, str]] = {
    "govnet_influx_spool_bytes": ("gauge", "Bytes of unsent batches in the on-disk spool."),
    "govnet_influx_spool_points": ("gauge", "Points in the on-disk spool not yet acknowledged."),
    "govnet_influx_pending_points": ("gauge", "Points in memory waiting for the next spool append."),
    "govnet_influx_written_total": ("counter", "Points the TSDB acknowledged."),
    "govnet_influx_dropped_total": ("counter", "Points dropped: spool cap exceeded or memory queue full."),
    "govnet_influx_rejected_total": ("counter", "Points the TSDB rejected with a 4xx (not retried)."),
    "govnet_influx_write_errors_total": ("counter", "Failed write attempts (retried)."),
    "govnet_influx_invalid_samples_total": ("counter", "Samples not encodable as line protocol (NaN, Inf)."),
}


def _escape_key(text: str) -> str:
    # Tag keys/values and field keys: comma, equals and space are escaped; newlines cannot be
    # represented at all, so device text with line breaks is flattened (no line injection).
    text = text.replace("\r", " ").replace("\n", " ").replace("\\", "\\\\")
    return text.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _escape_measurement(text: str) -> str:
    text = text.replace("\r", " ").replace("\n", " ").replace("\\", "\\\\")
    return text.replace(",", r"\,").replace(" ", r"\ ")


def line_of(sample: Sample, precision: str = "ms") -> bytes | None:
    """The line-protocol line for a sample (None for NaN/Inf, which InfluxDB cannot store)."""
    if not math.isfinite(sample.value):
        return None
    tags = "".join(f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(sample.labels) if k and v)
    ts = round(sample.timestamp * PRECISION_FACTOR[precision])
    return f"{_escape_measurement(sample.metric)}{tags} value={float(sample.value)!r} {ts}".encode()


class Outcome(enum.Enum):
    """What a write attempt tells the sender to do."""

    OK = "ok"
    RETRY = "retry"
    REJECT = "reject"


class BatchSender(Protocol):
    """Sends one line-protocol body; returns the outcome and a short error (never secrets)."""

    def send(self, body: bytes) -> tuple[Outcome, str]:
        """One attempt."""
        ...


def classify_status(status: int | None) -> Outcome:
    """5xx, 429 and no status (connection error) are retried; other 4xx are rejected for good."""
    if status is None or status == 429 or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.OK
    return Outcome.REJECT


class InfluxClientSender:
    """A BatchSender on influxdb-client's synchronous v2 write API (its own retries disabled)."""

    def __init__(
        self, url: str, org: str, bucket: str, token: str, precision: str = "ms", timeout_s: float = 10.0
    ) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.domain.write_precision import WritePrecision

        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000))
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = bucket
        self._org = org
        self._precision: Any = {
            "s": WritePrecision.S,
            "ms": WritePrecision.MS,
            "us": WritePrecision.US,
            "ns": WritePrecision.NS,
        }[precision]

    def send(self, body: bytes) -> tuple[Outcome, str]:
        """Write one batch."""
        from influxdb_client.rest import ApiException

        try:
            self._write.write(
                bucket=self._bucket, org=self._org, record=body, write_precision=self._precision
            )
        except ApiException as exc:
            status = exc.status if isinstance(exc.status, int) else None
            return classify_status(status), f"HTTP {status} {exc.reason or ''}".strip()
        except Exception as exc:  # connection refused/reset, timeouts: all retried
            return Outcome.RETRY, type(exc).__name__
        return Outcome.OK, ""

    def close(self) -> None:
        """Close the HTTP pool."""
        self._client.close()  # type: ignore[no-untyped-call]


class InfluxWriter:
    """The sink: batches samples into the spool and drains the spool to the TSDB."""

    def __init__(
        self,
        spool: Spool,
        sender: BatchSender,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        precision: str = "ms",
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_pending: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spool = spool
        self.sender = sender
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.precision = precision
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_pending = max_pending or 20 * batch_size
        self.clock = clock
        self._pending: list[bytes] = []
        self._cond = threading.Condition()
        self._stop_flush = threading.Event()
        self._stop_send = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="influx-flush", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name="influx-send", daemon=True)
        self._drain_until: float | None = None
        self.written = 0
        self.rejected = 0
        self.write_errors = 0
        self.invalid = 0
        self.queue_dropped = 0
        self.last_error = ""

    # -- intake (event-loop thread) -------------------------------------------------------------

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Encode the samples and queue them for the next spool append (never blocks on I/O)."""
        lines: list[bytes] = []
        for s in samples:
            line = line_of(s, self.precision)
            if line is None:
                self.invalid += 1
            else:
                lines.append(line)
        with self._cond:
            room = self.max_pending - len(self._pending)
            if len(lines) > room:
                # The disk cannot keep up: drop the newest here, counted like spool drops.
                self.queue_dropped += len(lines) - max(room, 0)
                lines = lines[: max(room, 0)]
            self._pending.extend(lines)
            if len(self._pending) >= self.batch_size:
                self._cond.notify_all()

    def flush(self) -> int:
        """Move everything pending into the spool now (fsync'd); returns the points moved."""
        with self._cond:
            pending, self._pending = self._pending, []
        for i in range(0, len(pending), self.batch_size):
            self.spool.append(pending[i : i + self.batch_size])
        return len(pending)

    def _flush_loop(self) -> None:
        while not self._stop_flush.is_set():
            with self._cond:
                if len(self._pending) < self.batch_size:
                    self._cond.wait(self.flush_interval)
            try:
                self.flush()
            except Exception:
                log.exception("spool append failed")
                self._stop_flush.wait(1.0)

    # -- sending (sender thread) ----------------------------------------------------------------

    def _send_loop(self) -> None:
        backoff = self.backoff_initial
        while True:
            if self._stop_send.is_set():
                drain_until = self._drain_until
                if drain_until is None or self.clock() >= drain_until or not self.spool.points_on_disk():
                    return
            if not self.spool.wait(0.2):
                continue
            rec = self.spool.peek()
            if rec is None:
                continue
            outcome, error = self.sender.send(rec.body)
            if outcome is Outcome.OK:
                self.spool.ack(rec.ref)
                self.written += rec.ref.points
                backoff = self.backoff_initial
            elif outcome is Outcome.REJECT:
                self.spool.ack(rec.ref)
                self.rejected += rec.ref.points
                self.last_error = error
                log.error("TSDB rejected a batch of %d points (%s); skipped", rec.ref.points, error)
                backoff = self.backoff_initial
            else:
                self.spool.release(rec.ref)
                self.write_errors += 1
                self.last_error = error
                log.warning("TSDB write failed (%s); retrying in %.1fs", error, backoff)
                # Full jitter keeps many govnet instances from retrying in lockstep.
                pause = backoff * (0.5 + random.random() / 2)
                drain_until = self._drain_until
                if self._stop_send.is_set() and drain_until is not None:
                    time.sleep(max(0.0, min(pause, drain_until - self.clock())))
                else:
                    self._stop_send.wait(pause)  # wakes early on stop(), then drains
                backoff = min(backoff * 2, self.backoff_max)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher and sender threads."""
        self._flusher.start()
        self._sender.start()

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Flush pending points into the spool, try to drain it for `drain_timeout`, then stop.

        What is not sent stays in the spool and is sent by the next start.
        """
        self._stop_flush.set()
        with self._cond:
            self._cond.notify_all()
        if self._flusher.is_alive():
            self._flusher.join()
        self.flush()
        self._drain_until = self.clock() + drain_timeout
        self._stop_send.set()
        if self._sender.is_alive():
            self._sender.join()
        self.spool.close()

    @property
    def dropped(self) -> int:
        """Points lost: spool cap plus memory queue overflow."""
        return self.spool.dropped_points + self.queue_dropped

    def internal_samples(self) -> list[Sample]:
        """The writer's metrics for /metrics."""
        with self._cond:
            pending = len(self._pending)
        values = {
            "govnet_influx_spool_bytes": self.spool.bytes,
            "govnet_influx_spool_points": self.spool.points,
            "govnet_influx_pending_points": pending,
            "govnet_influx_written_total": self.written,
            "govnet_influx_dropped_total": self.dropped,
            "govnet_influx_rejected_total": self.rejected,
            "govnet_influx_write_errors_total": self.write_errors,
            "govnet_influx_invalid_samples_total": self.invalid,
        }
        ts = time.time()
        return [
            Sample(m, (), float(v), ts, INFLUX_METRICS[m][0], INFLUX_METRICS[m][1]) for m, v in values.items()
        ]
