"""The address history (compaction, merge gap, retention, restart) on SQLite and a real PostgreSQL,
and the address-event detectors (time passed in)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.support.db as test_db_support
from collectors.where.events import EventDetector, EventSettings
from collectors.where.history import History
from collectors.where.poll import DeviceTables
from collectors.where.resolve import Host, resolve
from collectors.where.tables import ArpRow, FdbRow
from inventory.model import Inventory
from tests.support.db import make_pg_pair

T0 = 1_790_000_000
A = Host("10.0.0.5", 0x54EE75000001, "acc-1", "Gi0/0/3", 110)
B = Host("10.0.0.6", 0x54EE75000002, "acc-1", "Gi0/0/4", 110)


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    saved = test_db_support.PG_ADDR
    test_db_support.PG_ADDR = ("127.42.16.2", "127.42.16.3")
    gen = make_pg_pair(with_standby=False)
    pg = next(gen)
    try:
        password = "where-" + os.urandom(6).hex()
        pg.primary.sql(f"CREATE ROLE govnet LOGIN PASSWORD '{password}'")
        pg.primary.sql("CREATE DATABASE govnet OWNER govnet")
        yield f"host=127.42.16.2 port={pg.primary.port} dbname=govnet user=govnet password={password}"
    finally:
        test_db_support.PG_ADDR = saved
        next(gen, None)


@pytest.fixture(params=["sqlite", "postgres"])
def open_history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[type]:
    made: list[History] = []
    if request.param == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        probe = History(dsn=dsn)
        with probe.db.tx() as cur:  # each test starts from an empty table
            cur.execute("DELETE FROM govnet_where_history")
        probe.db.close()

    def make(merge_gap: float = 3 * 86400.0, flush_every: float = 900.0) -> History:
        if request.param == "postgres":
            h = History(dsn=dsn, merge_gap=merge_gap, flush_every=flush_every)
        else:
            h = History(path=tmp_path / "w.db", merge_gap=merge_gap, flush_every=flush_every)
        made.append(h)
        return h

    yield make  # type: ignore[misc]
    for h in made:
        h.db.close()


def test_a_host_that_stays_is_one_row_and_a_move_adds_one(open_history: type) -> None:
    h = open_history(merge_gap=3600.0, flush_every=900.0)
    for k in range(200):  # 200 sweeps, 5 minutes apart
        h.record({A, B}, T0 + 300 * k)
    assert h.count() == 2
    moved = Host(A.ip, A.mac, "acc-2", "Gi0/0/7", 110)
    h.record({moved, B}, T0 + 300 * 200)
    assert h.count() == 3
    rows = [(r.device, r.port, r.first_seen, r.last_seen) for r in h.by_ip(A.ip)]
    assert rows == [("acc-2", "Gi0/0/7", T0 + 60000, T0 + 60000), ("acc-1", "Gi0/0/3", T0, T0 + 59700)]
    # A restart reads the open intervals back and keeps extending them.
    h.flush()
    again = open_history(merge_gap=3600.0, flush_every=900.0)
    again.record({moved, B}, T0 + 60300)
    again.flush()
    assert again.count() == 3
    assert again.by_mac(B.mac)[0].last_seen == T0 + 60300
    assert again.by_mac(B.mac)[0].first_seen == T0


def test_gaps_merge_up_to_merge_gap_then_a_new_interval(open_history: type) -> None:
    h = open_history(merge_gap=3600.0, flush_every=0.0)
    h.record({A}, T0)
    h.record(set(), T0 + 300)  # switched off for less than the merge gap
    h.record({A}, T0 + 3000)
    assert [(r.first_seen, r.last_seen) for r in h.by_ip(A.ip)] == [(T0, T0 + 3000)]
    h.record(set(), T0 + 3300)
    h.record({A}, T0 + 3000 + 3601)  # away for longer: a new row
    assert [(r.first_seen, r.last_seen) for r in h.by_ip(A.ip)] == [(T0 + 6601, T0 + 6601), (T0, T0 + 3000)]


def test_retention_prunes_by_last_sighting(open_history: type) -> None:
    h = open_history()
    h.record({A}, T0)
    h.record({B}, T0 + 200 * 86400)
    assert h.prune(T0 + 200 * 86400, 180 * 86400) == 1
    assert [r.mac for r in h.by_ip(A.ip)] == [] and h.count() == 1


def _tables(device: str, arp: list[ArpRow] = (), fdb: list[FdbRow] = ()) -> DeviceTables:  # type: ignore[assignment]
    t = DeviceTables(device, ok=True, arp=list(arp), fdb=list(fdb))
    t.if_names = {k: f"Gi0/0/{k}" for k in range(1, 30)}
    return t


INV = Inventory.model_validate(
    {
        "devices": [
            {"name": "acc-1", "site": "s", "role": "access_switch", "vendor": "h3c", "address": "10.9.0.1"},
            {
                "name": "acc-2",
                "site": "s",
                "role": "access_switch",
                "vendor": "huawei",
                "address": "10.9.0.2",
            },
            {
                "name": "agg",
                "site": "s",
                "role": "aggregation_switch",
                "vendor": "huawei",
                "address": "10.9.0.3",
            },
        ],
        "links": [
            {
                "a": {"device": "acc-1", "interface": "Gi0/0/28"},
                "b": {"device": "agg", "interface": "Gi0/0/1"},
            },
            {
                "a": {"device": "acc-2", "interface": "Gi0/0/28"},
                "b": {"device": "agg", "interface": "Gi0/0/2"},
            },
        ],
    }
)


def test_resolution_skips_uplinks_and_prefers_access_ports() -> None:
    mac = 0x54EE75000009
    sweep = resolve(
        INV,
        [
            _tables("agg", arp=[ArpRow("10.0.0.9", mac, 1100)], fdb=[FdbRow(mac, 110, 1, 1)]),
            _tables("acc-1", fdb=[FdbRow(mac, 110, 3, 3), FdbRow(mac, 110, 28, 28)]),
        ],
    )
    assert [(loc.device, loc.port, loc.vlan) for loc in sweep.edge[mac]] == [("acc-1", "Gi0/0/3", 110)]
    assert sweep.hosts == {Host("10.0.0.9", mac, "acc-1", "Gi0/0/3", 110)}


def test_events_many_ports_jump_and_spoof_each_once_then_expire() -> None:
    det = EventDetector(EventSettings(hold=600.0, jump_min=10, jump_factor=3.0))
    m1, m2 = 0x54EE75000001, 0x3C52A1000002
    base = [_tables("agg", arp=[ArpRow("10.0.0.5", m1, 1100)]), _tables("acc-1", fdb=[FdbRow(m1, 110, 3, 3)])]
    assert det.observe(resolve(INV, base), T0) == []
    # The same MAC on two access switches' host ports, 12 new MACs on one port, the address on another MAC.
    flood = [FdbRow(0x02AA00000000 + k, 110, 5, 5) for k in range(12)]
    now = [
        _tables("agg", arp=[ArpRow("10.0.0.5", m2, 1100)]),
        _tables("acc-1", fdb=[FdbRow(m1, 110, 3, 3), FdbRow(m2, 110, 4, 4), *flood]),
        _tables("acc-2", fdb=[FdbRow(m1, 110, 7, 7)]),
    ]
    new = det.observe(resolve(INV, now), T0 + 300)
    kinds = sorted(e.kind for e in new)
    assert kinds == ["address_mac_changed", "mac_many_ports", "port_mac_jump"]
    spoof = next(e for e in new if e.kind == "address_mac_changed")
    assert dict(spoof.labels) == {
        "ip": "10.0.0.5",
        "mac": "3c:52:a1:00:00:02",
        "previous_mac": "54:ee:75:00:00:01",
    }
    jump = next(e for e in new if e.kind == "port_mac_jump")
    assert (jump.device, dict(jump.labels), jump.value) == ("acc-1", {"port": "Gi0/0/5", "before": "0"}, 12)
    # The address flips back: still the same one event, not a second alert.
    back = [_tables("agg", arp=[ArpRow("10.0.0.5", m1, 1100)]), _tables("acc-1", fdb=[FdbRow(m1, 110, 3, 3)])]
    assert det.observe(resolve(INV, back), T0 + 600) == []
    assert sum(1 for k, _ in det.active if k == "address_mac_changed") == 1
    det.observe(resolve(INV, back), T0 + 1300)
    assert not det.active  # held for `hold` seconds after the last occurrence, then gone
    assert det.total == {"address_mac_changed": 1, "mac_many_ports": 1, "port_mac_jump": 1}


def test_two_nodes_of_a_pair_share_rows_in_postgres(pg_dsn: str) -> None:
    a, b = History(dsn=pg_dsn, flush_every=0.0), History(dsn=pg_dsn, flush_every=0.0)
    with a.db.tx() as cur:
        cur.execute("DELETE FROM govnet_where_history")
    try:
        b.record(set(), T0 - 60)  # both nodes running before the host appears
        a.record({A}, T0)
        b.record({A}, T0 + 7)  # the other node's sweep, a few seconds later: the same row, extended
        a.record({A}, T0 + 300)
        b.record({A}, T0 + 290)  # an older sighting never moves last_seen backwards
        assert [(r.first_seen, r.last_seen) for r in a.by_ip(A.ip)] == [(T0, T0 + 300)]
        assert a.count() == 1
    finally:
        a.db.close()
        b.db.close()
