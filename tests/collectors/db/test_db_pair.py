"""Dual-node database against a real PostgreSQL 15 primary + hot standby, over SSH (real sshd) and SQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.db.access import DbAccess
from collectors.db.config import DbSection, db_groups, readers_for
from collectors.db.pair import DbPairCollector, GroupResult, MemberReading, db_pair_state, lag
from collectors.db.status import NodeStatus, lsn_bytes, parse_status
from collectors.ssh.cli import trust_command
from collectors.ssh.exec import SshExec
from inventory.load import load_inventory
from inventory.model import Inventory
from tests.support.db import PgPair, Sshd, make_pg_pair, sshd  # noqa: F401  (fixture)

PASS_ENV = "GOVNET_TEST_DB_MONITOR_PASSWORD"


def _node(recovery: bool, receiver: str | None = "streaming") -> NodeStatus:
    return NodeStatus(
        recovery,
        recovery,
        100.0,
        None if recovery else 1000,
        900 if recovery else None,
        800 if recovery else None,
        False if recovery else None,
        90.0,
        receiver,
        1,
    )


@pytest.mark.parametrize(
    ("roles", "verdict"),
    [
        ((False, True), "normal"),
        ((True, False), "failed_over"),
        ((False, False), "split_brain"),
        ((None, False), "failed_over"),  # old primary gone, standby promoted
        ((False, None), "degraded"),  # standby gone
        ((True, True), "no_active"),
        ((None, None), "down"),
        ((True, None), "no_active"),
    ],
)
def test_db_pair_verdict(roles: tuple[bool | None, bool | None], verdict: str) -> None:
    members = [
        MemberReading(f"db-{i}", exp, None if r is None else _node(r))
        for i, (exp, r) in enumerate(zip(("primary", "standby"), roles, strict=True))
    ]
    assert db_pair_state(members) == verdict


def test_standby_not_streaming_is_degraded_and_lag_math() -> None:
    members = [
        MemberReading("a", "primary", _node(False)),
        MemberReading("b", "standby", _node(True, "waiting")),
    ]
    assert db_pair_state(members) == "degraded"
    assert lag(_node(True), _node(False)) == (200.0, 10.0)  # 1000 - 800 bytes; now 100 - replayed at 90
    assert lag(_node(True), None) == (100.0, 10.0)  # primary unreadable: received - replayed
    assert lsn_bytes("1/0") == 1 << 32 and lsn_bytes("0/16B3748") == 0x16B3748


def test_status_parser_refuses_garbage() -> None:
    for text in (
        "",
        "not json",
        '{"in_recovery": true}',
        "[1]",
        '{"in_recovery":1,"read_only":"on","now":1,"current_lsn":"zz/1"}',
    ):
        with pytest.raises(ValueError):
            parse_status(text)


@pytest.fixture(scope="module")
def pg(sshd: Sshd) -> Iterator[tuple[PgPair, Inventory, Path, Sshd]]:  # noqa: F811
    gen = make_pg_pair()
    pair = next(gen)
    os.environ[PASS_ENV] = pair.monitor_password
    try:
        work = pair.base.parent / (pair.base.name + "-inv")
        work.mkdir()
        doc = {
            "sites": [{"name": "dc", "kind": "datacentre"}],
            "defaults": {
                "ssh": {"username": "root", "key_file": f"file:{sshd.client_key}", "port": sshd.port}
            },
            "devices": [
                {
                    "name": "dc-db-1",
                    "site": "dc",
                    "role": "db_server",
                    "vendor": "linux",
                    "address": pair.primary.address,
                },
                {
                    "name": "dc-db-2",
                    "site": "dc",
                    "role": "db_server",
                    "vendor": "linux",
                    "address": pair.standby.address,
                },
            ],
            "ha_groups": [
                {
                    "name": "dc-db",
                    "kind": "database",
                    "members": [
                        {"device": "dc-db-1", "expected_role": "primary"},
                        {"device": "dc-db-2", "expected_role": "standby"},
                    ],
                }
            ],
        }
        inv_file = work / "inventory.yaml"
        inv_file.write_text(yaml.safe_dump(doc))
        known = work / "known_hosts"
        for name in ("dc-db-1", "dc-db-2"):
            assert trust_command(inv_file, name, known) == 0
        yield pair, load_inventory(inv_file), known, sshd
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    finally:
        os.environ.pop(PASS_ENV, None)
        for _ in gen:
            pass


def _section(pair: PgPair, transport: str) -> DbSection:
    if transport == "ssh":
        # psql runs on the DB host and connects over the local socket directory.
        access = {n.address: n for n in (pair.primary, pair.standby)}
        return DbSection(
            access={
                "dc-db-1": DbAccess(
                    transport="ssh", host=str(access[pair.primary.address].sockdir), port=pair.primary.port
                ),
                "dc-db-2": DbAccess(transport="ssh", host=str(pair.standby.sockdir), port=pair.standby.port),
            }
        )
    return DbSection(
        access={
            "dc-db-1": DbAccess(
                transport="sql", port=pair.primary.port, password=f"env:{PASS_ENV}", sslmode="disable"
            ),
            "dc-db-2": DbAccess(
                transport="sql", port=pair.standby.port, password=f"env:{PASS_ENV}", sslmode="disable"
            ),
        }
    )


class Poller:
    """A collector with both transports, polled from a private event loop."""

    def __init__(self, pair: PgPair, inv: Inventory, known: Path, transport: str) -> None:
        self.inv = inv
        section = _section(pair, transport)
        self.groups = db_groups(inv, None)
        self.collector = DbPairCollector(readers_for(inv, self.groups, section, SshExec(known, timeout_s=10)))
        self.now = 1_800_000_000.0

    def poll(self) -> tuple[GroupResult, dict[tuple[str, str, str], float]]:
        self.now += 15
        result = asyncio.run(self.collector.poll_group(self.inv, self.groups[0], self.now))
        values = {}
        for s in result.samples:
            d = dict(s.labels)
            values[(s.metric, d.get("device", ""), d.get("state", ""))] = s.value
        return result, values


def _v(values: dict[tuple[str, str, str], float], metric: str, device: str = "", state: str = "") -> Any:
    return values.get((metric, device, state))


def test_roles_read_only_and_lag_while_replay_paused(pg: Any) -> None:
    pair, inv, known, _ = pg
    pollers = [Poller(pair, inv, known, "ssh"), Poller(pair, inv, known, "sql")]
    for p in pollers:
        result, v = p.poll()
        assert result.verdict == "normal", [m.error for m in result.members]
        assert _v(v, "govnet_db_role", "dc-db-1", "primary") == 1
        assert _v(v, "govnet_db_role", "dc-db-2", "standby") == 1
        assert _v(v, "govnet_db_standby_read_only", "dc-db-2") == 1
        assert _v(v, "govnet_db_replication_streaming", "dc-db-2") == 1
        assert _v(v, "govnet_db_replication_lag_bytes", "dc-db-2") == 0
        assert _v(v, "govnet_ha_group_state", "", "normal") == 1
        assert _v(v, "govnet_db_standby_read_only", "dc-db-1") is None  # primary: not a standby
        assert result.events == []
    pair.primary.sql("INSERT INTO t (v) VALUES ('before pause')")  # a replayed commit to age from
    pair.wait_caught_up()
    pair.standby.sql("SELECT pg_wal_replay_pause()")
    try:
        pair.primary.sql("INSERT INTO t (v) SELECT repeat('x', 100) FROM generate_series(1, 2000)")
        lags = []
        for p in pollers:
            _, v = p.poll()
            assert _v(v, "govnet_db_wal_replay_paused", "dc-db-2") == 1
            lags.append(_v(v, "govnet_db_replication_lag_bytes", "dc-db-2"))
            assert lags[-1] > 100_000, lags  # 2000 rows of 100+ bytes at least
        pair.primary.sql("INSERT INTO t (v) SELECT repeat('y', 100) FROM generate_series(1, 2000)")
        _, v = pollers[0].poll()
        grown = _v(v, "govnet_db_replication_lag_bytes", "dc-db-2")
        assert grown > lags[0], (grown, lags)  # writes continue, replay paused: lag grows
        # seconds: age of the last replayed commit (the CREATE TABLE / earlier insert), > 0 while behind
        assert _v(v, "govnet_db_replication_lag_seconds", "dc-db-2") > 0
        print(
            f"lag while paused: {lags[0]:.0f} B -> {grown:.0f} B, "
            f"{_v(v, 'govnet_db_replication_lag_seconds', 'dc-db-2'):.2f} s"
        )
    finally:
        pair.standby.sql("SELECT pg_wal_replay_resume()")
    pair.wait_caught_up()
    _, v = pollers[1].poll()
    assert _v(v, "govnet_db_replication_lag_bytes", "dc-db-2") == 0
    assert _v(v, "govnet_db_replication_lag_seconds", "dc-db-2") == 0


def test_wrong_password_and_dead_node_are_kinds_without_secrets(pg: Any, monkeypatch: Any) -> None:
    from collectors.db.access import DbError, SqlReader

    pair, *_ = pg
    monkeypatch.setenv("GOVNET_TEST_WRONG_PW", "WRONG-pw-9f3")
    reader = SqlReader(
        pair.primary.address,
        DbAccess(
            transport="sql", port=pair.primary.port, password="env:GOVNET_TEST_WRONG_PW", sslmode="disable"
        ),
    )
    with pytest.raises(DbError) as exc:
        asyncio.run(reader.read())
    assert exc.value.kind == "auth" and "WRONG" not in str(exc.value)
    dead = SqlReader("127.31.0.250", DbAccess(transport="sql", port=9, sslmode="disable", timeout=2))
    with pytest.raises(DbError) as exc:
        asyncio.run(dead.read())
    assert exc.value.kind in ("refused", "timeout")


def test_db_status_command(pg: Any) -> None:
    import io
    import json

    from collectors.db.cli import db_status_command

    pair, _inv, known, _ = pg
    work = known.parent
    section = {
        "state_dir": ".",
        "db": {
            "access": {
                "dc-db-1": {"host": str(pair.primary.sockdir), "port": pair.primary.port},
                "dc-db-2": {
                    "transport": "sql",
                    "port": pair.standby.port,
                    "password": f"env:{PASS_ENV}",
                    "sslmode": "disable",
                },
            }
        },
    }
    config = work / "govnet.yaml"
    config.write_text(yaml.safe_dump({"inventory": "inventory.yaml", "ssh": section}))
    out = io.StringIO()
    assert db_status_command(config, as_json=True, out=out) == 0
    row = json.loads(out.getvalue())
    assert row["state"] == "normal"
    assert [(m["device"], m["role"]) for m in row["members"]] == [
        ("dc-db-1", "primary"),
        ("dc-db-2", "standby"),
    ]
    assert row["members"][1]["read_only"] is True and row["members"][1]["receiver"] == "streaming"
    assert pair.monitor_password not in out.getvalue()
    out = io.StringIO()
    assert db_status_command(config, out=out) == 0 and out.getvalue().startswith("dc-db: normal")


def test_standby_down_then_promote_split_brain_then_failed_over(pg: Any) -> None:
    pair, inv, known, _ = pg
    p = Poller(pair, inv, known, "ssh")
    assert p.poll()[0].verdict == "normal"
    pair.standby.stop()
    result, v = p.poll()
    assert result.verdict == "degraded"
    assert _v(v, "govnet_db_role", "dc-db-2", "down") == 1 and _v(v, "govnet_db_up", "dc-db-2") == 0
    pair.standby.start()
    pair.wait_caught_up()
    assert p.poll()[0].verdict == "normal"
    pair.standby.promote()
    result, v = p.poll()  # reported within one poll
    assert result.verdict == "split_brain"
    assert _v(v, "govnet_ha_group_state", "", "split_brain") == 1
    kinds = {(e.kind, e.device) for e in result.events}
    assert ("db_role_changed", "dc-db-2") in kinds and ("db_split_brain", "dc-db-1,dc-db-2") in kinds
    assert _v(v, "govnet_db_role_changes_total", "dc-db-2") >= 1
    assert _v(v, "govnet_db_timeline", "dc-db-2") == 2  # promotion starts a new timeline
    pair.primary.stop()
    result, v = p.poll()
    assert result.verdict == "failed_over"
    assert _v(v, "govnet_db_role", "dc-db-1", "down") == 1
    assert _v(v, "govnet_db_role", "dc-db-2", "primary") == 1
    assert any(e.kind == "db_failover" for e in result.events)
