"""Audit statistics (等保): computed from segment indexes, served to auditor/admin/engineer only,
exported as metrics; and the search index answers exactly what a full scan answers."""

from __future__ import annotations

import gzip
import random
import sqlite3
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from logstore.batch import number
from logstore.record import iso_utc, new_record
from logstore.search import PostingCollector, Query, fetch, index_path, index_rows, search
from logstore.stats import DeviceInfo, audit_stats
from logstore.store import LogStore, StoreConfig
from tests.support.api_world import make_world
from tests.support.paths import EXAMPLES

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z = 22:13 in Beijing
DAY = 86400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_statistics_from_the_segment_indexes(tmp_path: Path) -> None:
    clock = Clock(T0 - 3 * DAY)
    store = LogStore(
        tmp_path, StoreConfig(max_segment_bytes=8_000, retention_days=200, budget_bytes=10**9), clock=clock
    )
    plan = [  # (device, seconds before T0, lines)
        ("fw-1", 3 * DAY, 30),  # three days ago (Beijing 09-18 22:13)
        ("fw-1", 2 * 3600, 25),  # two hours ago
        ("ips-1", 2 * DAY, 10),  # silent for two days
        ("sw-1", 600, 7),
        ("rogue", 60, 3),  # not in the inventory
    ]
    for device, ago, n in plan:
        clock.now = T0 - ago
        store.append_batch(
            [new_record(device=device, event_type="policy_deny", msg=f"{device} {i}") for i in range(n)]
        )
    store.append_batch([new_record(event_type="audit", action="export", msg="not a device line")])
    devices = [
        DeviceInfo("fw-1", "firewall", "ncc"),
        DeviceInfo("ips-1", "ips", "ncc"),
        DeviceInfo("vpn-1", "vpn_gateway", "ncc"),
        DeviceInfo("sw-1", "access_switch", "jd"),
    ]
    st = audit_stats(store, devices, T0)
    assert len(store.sealed) >= 2  # the figures come from sealed and active segment indexes alike
    assert st["coverage"] == {
        "security_devices": 3,
        "reporting_24h": 1,
        "ratio": 1 / 3,
        "silent": ["ips-1", "vpn-1"],
    }
    rows = {r["device"]: r for r in st["devices"]}
    assert [r["device"] for r in st["devices"]][:3] == ["fw-1", "ips-1", "vpn-1"]  # security devices first
    assert rows["fw-1"]["last_log"] == iso_utc(T0 - 7200) and rows["fw-1"]["lines_24h"] == 25
    assert st["days"][-1] == "2026-09-21" and st["days"][0] == "2026-09-15"
    assert rows["fw-1"]["per_day"] == [0, 0, 0, 30, 0, 0, 25]
    assert rows["ips-1"]["per_day"] == [0, 0, 0, 0, 10, 0, 0] and not rows["ips-1"]["reporting"]
    assert rows["vpn-1"]["last_log"] is None and rows["sw-1"]["lines_24h"] == 7
    assert st["unknown_sources"] == [{"device": "rogue", "last_log": iso_utc(T0 - 60)}]
    assert st["retention"]["held_days"] == 3.0 and st["retention"]["target_days"] == 200
    assert st["store"]["bytes"] == store.disk_bytes() and st["store"]["budget_bytes"] == 10**9
    store.close()
    reader = LogStore(tmp_path, readonly=True)  # what the API in another process sees
    assert audit_stats(reader, devices, T0) == {**st, "store": {**st["store"], "bytes": reader.disk_bytes()}}


def test_statistics_route_is_for_auditor_admin_engineer(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    client = TestClient(create_app(world.state))
    codes = {
        role: client.get("/api/v1/logs/stats", headers=world.headers(role)).status_code
        for role in world.tokens
    }
    assert codes == {"admin": 200, "engineer": 200, "auditor": 200, "oncall": 403}
    body = client.get("/api/v1/logs/stats", headers=world.headers("auditor")).json()
    assert body["coverage"]["reporting_24h"] == 2 and body["coverage"]["security_devices"] == 5
    fw = next(r for r in body["devices"] if r["device"] == "nc-fw-1")
    assert fw["lines_24h"] == 40 and fw["reporting"] is True
    assert client.get("/api/v1/logs/stats").status_code == 401


def test_metrics_of_the_syslog_service(tmp_path: Path) -> None:
    from collectors.syslog.service import SyslogSection, build
    from core.config import validate_section
    from inventory.load import load_inventory

    section = validate_section(
        SyslogSection,
        {"store": "logs", "tcp_port": None, "udp_port": None, "budget_bytes": 10**9},
        tmp_path,
        "syslog",
    )
    (svc,) = build(section, inventory=load_inventory(EXAMPLES / "district.yaml"))
    svc.store.append_batch([new_record(device="nc-fw-1", event_type="policy_deny") for _ in range(4)])
    samples = {(s.metric, s.labels): s.value for s in svc.internal_samples()}
    assert samples[("govnet_syslog_coverage_ratio", ())] == 1 / 5
    assert samples[("govnet_syslog_security_devices", (("state", "silent"),))] == 4
    store_label = (("store", str(tmp_path / "logs")),)
    assert samples[("govnet_logstore_budget_bytes", store_label)] == 10**9
    assert samples[("govnet_logstore_retention_target_days", store_label)] == 180
    lines = {dict(k[1])["device"]: v for k, v in samples.items() if k[0] == "govnet_syslog_device_lines_24h"}
    assert lines["nc-fw-1"] == 4 and lines["nc-core-1"] == 0 and len(lines) == 133
    svc.store.close()


def test_index_answers_exactly_what_a_scan_answers(tmp_path: Path) -> None:
    """Random records over many sealed (indexed, block-compressed) segments and the active one: every
    search by IP, user, device, type and time, paged, equals a filter over all records; and so it does
    with indexes in the format written before terms were grouped (a row per term and seq)."""
    rng = random.Random(7)
    clock = Clock(T0)
    store = LogStore(tmp_path, StoreConfig(max_segment_bytes=60_000), clock=clock)
    ips = [f"10.0.{i}.{j}" for i in range(3) for j in range(5)] + ["2001:db8::1", None]
    users = ["admin", "root", '张三"\\', None]
    for _ in range(40):
        clock.now += 10
        store.append_batch(
            [
                new_record(
                    device=rng.choice(["fw-1", "fw-2"]),
                    event_type=rng.choice(["policy_deny", "admin_login"]),
                    src_ip=rng.choice(ips),
                    dst_ip=rng.choice(ips),
                    user=rng.choice(users),
                    msg=f"m {rng.random()} " + ("=x" * rng.randint(0, 30)),
                )
                for _ in range(50)
            ]
        )
    assert len(store.sealed) >= 5 and all(s.blocks for s in store.sealed)
    every = [rec for rec, _ in store.iter_records()]
    queries = [
        Query(ip="10.0.1.3"),
        Query(src_ip="2001:db8::1", event_type="admin_login"),
        Query(dst_ip="10.0.2.4", device="fw-2"),
        Query(user='张三"\\'),
        Query(user="root", ip="10.0.0.0", from_ts=iso_utc(T0 + 100), to_ts=iso_utc(T0 + 300)),
        Query(device="fw-1", text="=x=x=x"),
        Query(ip="192.0.2.1"),
    ]
    readers = [store, LogStore(tmp_path, readonly=True), store]
    for n, reader in enumerate(readers):
        if n == 2:
            for seg in store.sealed[::2]:
                _to_row_per_pair(index_path(tmp_path / "segments", seg.name))
        for q in queries:
            expected = [r["seq"] for r in every if q.matches(r)]
            got: list[int] = []
            after = 0
            used_index = 0
            while True:
                page = search(reader, q, after, 37)
                got += [r["seq"] for r in page.items]
                used_index += page.used_index
                if page.next_after is None:
                    break
                after = page.next_after
            assert got == expected, q
            assert used_index > 0 or not q.terms()
        picked = sorted(rng.sample([r["seq"] for r in every], 25))
        assert [r["seq"] for r in fetch(reader, picked)] == picked
    store.close()


def _to_row_per_pair(path: Path) -> None:
    """Rewrite a segment's index in the earlier format: table p, a row per (term, seq)."""
    rows = _index_rows(path)
    path.unlink()
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE p (term TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (term, seq))")
    conn.executemany("INSERT INTO p VALUES (?, ?)", rows)
    conn.commit()
    conn.close()
    assert _index_rows(path) == rows and rows


def _index_rows(path: Path) -> list[tuple[str, int]]:
    return sorted((term, seq) for term, seqs in index_rows(path).items() for seq in seqs)


def test_terms_collected_on_append_equal_a_scan_of_the_sealed_lines(tmp_path: Path) -> None:
    """Sealing takes the search terms the numbered records carry (or scans the lines when the segment
    was reopened half full): either way each index holds exactly what a scan of its lines finds."""
    rng = random.Random(11)
    clock = Clock(T0)
    store = LogStore(tmp_path, StoreConfig(max_segment_bytes=40_000), clock=clock)

    def batch() -> list[Any]:
        clock.now += 10
        recs = [
            new_record(
                src_ip=rng.choice(["10.0.0.1", "2001:db8::1", None, ""]),
                dst_ip=rng.choice(["10.0.0.2", None]),
                user=rng.choice(["admin", '张三"\\\n', None, ""]),
                msg=',"dst_ip":"1.2.3.4" ' * rng.randint(0, 2),  # key-like text inside a value
                recv_ts=iso_utc(clock.now),
            )
            for _ in range(40)
        ]
        # Both kinds of item: records, and runs numbered ahead (at the seqs they get, or at others
        # the writer renumbers them from).
        items: list[Any] = []
        while recs:
            k = rng.randint(1, 8)
            run, recs = recs[:k], recs[k:]
            if rng.random() < 0.5:
                items += run
            else:
                seq = store.last_seq + 1 + sum(1 if isinstance(x, dict) else x.count for x in items)
                items.append(number(run, seq if rng.random() < 0.5 else rng.randint(1, 10**6)))
        return items

    for _ in range(15):
        store.append_batch(batch())
    store.close()
    store = LogStore(tmp_path, StoreConfig(max_segment_bytes=40_000), clock=clock)  # reopened half full
    for _ in range(15):
        store.append_batch(batch())
    store.wait_compressed()
    assert len(store.sealed) >= 4
    for seg in store.sealed:
        scanned = PostingCollector()
        scanned.add_block(gzip.decompress((tmp_path / "segments" / seg.file).read_bytes()))
        want = sorted({(term, seq) for term, seqs in scanned.terms.items() for seq in seqs})
        assert want and _index_rows(index_path(tmp_path / "segments", seg.name)) == want, seg.name
    store.close()
