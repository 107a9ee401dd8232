"""The streamed whole-node `/metrics`: the same page as prometheus_client's in-memory rendering on every
real recording, one group per family, gzip when asked, and a REAL Prometheus 2.42 scraping it from a
real `govnet run` polling the lab."""

from __future__ import annotations

import gzip
import math
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from collectors.snmp.collector import SnmpCollector, _DeviceState
from collectors.snmp.counters import CounterTracker
from collectors.snmp.profile import select_profile
from collectors.snmp.snmprec import load_snmprec
from core.latest import LatestStore
from core.samples import Sample
from exporters.prometheus import SamplesCollector
from exporters.wholenode import CHUNK, accepts_gzip
from inventory.model import Device
from tests.support.govnet_run import polling_lab, wait_for
from tests.support.prometheus import Prometheus

RECORDINGS = sorted((Path(__file__).parents[1] / "data" / "snmprec").glob("*.snmprec"))
HOST = "127.62.0.1"
LAB_BASE = "127.62.1.0"
N_DEVICES = 8

Series = set[tuple[str, tuple[tuple[str, str], ...], float]]


def structure(text: str) -> tuple[Series, dict[str, tuple[str, str]], list[str]]:
    """(series, HELP/TYPE per family, family names in page order) as prometheus_client parses them."""
    series: Series = set()
    heads: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    for fam in text_string_to_metric_families(text):
        order.append(fam.name)
        heads[fam.name] = (fam.documentation, fam.type)
        for s in fam.samples:
            value = -1.0 if math.isnan(s.value) else s.value
            series.add((s.name, tuple(sorted(s.labels.items())), value))
    return series, heads, order


def type_lines(text: str) -> list[str]:
    return [line.split(" ")[2] for line in text.splitlines() if line.startswith("# TYPE ")]


def recorded_fleet() -> LatestStore:
    """Every real recording polled twice (counters rising) as its own device, with its profile."""
    store = LatestStore()
    col = SnmpCollector()
    for n, path in enumerate(RECORDINGS):
        walk = load_snmprec(path)
        vendor = ("huawei", "h3c", "cisco", "ruijie")[n % 4]
        dev = Device(
            name=f"rec-{path.stem}", site="s", role="core_switch", vendor=vendor, address="127.0.0.1"
        )
        sysoid = walk.get("1.3.6.1.2.1.1.2.0")
        oid = sysoid.lstrip(".") if isinstance(sysoid, str) else None
        profile = select_profile(col.profiles, oid, dev.vendor.value, dev.role.value)
        st = _DeviceState(None, None, CounterTracker())  # type: ignore[arg-type]  # offline: no session
        st.profile = profile
        for i in range(2):
            w = {k: (v + 1000 * i if type(v) is int and v > 100000 else v) for k, v in walk.items()}
            store.publish(dev.name, col._samples(st, w, dev, 1000.0 + 60 * i))
    return store


def test_the_streamed_page_equals_prometheus_clients_on_every_recording() -> None:
    store = recorded_fleet()
    # The node's own samples: one family of its own, one sharing a device family's name, one invalid.
    own = [
        Sample("govnet_scheduler_devices", (), float(len(RECORDINGS)), 0.0, "gauge", "Devices scheduled."),
        Sample("govnet_up", (("device", "unpolled"),), 0.0, 0.0, "gauge", "1 if the poll answered."),
        Sample("bad name", (), 1.0, 0.0),
    ]
    reference = SamplesCollector(store, [lambda: own])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(reference)
    old = generate_latest(registry).decode()
    streamed = SamplesCollector(store, [lambda: own])
    chunks = list(streamed.page())
    new = "".join(chunks)
    series, heads, order = structure(new)
    assert len(series) > 1000 and len(RECORDINGS) > 5
    assert (series, heads, order) == structure(old)
    assert new == old  # byte for byte, in fact
    # One HELP/TYPE per family: no family split across devices.
    assert len(type_lines(new)) == len(set(type_lines(new))) == len(order)
    assert streamed.invalid_total == reference.invalid_total == 1
    assert max(len(c) for c in chunks) < CHUNK + 64 * 1024  # a chunk, not the page
    assert len(chunks) > 1


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate", False),
        ("", False),
        ("gzip;q=0", False),
        ("*", True),
        ("*;q=0.5, gzip;q=0", False),
        ("identity, GZIP;q=0.8", True),
    ],
)
def test_accept_encoding(header: str, want: bool) -> None:
    assert accepts_gzip(header) is want


def _get(url: str, **headers: str) -> tuple[dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return {k.lower(): v for k, v in resp.getheaders()}, resp.read()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with polling_lab(tmp_path_factory.mktemp("wholenode"), HOST, LAB_BASE, N_DEVICES, 6) as n:
        yield n.metrics_url.split("/")[2]


def test_gzip_and_identity_carry_the_same_page(node: str) -> None:
    openmetrics = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    plain_headers, plain = _get(f"http://{node}/metrics", Accept=openmetrics)
    gz_headers, packed = _get(f"http://{node}/metrics", **{"Accept-Encoding": "gzip", "Accept": openmetrics})
    for h in (plain_headers, gz_headers):
        assert h["content-type"] == "text/plain; version=0.0.4; charset=utf-8"  # never claims OpenMetrics
    assert "content-encoding" not in plain_headers and gz_headers["content-encoding"] == "gzip"
    assert packed[:2] == b"\x1f\x8b" and len(packed) < len(plain) / 3
    text = gzip.decompress(packed).decode()
    # Values move between the two scrapes; the series and families do not.
    a, heads_a, order_a = structure(plain.decode())
    b, heads_b, order_b = structure(text)
    assert {s[:2] for s in a} == {s[:2] for s in b} and heads_a == heads_b and order_a == order_b
    assert len({dict(s[1]).get("device") for s in a} - {None}) == N_DEVICES
    assert "govnet_scheduler_devices" in heads_a and "govnet_exporter_invalid_samples" in heads_a
    assert len(type_lines(text)) == len(set(type_lines(text)))


def test_real_prometheus_scrapes_the_whole_node(node: str, tmp_path: Path) -> None:
    # Prometheus 2.42 always asks for gzip and prefers OpenMetrics; it must take the 0.0.4 text.
    job = {"job_name": "node", "static_configs": [{"targets": [node]}]}
    with Prometheus(tmp_path, HOST, [job]) as prom:

        def scraped() -> int | None:
            r = prom.query('scrape_samples_scraped{job="node"}')
            up = prom.query('up{job="node"}')
            ok = r and up and up[0]["value"][1] == "1" and int(r[0]["value"][1]) > 0
            return int(r[0]["value"][1]) if ok else None

        wait_for(scraped, 60, "the whole node scraped")

        def consistent() -> tuple[int, int] | None:
            # A poll may fail between Prometheus's scrape and ours (its data series then vanish): retry
            # until one scrape of each agrees, which never happens if Prometheus drops or adds series.
            samples = scraped()
            _headers, body = _get(f"http://{node}/metrics")
            series, _heads, _order = structure(body.decode())
            count = prom.query('count({job="node", __name__=~"govnet_.+"})')
            got = int(count[0]["value"][1]) if count else -1
            return (samples, got) if samples == got == len(series) else None

        samples, _count = wait_for(consistent, 60, "Prometheus holds every series of the page")
        assert samples > N_DEVICES * 50
        ups = wait_for(lambda: len(prom.query('govnet_up{job="node"} == 1')) == N_DEVICES, 30, "all up")
        assert ups
