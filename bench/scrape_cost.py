"""Scrape cost per device: the whole-node `/metrics` vs per-target `/metrics?device=` (issue 20).

A latest store holds `--devices` devices shaped like a 48-interface lab switch (its interface series
plus CPU, memory, poll metrics: about 500 series each); a real MetricsServer serves them on loopback and
this process scrapes it over HTTP. CPU is `time.process_time()` of this process (server threads and
the small HTTP client together, so the figures err against govnet). Three cases, CPU per device:
the whole node in one scrape; each device's page right after its poll (rendered); each again (cached).

Run: `python -m bench.scrape_cost [--devices 1000]`.
"""

from __future__ import annotations

import argparse
import http.client
import time

from core.latest import LatestStore
from core.samples import Sample
from exporters.prometheus import MetricsServer, SamplesCollector

IF_METRICS = [
    ("govnet_if_in_octets_total", "counter"),
    ("govnet_if_out_octets_total", "counter"),
    ("govnet_if_in_errors_total", "counter"),
    ("govnet_if_out_errors_total", "counter"),
    ("govnet_if_in_discards_total", "counter"),
    ("govnet_if_out_discards_total", "counter"),
    ("govnet_if_oper_up", "gauge"),
    ("govnet_if_admin_up", "gauge"),
    ("govnet_if_speed_bits", "gauge"),
    ("govnet_if_in_ucast_packets_total", "counter"),
]


def device_samples(name: str, now: float, seed: int) -> list[Sample]:
    """One switch's sample set: 48 interfaces x 10 metrics, plus a few device gauges."""
    base = (("device", name), ("role", "access_switch"), ("site", "access"), ("vendor", "huawei"))
    out = [Sample("govnet_up", base, 1.0, now, "gauge", "1 if the poll answered.")]
    out.append(Sample("govnet_cpu_ratio", base, 0.12, now, "gauge", "CPU busy ratio."))
    for k in range(1, 49):
        labels = (*base, ("ifalias", f"to user {k}"), ("ifindex", str(k)), ("ifname", f"GE0/0/{k}"))
        for metric, kind in IF_METRICS:
            out.append(Sample(metric, labels, float(seed * 1000 + k * 17), now, kind, metric))  # type: ignore[arg-type]
    return out


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return len(body)


def run(devices: int) -> dict[str, float]:
    """CPU ms per device of each way of scraping, and the bytes of one whole-node scrape."""
    store = LatestStore()
    names = [f"sw{i:05d}" for i in range(devices)]
    for i, n in enumerate(names):
        store.publish(n, device_samples(n, time.time(), i))
    server = MetricsServer("127.0.0.1:0", SamplesCollector(store), targets=lambda: names)
    server.start()
    try:
        _get(server.port, f"/metrics?device={names[0]}")  # warm-up
        t0 = time.process_time()
        whole_bytes = _get(server.port, "/metrics")
        whole = time.process_time() - t0
        for i, n in enumerate(names):  # a new poll of every device: its page is rendered afresh
            store.publish(n, device_samples(n, time.time(), i + 1))
        t0 = time.process_time()
        per_bytes = sum(_get(server.port, f"/metrics?device={n}") for n in names)
        fresh = time.process_time() - t0
        t0 = time.process_time()
        for n in names:
            _get(server.port, f"/metrics?device={n}")
        cached = time.process_time() - t0
    finally:
        server.stop()
    return {
        "devices": devices,
        "series_per_device": len(device_samples("x", 0, 0)),
        "whole_ms_per_device": 1000 * whole / devices,
        "whole_bytes": whole_bytes,
        "device_ms_fresh": 1000 * fresh / devices,
        "device_ms_cached": 1000 * cached / devices,
        "device_bytes": per_bytes / devices,
    }


def format_result(r: dict[str, float]) -> str:
    """The table."""

    def row(what: str, ms: float, size: float) -> str:
        return f"{what:<36} {ms:>14.2f} {size:>11.0f}"

    return "\n".join(
        [
            f"{r['devices']:.0f} devices x {r['series_per_device']:.0f} series, one MetricsServer, "
            "loopback HTTP",
            f"{'scrape':<36} {'CPU ms/device':>14} {'bytes':>11}",
            row("whole node /metrics (one response)", r["whole_ms_per_device"], r["whole_bytes"]),
            row("/metrics?device= after its poll", r["device_ms_fresh"], r["device_bytes"]),
            row("/metrics?device= again (cached)", r["device_ms_cached"], r["device_bytes"]),
        ]
    )


LAST: dict[str, float] = {}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--devices", type=int, default=1000)
    args = ap.parse_args(argv)
    LAST.clear()
    LAST.update(run(args.devices))
    print(format_result(LAST))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
