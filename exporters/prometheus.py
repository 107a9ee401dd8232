"""`/metrics` (the whole node streamed by exporters.wholenode, or one target), `/sd` and `/healthz`; the
prometheus_client collector stays as the in-memory reference rendering."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from core.latest import LatestStore
from core.samples import Sample
from exporters.targets import MAX_SHARDS, TargetExposition, render
from exporters.wholenode import NodePage, accepts_gzip, encode

log = logging.getLogger(__name__)

SampleSource = Callable[[], Iterable[Sample]]

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

EXPORTER_METRICS: dict[str, str] = {
    "govnet_exporter_invalid_samples_total": "Samples left out of /metrics (bad name/label or duplicate).",
}


class SamplesCollector(Collector):
    """Turns the latest device samples and internal samples into metric families at scrape time."""

    def __init__(self, store: LatestStore, internal: Iterable[SampleSource] = ()) -> None:
        self.store = store
        self.internal: list[SampleSource] = list(internal)
        self.invalid_total = 0
        self._lock = threading.Lock()

    def add_source(self, source: SampleSource) -> None:
        """Add a provider of internal samples (scheduler, Influx writer...)."""
        self.internal.append(source)

    def internal_samples(self) -> list[Sample]:
        """The service's own samples (scheduler, writer, services), without any device series."""
        out: list[Sample] = []
        for source in self.internal:
            try:
                out.extend(source())
            except Exception:
                log.exception("internal metrics source failed")
        return out

    def _samples(self) -> list[Sample]:
        return self.store.snapshot() + self.internal_samples()

    def count_invalid(self, invalid: int) -> int:
        """Add one scrape's left-out samples; the running total."""
        with self._lock:
            self.invalid_total += invalid
            return self.invalid_total

    def page(self) -> NodePage:
        """The whole-node page, streamed (what /metrics serves; collect() is the in-memory reference)."""
        help_ = EXPORTER_METRICS["govnet_exporter_invalid_samples_total"]
        return NodePage(self.store.sets(), self.internal_samples(), help_, self.count_invalid)

    def collect(self) -> Iterator[Metric]:
        """One family per metric name; HELP/TYPE from the first sample of that name; no timestamps."""
        families: dict[str, Metric] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        invalid = 0
        for s in self._samples():
            key = (s.metric, s.labels)
            if key in seen or not _NAME.match(s.metric) or any(not _LABEL.match(k) for k, _ in s.labels):
                invalid += 1
                continue
            seen.add(key)
            fam = families.get(s.metric)
            if fam is None:
                fam = _family(s)
                families[s.metric] = fam
            # No timestamp: Prometheus then applies staleness when a series disappears.
            fam.add_sample(s.metric, dict(s.labels), s.value)
        with self._lock:
            self.invalid_total += invalid
            total = self.invalid_total
        yield from families.values()
        own = Metric(
            "govnet_exporter_invalid_samples",
            EXPORTER_METRICS["govnet_exporter_invalid_samples_total"],
            "counter",
        )
        own.add_sample("govnet_exporter_invalid_samples_total", {}, float(total))
        yield own


def _family(s: Sample) -> Metric:
    help_ = s.help or s.metric
    # prometheus_client writes a counter family as `<name>_total`: the family name drops the suffix.
    if s.type == "counter" and s.metric.endswith("_total"):
        return Metric(s.metric[: -len("_total")], help_, "counter")
    return Metric(s.metric, help_, "gauge" if s.type != "counter" else "unknown")


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` to (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:9810 or [::1]:9810")
    return host.strip("[]"), int(port)


_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _int(value: str | None, low: int, high: int) -> int | None:
    if value is None or not value.isdigit() or not low <= int(value) <= high:
        return None
    return int(value)


class MetricsServer:
    """A threaded HTTP server: `/metrics` (whole node, or `?device=`, `?shard=&shards=`, `?scope=node`),
    `/sd` (the http_sd_configs target listing) and `/healthz` (200 while healthy)."""

    def __init__(
        self,
        listen: str,
        collector: SamplesCollector,
        healthy: Callable[[], bool] = lambda: True,
        targets: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        self.collector = collector
        self.exposition = TargetExposition(collector.store, targets)
        self.listen = listen
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self._healthy = healthy
        host, port = parse_listen(listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class _Server(ThreadingWSGIServer):
            address_family = family

        self._httpd: WSGIServer = make_server(host, port, self._app, _Server, handler_class=_SilentHandler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._httpd.server_address[1])

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            ok = self._healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"unhealthy\n"]
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if path == "/sd":
            return self._sd(environ, query, start_response)
        if path in ("/metrics", "/") and query:
            return self._target(query, start_response)
        if path in ("/metrics", "/"):
            return self._node(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /sd or /healthz\n"]

    def _node(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Text format 0.0.4 whatever the Accept header: Prometheus takes it even when it prefers
        # OpenMetrics. No Content-Length: the body is streamed and ends when the connection closes.
        gzip = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        headers = [("Content-Type", _TEXT), ("Vary", "Accept-Encoding")]
        if gzip:
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return encode(self.collector.page(), gzip)

    def _target(self, query: dict[str, str], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # One device, one shard or the node's own metrics: what one http_sd target scrapes.
        body: bytes | None = None
        if set(query) == {"device"}:
            body = self.exposition.device(query["device"])
            if body is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"unknown device\n"]
        elif set(query) == {"shard", "shards"}:
            shards = _int(query["shards"], 1, MAX_SHARDS)
            shard = _int(query["shard"], 0, (shards or 1) - 1)
            if shards is not None and shard is not None:
                body = self.exposition.shard(shard, shards)
        elif query == {"scope": "node"}:
            body, _invalid = render(self.collector.internal_samples())
        if body is None:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"expected ?device=NAME, ?shard=I&shards=N or ?scope=node\n"]
        start_response("200 OK", [("Content-Type", _TEXT), ("Content-Length", str(len(body)))])
        return [body]

    def _sd(
        self, environ: dict[str, Any], query: dict[str, str], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        shards = None
        if "shards" in query:
            shards = _int(query["shards"], 1, MAX_SHARDS)
            if shards is None:
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [b"shards: expected 1..%d\n" % MAX_SHARDS]
        # The address Prometheus reached us by (its Host header), else the configured listener.
        address = environ.get("HTTP_HOST") or self.listen
        body = json.dumps(self.exposition.sd(address, shards), ensure_ascii=False).encode("utf-8")
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
