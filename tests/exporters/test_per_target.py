"""Per-target exposition: `/metrics?device=`, `?shard=&shards=`, `?scope=node` and the `/sd` listing,
scraped by a REAL Prometheus 2.42 through http_sd_configs from a real `govnet run` polling the lab."""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from core.latest import LatestStore
from core.samples import Sample
from exporters.prometheus import SamplesCollector
from exporters.targets import TargetExposition, shard_of
from tests.support.govnet_run import http_get, polling_lab, wait_for
from tests.support.prometheus import Prometheus

HOST = "127.61.0.1"
LAB_BASE = "127.61.1.0"
N_DEVICES = 6


def parsed(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    out = set()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            value = -1.0 if math.isnan(s.value) else s.value
            out.add((s.name, tuple(sorted(s.labels.items())), value))
    return out


def _dev(name: str) -> tuple[tuple[str, str], ...]:
    return (("device", name), ("role", "core"), ("site", "ncc"), ("vendor", "huawei"))


def test_device_text_equals_the_whole_node_text_for_that_device() -> None:
    store = LatestStore()
    tricky = 'a "quoted"\\ name\n两行'
    store.publish(
        "r1",
        [
            Sample("govnet_up", _dev("r1"), 1.0, 0.0, "gauge", "1 if the poll answered."),
            Sample(
                "govnet_if_in_octets_total", (*_dev("r1"), ("ifalias", tricky)), 12345678901.0, 0.0, "counter"
            ),
            Sample(
                "govnet_if_in_octets_total", (*_dev("r1"), ("ifalias", "x")), float("inf"), 0.0, "counter"
            ),
            Sample("govnet_cpu_ratio", _dev("r1"), float("nan"), 0.0),
            Sample("govnet_cpu_ratio", _dev("r1"), 0.5, 0.0),  # duplicate series: left out
            Sample("bad-name", _dev("r1"), 1.0, 0.0),  # invalid: left out
        ],
    )
    store.publish("r2", [Sample("govnet_up", _dev("r2"), 0.0, 0.0, "gauge", "1 if the poll answered.")])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SamplesCollector(store))
    whole = parsed(generate_latest(registry).decode())
    exp = TargetExposition(store)
    r1 = exp.device("r1")
    assert r1 is not None
    mine = parsed(r1.decode())
    assert mine == {s for s in whole if ("device", "r1") in s[1]}
    assert len(mine) == 4 and exp.invalid_total == 2
    assert exp.device("r1") is r1  # cached until the next poll
    store.publish("r1", [Sample("govnet_up", _dev("r1"), 0.0, 1.0)])
    assert parsed((exp.device("r1") or b"").decode()) == {("govnet_up", _dev("r1"), 0.0)}
    assert exp.device("nope") is None


def test_shards_split_every_device_once_and_move_few_when_shards_grow() -> None:
    store = LatestStore()
    names = [f"sw{i:04d}" for i in range(400)]
    for n in names:
        store.publish(n, [Sample("govnet_up", _dev(n), 1.0, 0.0)])
    exp = TargetExposition(store)
    seen: list[str] = []
    for i in range(4):
        text = exp.shard(i, 4)
        seen += [dict(s[1])["device"] for s in parsed(text.decode())]
    assert sorted(seen) == names
    moved = sum(1 for n in names if shard_of(n, 4) != shard_of(n, 5))
    assert 0 < moved < len(names) // 2  # consistent hashing: about 1/5 move, not most
    listing = exp.sd("h:1", None)
    assert [t["labels"]["__param_device"] for t in listing[:-1]] == names  # type: ignore[index]
    assert listing[-1]["labels"] == {"__param_scope": "node", "instance": "h:1"}
    assert len(exp.sd("h:1", 3)) == 4


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with polling_lab(tmp_path_factory.mktemp("per_target"), HOST, LAB_BASE, N_DEVICES, 4) as n:
        yield n.metrics_url.split("/")[2]


def test_device_scrape_carries_only_that_device(node: str) -> None:
    status, body = http_get(f"http://{node}/sd")
    assert status == 200
    listing = json.loads(body)
    devices = [t["labels"]["__param_device"] for t in listing if "__param_device" in t["labels"]]
    assert len(devices) == N_DEVICES == len(set(devices))
    assert all(t["targets"] == [node] for t in listing)
    whole = parsed(http_get(f"http://{node}/metrics")[1])
    for name in devices:
        status, text = http_get(f"http://{node}/metrics?device={urllib.parse.quote(name)}")
        series = parsed(text)
        assert status == 200 and series
        assert {dict(s[1]).get("device") for s in series} == {name}
        assert {s[0] for s in series} >= {"govnet_up", "govnet_if_in_octets_total"}
        # The same series as the whole-node page has for it (values may move between the two scrapes).
        assert {s[:2] for s in series} == {s[:2] for s in whole if dict(s[1]).get("device") == name}
    node_own = parsed(http_get(f"http://{node}/metrics?scope=node")[1])
    assert node_own and all("device" not in dict(s[1]) for s in node_own)
    assert ("govnet_scheduler_devices", (), float(N_DEVICES)) in node_own
    assert "\ngovnet_scheduler_devices " in http_get(f"http://{node}/metrics?scope=node")[1]
    assert http_get(f"http://{node}/metrics?device=nope")[0] == 404
    assert http_get(f"http://{node}/metrics?shard=2&shards=2")[0] == 400
    assert http_get(f"http://{node}/metrics?colour=red")[0] == 400
    assert http_get(f"http://{node}/sd?shards=0")[0] == 400


def test_real_prometheus_scrapes_each_device_and_each_shard_through_http_sd(
    node: str, tmp_path: Path
) -> None:
    # Two http_sd jobs: per device, and per shard (2 shards).
    jobs = [
        {"job_name": job, "http_sd_configs": [{"url": f"http://{node}/sd{query}", "refresh_interval": "2s"}]}
        for job, query in (("devices", ""), ("shards", "?shards=2"))
    ]
    with Prometheus(tmp_path, HOST, jobs) as prom:

        def all_up() -> list[dict[str, Any]] | None:
            data = prom.api("targets", state="active")
            active = (data or {}).get("activeTargets", [])
            ok = len(active) == N_DEVICES + 1 + 3 and all(t["health"] == "up" for t in active)
            return active if ok else None

        active = wait_for(all_up, 60, "every http_sd target scraped and up")
        per_device = [t for t in active if t["labels"]["job"] == "devices"]
        assert all("device=" in t["scrapeUrl"] or "scope=node" in t["scrapeUrl"] for t in per_device)
        # Each device target yields exactly its own govnet_up, with instance = device.
        got = wait_for(
            lambda: (r := prom.query('govnet_up{job="devices"}')) and len(r) == N_DEVICES and r,
            30,
            "govnet_up per device",
        )
        assert all(r["metric"]["instance"] == r["metric"]["device"] and r["value"][1] == "1" for r in got)
        # The two shards together carry every device exactly once.
        shards = prom.query('count by (instance) (govnet_up{job="shards"})')
        assert sorted(r["metric"]["instance"] for r in shards) == ["shard-0-of-2", "shard-1-of-2"]
        assert sum(int(r["value"][1]) for r in shards) == N_DEVICES
        assert len(prom.query('count by (device) (govnet_up{job="shards"}) == 1')) == N_DEVICES
        nodes = prom.query('govnet_scheduler_devices{job="devices"}')
        assert [r["value"][1] for r in nodes] == [str(N_DEVICES)]


def test_a_sample_set_renders_exactly_like_its_samples() -> None:
    # Duplicates, a bad metric name, a bad label name, escaping, and one family split in two runs
    # (the plan's non-contiguous rows): the cached per-layout plan must decide like render() does.
    from core.samples import SampleSet
    from exporters.targets import render

    lab = _dev("r1")
    odd = (*lab, ("ifalias", 'say "hi"\\ \n ok'))
    samples = [
        Sample("govnet_if_in_octets_total", odd, 2.0**40, 1.0, "counter", "in\nhelp"),
        Sample("govnet_cpu_ratio", lab, 0.25, 1.0),
        Sample(
            "govnet_if_in_octets_total", (*lab, ("ifname", "Gi0/2")), 12345678.0, 1.0, "counter", "in\nhelp"
        ),
        Sample("govnet_if_in_octets_total", odd, 7.0, 1.0, "counter", "in\nhelp"),  # duplicate
        Sample("bad-name", lab, 1.0, 1.0),
        Sample("govnet_x", (*lab, ("bad-label", "v")), 1.0, 1.0),
        Sample("govnet_temp_celsius", lab, float("nan"), 1.0),
        Sample("govnet_big", lab, -1e300, 1.0, "counter"),
        Sample("govnet_up", lab, 1.0, 1.0, "gauge", "up"),
    ]
    ss = SampleSet.of(samples)
    assert render(ss) == render(list(samples))
    text, invalid = render(ss)
    assert invalid == 3
    assert b'vendor="huawei"} -1e+300\n' in text and b"} NaN\n" in text
    assert render(SampleSet.of(samples[:3], like=ss.layout)) == render(samples[:3])
    again = SampleSet(ss.layout, ss.values, ss.stamps)
    assert render(again) == render(list(again))  # the cached plan, second use


def test_the_rendered_text_cache_is_bounded() -> None:
    store = LatestStore()
    exp = TargetExposition(store, lambda: ["r1", "r2", "r3"])
    exp.cache_size = 2
    for name in ("r1", "r2", "r3"):
        store.publish(name, [Sample("govnet_up", _dev(name), 1.0, 1.0)])
        assert exp.device(name) is not None
    assert exp.renders_total == 3
    exp.device("r3")
    assert exp.renders_total == 3  # cached until its next poll
    exp.device("r1")
    assert exp.renders_total == 4  # pushed out by r2 and r3: rendered again, the same text
