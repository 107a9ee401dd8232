"""/metrics scraped by a REAL Prometheus 2.42: labels, values, and a failed device's series vanishing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors.base import PollResult, device_labels
from collectors.scheduler import Scheduler, SchedulerSettings
from core.fanout import FanOut
from core.latest import LatestStore
from core.samples import Sample
from exporters.prometheus import MetricsServer, SamplesCollector, parse_listen
from inventory.model import Device, Inventory
from tests.support.govnet_run import http_get, wait_for
from tests.support.prometheus import Prometheus, static_job
from tests.support.require import require_cmd

HOST = "127.23.0.3"


class SwitchCollector:
    """Two-interface switches; a device listed in `dead` fails its polls."""

    def __init__(self) -> None:
        self.dead: set[str] = set()
        self.polls = 0

    async def poll(self, inventory: Inventory, device: Device, now: float) -> PollResult:
        self.polls += 1
        await asyncio.sleep(0.005)
        if device.name in self.dead:
            return PollResult(device.name, ok=False, error="timeout", timeouts=2)
        base = device_labels(device)
        samples = [
            Sample(
                "govnet_if_in_octets_total",
                (*base, ("ifname", f"GE0/0/{i}")),
                1000.0 * i + self.polls,
                now,
                "counter",
                "Octets received on the interface.",
            )
            for i in (1, 2)
        ]
        samples.append(Sample("govnet_cpu_ratio", base, 0.25, now, "gauge", "CPU busy ratio."))
        return PollResult(device.name, ok=True, samples=samples, varbinds=5)


class Runtime:
    """Scheduler in its own thread (its own asyncio loop) + the /metrics server."""

    def __init__(self, inv: Inventory, collector: SwitchCollector) -> None:
        self.store = LatestStore()
        self.loop = asyncio.new_event_loop()
        self.sched = Scheduler(inv, collector, FanOut([self.store]), SchedulerSettings(unreachable_after=100))
        samples = SamplesCollector(self.store, [self.sched.internal_samples])
        self.server = MetricsServer(f"{HOST}:0", samples, healthy=lambda: True)
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.sched.run(),))

    def start(self) -> None:
        self.server.start()
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.sched.stop)
        self.thread.join(10)
        self.server.stop()
        self.loop.close()


@pytest.fixture
def runtime() -> Iterator[tuple[Runtime, SwitchCollector]]:
    devices = [
        Device(name=n, site="ncc", role="core_switch", vendor="huawei", address=a, poll_interval=1.0)
        for n, a in (("core-1", "127.23.0.10"), ("core-2", "127.23.0.11"))
    ]
    collector = SwitchCollector()
    rt = Runtime(Inventory(devices=devices), collector)
    rt.start()
    try:
        yield rt, collector
    finally:
        rt.stop()


def test_metrics_text_parses_and_healthz(runtime: tuple[Runtime, SwitchCollector]) -> None:
    rt, _ = runtime
    base = f"http://{HOST}:{rt.server.port}"
    wait_for(lambda: len(rt.store.devices()) == 2, 10, "both devices polled")
    status, text = http_get(base + "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    octets = families["govnet_if_in_octets"]
    assert octets.type == "counter" and octets.documentation == "Octets received on the interface."
    assert {s.labels["ifname"] for s in octets.samples} == {"GE0/0/1", "GE0/0/2"}
    assert all({"device", "site", "role", "vendor"} <= s.labels.keys() for s in octets.samples)
    assert families["govnet_up"].type == "gauge"
    assert "govnet_scheduler_polls" in families and "govnet_poll_lateness_seconds" in families
    assert "# TYPE govnet_if_in_octets_total counter" in text
    assert http_get(base + "/healthz") == (200, "ok\n")
    assert http_get(base + "/nope")[0] == 404


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9810") == ("127.0.0.1", 9810)
    assert parse_listen("[::1]:9810") == ("::1", 9810)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("9810")


def test_real_prometheus_sees_series_and_failed_device_series_vanish(
    runtime: tuple[Runtime, SwitchCollector], tmp_path: Path
) -> None:
    require_cmd("prometheus")
    rt, collector = runtime
    with Prometheus(tmp_path, HOST, [static_job("govnet", f"{HOST}:{rt.server.port}")]) as prom:
        wait_for(lambda: len(prom.query('govnet_up{device="core-2"} == 1')) == 1, 40, "first scrape")
        series = prom.query('govnet_if_in_octets_total{device="core-2"}')
        assert len(series) == 2
        labels = series[0]["metric"]
        assert isinstance(labels, dict)
        assert labels["site"] == "ncc" and labels["role"] == "core_switch" and labels["vendor"] == "huawei"
        assert labels["job"] == "govnet"
        assert len(prom.query('govnet_cpu_ratio{device="core-2"} == 0.25')) == 1

        collector.dead.add("core-2")
        wait_for(lambda: len(prom.query('govnet_up{device="core-2"} == 0')) == 1, 20, "govnet_up 0")
        # Staleness: once a scrape without them lands, the device's data series are gone, not frozen.
        wait_for(lambda: prom.query('govnet_if_in_octets_total{device="core-2"}') == [], 10, "series gone")
        assert prom.query('govnet_cpu_ratio{device="core-2"}') == []
        assert len(prom.query('govnet_if_in_octets_total{device="core-1"}')) == 2
        assert len(prom.query('govnet_poll_failures_total{device="core-2"} > 0')) == 1

        collector.dead.discard("core-2")
        wait_for(lambda: len(prom.query('govnet_if_in_octets_total{device="core-2"}')) == 2, 20, "back")
