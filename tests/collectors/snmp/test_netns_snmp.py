"""Acceptance: govnet's SNMP collector against a real net-snmp snmpd in a network namespace.

The agent has 48 veth interfaces; known traffic moves its counters and `ip link set down` fails a link
for real.  net-snmp's own `snmpbulkwalk` of the same agent is the reference for every value.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.samples import Sample
from inventory.model import Inventory
from tests.support.netns import SnmpAgentNetns, kernel_supports_netns, sender_report
from tests.support.procs import stop
from tests.support.require import require, require_cmd, require_root

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]

IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT = "1.3.6.1.2.1.31.1.1.1.10"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
N_LINKS = 48
COMMUNITY_ENV = "GVT6_TEST_COMMUNITY"
AUTH_ENV = "GVT6_TEST_V3_AUTH"
PRIV_ENV = "GVT6_TEST_V3_PRIV"


def require_netns_lab() -> None:
    """Root, iproute2, net-snmp agent and tools, and a kernel with netns + veth."""
    require_root()
    require_cmd("ip", "snmpd", "snmpbulkwalk", "snmpget")
    require(kernel_supports_netns(), "kernel network namespaces with veth (ip netns add / veth pairs)")


@pytest.fixture(scope="module")
def lab() -> Iterator[SnmpAgentNetns]:
    """One namespace agent for the whole module (about 1 s to build)."""
    require_netns_lab()
    with SnmpAgentNetns(n_links=N_LINKS) as agent:
        yield agent


@pytest.fixture
def secrets_env(lab: SnmpAgentNetns, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab's credentials in the environment, where the inventory's env: references point."""
    monkeypatch.setenv(COMMUNITY_ENV, lab.community)
    monkeypatch.setenv(AUTH_ENV, lab.v3.auth_pass)
    monkeypatch.setenv(PRIV_ENV, lab.v3.priv_pass)


def inventory_for(lab: SnmpAgentNetns, version: str, **snmp_extra: Any) -> Inventory:
    """A one-device inventory pointing at the namespace agent."""
    return Inventory.model_validate(inventory_data(lab, version, **snmp_extra))


def inventory_data(lab: SnmpAgentNetns, version: str, **snmp_extra: Any) -> dict[str, Any]:
    """The one-device inventory as plain data (what an inventory YAML file holds)."""
    if version == "2c":
        snmp: dict[str, Any] = {"version": "2c", "community": f"env:{COMMUNITY_ENV}"}
    else:
        snmp = {
            "version": "3",
            "user": lab.v3.name,
            "auth_protocol": "sha256",
            "auth_key": f"env:{AUTH_ENV}",
            "priv_protocol": "aes128",
            "priv_key": f"env:{PRIV_ENV}",
        }
    snmp.update(snmp_extra)
    return {
        "sites": [{"name": "dc1", "kind": "datacentre"}],
        "devices": [
            {
                "name": "agent1",
                "site": "dc1",
                "role": "core_switch",
                "vendor": "linux",
                "address": lab.address,
                "snmp": snmp,
            }
        ],
    }


def poll(inv: Inventory) -> Any:
    """One poll of the inventory's only device with govnet's SNMP collector."""
    from collectors.snmp import SnmpCollector

    async def go() -> Any:
        collector = SnmpCollector()
        try:
            return await collector.poll(inv, inv.devices[0], time.time())
        finally:
            close = getattr(collector, "close", None)
            if close is not None:
                res = close()
                if asyncio.iscoroutine(res):
                    await res

    return asyncio.run(go())


def by_ifname(samples: list[Sample], metric: str) -> dict[str, Sample]:
    """Samples of one metric keyed by their ifname label."""
    return {s.label_dict["ifname"]: s for s in samples if s.metric == metric}


def column(walk: dict[str, str], oid: str) -> dict[int, str]:
    """{ifIndex: value} of one column of an snmpbulkwalk result."""
    prefix = oid + "."
    return {int(k[len(prefix) :]): v for k, v in walk.items() if k.startswith(prefix)}


def wait_visible(lab: SnmpAgentNetns, oid: str, at_least: int, v3: bool = False) -> None:
    """Wait until snmpd shows a counter >= at_least (net-snmp caches the interface table ~3 s)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if int(next(iter(lab.walk(oid, v3=v3).values()))) >= at_least:
            return
        time.sleep(0.3)
    raise AssertionError(f"snmpd never showed {oid} >= {at_least}")


def assert_counters_match(lab: SnmpAgentNetns, inv: Inventory, v3: bool) -> list[Sample]:
    """Poll with govnet between two reference walks; every interface's counters must agree."""
    before = lab.walk(IF_NAME, IF_HC_IN, IF_HC_OUT, v3=v3)
    result = poll(inv)
    after = lab.walk(IF_HC_IN, IF_HC_OUT, v3=v3)
    assert result.ok, result.error
    assert result.varbinds > 0
    names = column(before, IF_NAME)
    assert len(names) == N_LINKS + 2  # lo, the host uplink gv6up, and the 48 data links
    for metric, oid in (("govnet_if_in_octets_total", IF_HC_IN), ("govnet_if_out_octets_total", IF_HC_OUT)):
        got = by_ifname(result.samples, metric)
        lo, hi = column(before, oid), column(after, oid)
        for ifindex, ifname in names.items():
            assert ifname in got, f"{metric} missing for {ifname}"
            s = got[ifname]
            assert s.type == "counter"
            assert s.label_dict["ifindex"] == str(ifindex)
            for key, value in (
                ("device", "agent1"),
                ("site", "dc1"),
                ("role", "core_switch"),
                ("vendor", "linux"),
            ):
                assert s.label_dict[key] == value
            # Counters only grow between the two reference reads (the uplink carries the SNMP itself).
            assert int(lo[ifindex]) <= s.value <= int(hi[ifindex]), (metric, ifname, lo[ifindex], s.value)
    return list(result.samples)


def test_v2c_poll_matches_snmpbulkwalk_with_known_traffic(lab: SnmpAgentNetns, secrets_env: None) -> None:
    """Every interface appears with net-snmp's values; known traffic shows up to the byte."""
    out_link, in_link = lab.links[3], lab.links[7]
    out_idx, in_idx = _ifindex(lab, out_link.agent_if), _ifindex(lab, in_link.agent_if)
    assert in_idx != out_idx
    base = lab.walk(f"{IF_HC_OUT}.{out_idx}", f"{IF_HC_IN}.{in_idx}")
    base_out, base_in = int(base[f"{IF_HC_OUT}.{out_idx}"]), int(base[f"{IF_HC_IN}.{in_idx}"])
    sent_out = lab.send(out_link, packets=300, payload=1200, direction="out")
    sent_in = lab.send(in_link, packets=200, payload=700, direction="in")
    wait_visible(lab, f"{IF_HC_OUT}.{out_idx}", base_out + sent_out)
    wait_visible(lab, f"{IF_HC_IN}.{in_idx}", base_in + sent_in)
    samples = assert_counters_match(lab, inventory_for(lab, "2c"), v3=False)
    out_octets = by_ifname(samples, "govnet_if_out_octets_total")
    in_octets = by_ifname(samples, "govnet_if_in_octets_total")
    # Nothing else crosses a data link: the counters equal the kernel's and moved by exactly what we sent.
    assert out_octets[out_link.agent_if].value == lab.kernel_counters(out_link)[1] == base_out + sent_out
    assert in_octets[in_link.agent_if].value == lab.kernel_counters(in_link)[0] == base_in + sent_in
    idle = lab.links[20]
    assert out_octets[idle.agent_if].value == 0 and in_octets[idle.agent_if].value == 0


def test_v3_authpriv_sha256_aes_poll(lab: SnmpAgentNetns, secrets_env: None) -> None:
    """SNMPv3 authPriv (SHA-256 + AES-128) reads the same table as net-snmp's v3 walk."""
    assert_counters_match(lab, inventory_for(lab, "3"), v3=True)


def test_v3_wrong_priv_key_fails_without_leaking(
    lab: SnmpAgentNetns, secrets_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong privacy key makes the poll fail (not raise) and the error names no secret."""
    wrong = "wrong-" + lab.v3.priv_pass
    monkeypatch.setenv(PRIV_ENV, wrong)
    result = poll(inventory_for(lab, "3"))
    assert not result.ok
    assert not [s for s in result.samples if s.metric == "govnet_if_in_octets_total"]
    text = f"{result.error} {result!r}"
    for secret in (wrong, lab.v3.auth_pass, lab.v3.priv_pass, lab.community):
        assert secret not in text


def test_oper_up_follows_real_link_failure(lab: SnmpAgentNetns, secrets_env: None) -> None:
    """`ip link set X down` in the namespace turns govnet_if_oper_up to 0 for X only, and back."""
    inv = inventory_for(lab, "2c")
    link = lab.links[11]
    idx = _ifindex(lab, link.agent_if)
    try:
        lab.set_link(link, up=False)
        oper = _wait_oper(inv, link.agent_if, 0.0)
        assert lab.walk(f"{IF_OPER}.{idx}")[f"{IF_OPER}.{idx}"] in ("2", "down(2)")
        assert oper[link.agent_if].label_dict["ifindex"] == str(idx)
        assert all(
            s.value == 1.0 for name, s in oper.items() if name.startswith("gv6e") and name != link.agent_if
        )
    finally:
        lab.set_link(link, up=True)
    _wait_oper(inv, link.agent_if, 1.0)


def _wait_oper(inv: Inventory, ifname: str, want: float) -> dict[str, Sample]:
    deadline = time.monotonic() + 15
    oper: dict[str, Sample] = {}
    while time.monotonic() < deadline:
        result = poll(inv)
        assert result.ok, result.error
        oper = by_ifname(result.samples, "govnet_if_oper_up")
        if oper[ifname].value == want:
            return oper
        time.sleep(0.5)
    raise AssertionError(f"govnet_if_oper_up{{ifname={ifname}}} never became {want}: {oper.get(ifname)}")


_IFINDEX_CACHE: dict[tuple[str, str], int] = {}


def _ifindex(lab: SnmpAgentNetns, ifname: str) -> int:
    key = (lab.agent_ns, ifname)
    if key not in _IFINDEX_CACHE:
        for idx, name in column(lab.walk(IF_NAME), IF_NAME).items():
            _IFINDEX_CACHE[(lab.agent_ns, name)] = idx
    return _IFINDEX_CACHE[key]


# -- govnet run + a real Prometheus: rate() of generated traffic ---------------------------------------------

PROM_BIND = "127.26.0.1"
GOVNET_BIND = "127.26.0.2"
RATE_BYTES_PER_S = 400_000.0
TRAFFIC_S = 30.0
PAYLOAD = 1000


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def _prom_query(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with _DIRECT.open(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _series_ready(base: str, series: str) -> bool:
    try:
        return bool(_prom_query(base, "query", query=series))
    except urllib.error.URLError:  # Prometheus still starting
        return False


@pytest.fixture
def govnet_and_prometheus(lab: SnmpAgentNetns, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`govnet run` polling the agent every 2 s and a real Prometheus 2.42 scraping it every 1 s."""
    require_cmd("prometheus")
    inv = inventory_data(lab, "2c")
    inv["devices"][0]["poll_interval"] = "2s"
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inv))
    govnet_listen = f"{GOVNET_BIND}:{_free_port(GOVNET_BIND)}"
    (tmp_path / "govnet.yaml").write_text(
        yaml.safe_dump(
            {
                "inventory": "inventory.yaml",
                "prometheus": {"listen": govnet_listen},
                "scheduler": {"timeout": "1s", "retries": 1},
                "log_level": "warning",
            }
        )
    )
    prom_listen = f"{PROM_BIND}:{_free_port(PROM_BIND)}"
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": "govnet", "static_configs": [{"targets": [govnet_listen]}]}],
            }
        )
    )
    env = {**os.environ, COMMUNITY_ENV: lab.community}
    govnet_log = (tmp_path / "govnet.log").open("w")
    prom_log = (tmp_path / "prometheus.log").open("w")
    govnet = subprocess.Popen(
        [sys.executable, "-m", "govnet", "run", "--config", str(tmp_path / "govnet.yaml")],
        stdout=govnet_log,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    prom = subprocess.Popen(
        [
            "/usr/bin/prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={prom_listen}",
        ],
        stdout=prom_log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield f"http://{prom_listen}", govnet
    finally:
        stop(prom)
        stop(govnet)
        govnet_log.close()
        prom_log.close()
        if govnet.returncode not in (0, -signal.SIGTERM):
            print((tmp_path / "govnet.log").read_text()[-3000:])


def test_prometheus_rate_matches_generated_traffic(
    lab: SnmpAgentNetns, govnet_and_prometheus: tuple[str, subprocess.Popen[str]]
) -> None:
    """Steady traffic on one interface: Prometheus's rate() of govnet's counter equals the sent rate."""
    prom, govnet = govnet_and_prometheus
    link = lab.links[5]
    series = f'govnet_if_out_octets_total{{device="agent1",ifname="{link.agent_if}"}}'
    deadline = time.monotonic() + 45
    while not _series_ready(prom, series):  # Prometheus's first scrape lands 5-6 s after start
        assert govnet.poll() is None, "govnet run exited"
        assert time.monotonic() < deadline, "Prometheus never got the series from govnet"
        time.sleep(0.5)
    before = float(_prom_query(prom, "query", query=series)[0]["value"][1])
    assert before == lab.kernel_counters(link)[1]

    sender = lab.start_steady(link, RATE_BYTES_PER_S, TRAFFIC_S, payload=PAYLOAD)
    report = sender_report(sender, PAYLOAD, timeout=TRAFFIC_S + 30)
    assert abs(report.rate / RATE_BYTES_PER_S - 1) < 0.05, report  # the sender kept its pace

    # Every count reached Prometheus: the last value is the first plus exactly what was sent.
    final = before + report.wire_bytes
    deadline = time.monotonic() + 20
    while float(_prom_query(prom, "query", query=series)[0]["value"][1]) < final:
        assert time.monotonic() < deadline, "the final count never reached Prometheus"
        time.sleep(0.5)
    assert float(_prom_query(prom, "query", query=series)[0]["value"][1]) == final

    # rate() over 15 s windows lying wholly inside the sending period, evaluated every second.  snmpd
    # refreshes its interface table only every ~3 s, so the counter moves in steps and one window holds 4
    # or 5 of them: single rate() values swing by about +-14 % around the truth; their mean does not.
    rates = _prom_query(
        prom,
        "query_range",
        query=f"rate({series}[15s])",
        start=f"{report.started + 16:.3f}",
        end=f"{report.finished - 1:.3f}",
        step="1",
    )
    values = [float(v) for _, v in rates[0]["values"]]
    assert len(values) >= 8, values
    mean = statistics.fmean(values)
    print(f"sent {report.rate:.0f} B/s; rate() mean {mean:.0f}, min {min(values):.0f}, max {max(values):.0f}")
    assert abs(mean / report.rate - 1) < 0.15, (mean, report.rate, values)
    assert all(0.5 < v / report.rate < 1.5 for v in values), (report.rate, values)
    idle = f'rate(govnet_if_out_octets_total{{device="agent1",ifname="{lab.links[6].agent_if}"}}[15s])'
    assert float(_prom_query(prom, "query", query=idle)[0]["value"][1]) == 0.0
