"""govnet HA pair end to end: two real `govnet run` processes share alert state in a real PostgreSQL 15.

One lab (127.42.1.x), one webhook receiver, one PostgreSQL (127.42.0.2), nodes A and B with the same
`alerts:` section (`state: {postgres: file:pg.dsn}`). A leads; an uplink fault pages once; the
incident is acknowledged and another device silenced through the operator commands (queued in
PostgreSQL); kill -9 of A; B takes over (time printed), sends no duplicate, keeps the ack and the
silence, and sends the resolved notice once when the fault clears.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from alerts.cli import ack_command, list_command, silence_command
from alerts.rules import DEFAULT_RULES
from lab.runner import LabProcess
from tests.support import db as db_support
from tests.support.alerting import fast_rules, inventory_doc
from tests.support.db import PgPair, make_pg_pair
from tests.support.govnet_run import GovnetNode, Hook, free_port, wait_for, webhook

HOST = "127.42.0.1"
PG_HOST = "127.42.0.2"
LAB_BASE = "127.42.1.0"
EVAL = 2.0  # evaluate_interval, seconds
AGG1_UPLINK = "GigabitEthernet1/0/48"  # agg-1's uplink to core-2 (the other goes to core-1)
AGG2_UPLINK = "GigabitEthernet1/0/48"


@dataclass
class Pair:
    tmp: Path
    pg: PgPair
    dsn: str
    password: str
    lab: LabProcess
    hook: Hook
    a: GovnetNode
    b: GovnetNode

    def state(self) -> dict[str, Any]:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert list_command(self.a.config, as_json=True, all_incidents=True) == 0
        return dict(json.loads(buf.getvalue()))

    def open_incidents(self) -> list[dict[str, Any]]:
        return [i for i in self.state()["incidents"] if i["resolved_at"] is None]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("ha_pair")
    saved = db_support.PG_ADDR
    db_support.PG_ADDR = (PG_HOST, "127.42.0.3")  # our loopback range
    pg_gen = make_pg_pair(with_standby=False)
    pg = next(pg_gen)
    lab: LabProcess | None = None
    nodes: list[GovnetNode] = []
    stack = contextlib.ExitStack()
    try:
        password = "ha-" + __import__("os").urandom(8).hex()
        pg.primary.sql(f"CREATE ROLE govnet LOGIN PASSWORD '{password}'")
        pg.primary.sql("CREATE DATABASE govnet OWNER govnet")
        dsn = f"host={PG_HOST} port={pg.primary.port} dbname=govnet user=govnet password={password}"
        (tmp / "pg.dsn").write_text(dsn + "\n")
        inv = tmp / "inventory.yaml"
        inv.write_text(yaml.safe_dump(inventory_doc(children=(), poll_interval="2s")), encoding="utf-8")
        fast_rules(tmp / "rules.yaml", for_="4s", keep_firing_for="2s")
        hook, hook_url = stack.enter_context(webhook(HOST))
        (tmp / "hook.url").write_text(hook_url + "\n")
        lab = LabProcess(
            inv, tmp / "lab", base=LAB_BASE, snmp_port=free_port(HOST), ssh_port=0, progress=None
        )
        lab.start()
        for name in ("a", "b"):
            port = free_port(HOST)
            config = {
                "inventory": str(lab.inventory_path),
                "prometheus": {"listen": f"{HOST}:{port}"},
                "scheduler": {"timeout": "1s", "retries": 1},
                "log_level": "warning",
                "alerts": {
                    "rules": ["rules.yaml"],
                    "state": {"postgres": "file:pg.dsn", "cluster": "test", "node": f"node-{name}"},
                    "evaluate_interval": f"{EVAL:.0f}s",
                    "rota": {"people": ["王工", "刘工"], "shift": "1d", "start": 0},
                    "escalate_after": {"I": "1h", "II": "1h", "III": "1h", "IV": "1h"},
                    "channels": [{"type": "webhook", "name": "hook", "url": "file:hook.url"}],
                    "route": ["hook"],
                    "retry": {"backoff": ["1s"], "give_up_after": "10m"},
                },
            }
            path = tmp / f"node-{name}.yaml"
            path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
            nodes.append(GovnetNode(path, f"http://{HOST}:{port}/metrics", tmp / f"node-{name}.log"))
        a, b = nodes
        a.start()
        wait_for(lambda: a.metric("govnet_ha_leader") == 1, 60, "node A leading")
        b.start()
        wait_for(lambda: b.metric("govnet_ha_leader") == 0, 60, "node B standing by")
        wait_for(lambda: a.metric("govnet_up") == 4 and b.metric("govnet_up") == 4, 60, "both polling")
        p = Pair(tmp, pg, dsn, password, lab, hook, a, b)
        wait_for(lambda: not p.open_incidents(), 60, "calm")
        time.sleep(EVAL)
        hook.clear()
        yield p
    finally:
        for node in nodes:
            node.stop()
        if lab is not None:
            lab.stop()
        stack.close()
        with contextlib.suppress(StopIteration):
            next(pg_gen)
        db_support.PG_ADDR = saved


def test_kill_leader_standby_takes_over_without_duplicate(pair: Pair) -> None:
    """Fault -> one page from A; ack + silence queued in PostgreSQL; kill -9 A; B leads within two
    evaluation intervals, pages nothing again, keeps ack and silence; resolved notice once."""
    a, b, hook = pair.a, pair.b, pair.hook
    assert a.metric("govnet_ha_leader") == 1 and b.metric("govnet_ha_leader") == 0

    pair.lab.fault("agg-1", "link_down", interface=AGG1_UPLINK)
    wait_for(lambda: [k for k in hook.kinds() if k[0] == "firing"], 40, "firing page")
    time.sleep(2 * EVAL)
    firing = [k for k in hook.kinds() if k[0] == "firing"]
    assert len(firing) == 1, hook.kinds()
    key = firing[0][1]
    inc = next(
        i for i in pair.open_incidents() if any(a["rule"] == "UplinkRedundancyLost" for a in i["alerts"])
    )

    # Operator actions, queued in PostgreSQL and applied by the leader (A).
    assert ack_command(a.config, inc["id"], "王工", "已派人排查", wait=15) == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert silence_command(b.config, ['device="agg-2"'], "1h", "刘工", "割接", wait=15) == 0
    silence_id = out.getvalue().split()[0]
    assert pair.state()["silences"][0]["id"] == silence_id

    # kill -9 the leader; PostgreSQL frees its advisory lock with the session.
    t0 = time.monotonic()
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    wait_for(lambda: b.metric("govnet_ha_leader") == 1, 20, "B leading", step=0.05)
    takeover = time.monotonic() - t0
    print(
        f"\n[ha] kill -9 of the leader -> standby leads after {takeover:.2f} s (evaluate_interval {EVAL} s)"
    )
    assert takeover <= 2 * EVAL + 1.0, takeover  # two intervals (+1 s for scrape and start-up jitter)
    assert b.metric("govnet_ha_leader_changes_total") == 1

    # B evaluates with the fault still there: no second page, the ack kept.
    time.sleep(3 * EVAL)
    assert [k for k in hook.kinds() if k[0] != "resolved"] == [("firing", key)], hook.kinds()
    kept = next(i for i in pair.state()["incidents"] if i["id"] == inc["id"])
    assert kept["acked_by"] == "王工" and kept["ack_comment"] == "已派人排查" and kept["resolved_at"] is None

    # The silence made through A holds on B: agg-2's redundancy alert fires but is muted, not paged.
    pair.lab.fault("agg-2", "link_down", interface=AGG2_UPLINK)

    def agg2_silenced() -> bool:
        alerts = pair.state()["alerts"]
        return any(
            x["labels"].get("device") == "agg-2" and x["state"] == "firing" and x["silenced_by"] == silence_id
            for x in alerts
        )

    wait_for(agg2_silenced, 30, "agg-2 alert firing and silenced on B")

    # The fault clears: the resolved notice goes out once, from B, naming the owner.
    pair.lab.clear("agg-1")
    pair.lab.clear("agg-2")
    wait_for(lambda: ("resolved", key) in hook.kinds(), 30, "resolved notice")
    time.sleep(2 * EVAL)
    assert hook.kinds() == [("firing", key), ("resolved", key)], hook.kinds()
    resolved = hook.accepted()[-1]
    assert "王工" in resolved["govnet"]["text"]

    # The notification log in PostgreSQL: every message sent exactly once, none left in flight.
    with psycopg.connect(pair.dsn) as conn:
        rows = conn.execute("SELECT key, channel, status, attempts FROM govnet_alert_deliveries").fetchall()
    assert rows and all(status == "sent" and attempts == 1 for _, _, status, attempts in rows), rows

    # A comes back: it stands by (B keeps the lock) and sends nothing.
    sent = len(hook.kinds())
    a.start()
    wait_for(lambda: a.metric("govnet_up") == 4, 60, "A polling again")
    time.sleep(2 * EVAL)
    assert a.metric("govnet_ha_leader") == 0 and b.metric("govnet_ha_leader") == 1
    assert len(hook.kinds()) == sent

    # The DSN's password never appears in either node's log.
    for node in (a, b):
        assert pair.password not in node.log_path.read_text(errors="replace")


def test_election_fencing_and_claims_on_real_postgres(pair: Pair) -> None:
    """One lock holder per cluster; a leader whose lock session died is fenced off (NotLeader); a
    delivery is claimed by exactly one of two stores; leftover `sending` claims are taken back."""
    from alerts.ha import PgLeaderElector
    from alerts.persist import NotLeader
    from alerts.persist_pg import PgStateDB

    pair.pg.primary.sql("CREATE DATABASE govnet_unit OWNER govnet")  # apart from the running pair's tables
    dsn = pair.dsn.replace("dbname=govnet", "dbname=govnet_unit")
    e1, e2 = PgLeaderElector(dsn, "unit", "n1"), PgLeaderElector(dsn, "unit", "n2")
    s1, s2 = PgStateDB(dsn, "n1"), PgStateDB(dsn, "n2")
    try:
        assert e1.check() and not e2.check() and e1.check()
        assert e1.backend_pid is not None
        s1.fence = (e1.backend_pid, e1.key)
        s1.save_evaluation({"INC-1": (True, "{}")}, 2, [("INC-1#1", "{}", 1.0)], None)
        s1.enqueue_deliveries(("hook", "mail"), 1.0)
        # Two stores race for one delivery: exactly one claim wins.
        s2.fence = None
        assert [s1.claim_delivery("INC-1#1", "hook", 2.0), s2.claim_delivery("INC-1#1", "hook", 2.0)] == [
            True,
            False,
        ]
        # n1's lock session dies (as when its host vanishes): the lock is free, n1's writes are refused.
        pair.pg.primary.sql(f"SELECT pg_terminate_backend({e1.backend_pid}, 5000)")
        with pytest.raises(NotLeader):
            s1.save_evaluation({}, 3, [], None)
        with pytest.raises(NotLeader):
            s1.claim_delivery("INC-1#1", "mail", 3.0)
        assert not e1.check()
        assert e2.check() and e2.changes == 1 and not e1.check()
        # n2 takes over: the claim n1 left `sending` goes back to pending (at-least-once), then is sent once.
        assert e2.backend_pid is not None
        s2.fence = (e2.backend_pid, e2.key)
        assert s2.recover_in_flight() == 1
        assert s2.claim_delivery("INC-1#1", "hook", 4.0)
        s2.set_delivery("INC-1#1", "hook", "sent", 1, 4.0, None)
        assert s2.delivery_status("INC-1#1") == {"hook": "sent", "mail": "pending"}
    finally:
        for e in (e1, e2):
            e.release()
        for s in (s1, s2):
            s.close()


def test_unsaved_evaluation_is_derived_again_not_lost_or_doubled(pair: Pair) -> None:
    """A leader whose save is refused (fenced off) keeps nothing of that evaluation: the incident and
    its page are produced again, once, when saves work again."""
    from alerts.engine import Engine
    from alerts.ha import PgLeaderElector
    from alerts.persist import NotLeader
    from alerts.persist_pg import PgStateDB
    from alerts.rules import load_rules
    from core.samples import Sample, labels_of

    pair.pg.primary.sql("CREATE DATABASE govnet_unit2 OWNER govnet")
    dsn = pair.dsn.replace("dbname=govnet", "dbname=govnet_unit2")
    elector, store = PgLeaderElector(dsn, "unit2", "n"), PgStateDB(dsn, "n")
    try:
        assert elector.check() and elector.backend_pid is not None
        lead = (elector.backend_pid, elector.key)
        store.fence = lead
        engine = Engine(load_rules(DEFAULT_RULES), db=store)
        ups = labels_of(device="ups-1", site="idc", role="ups", vendor="generic")

        def step(t: float) -> list[str]:
            engine.publish("ups-1", [Sample("govnet_ups_on_battery", ups, 1.0, t)])
            return [n.dedup_key for n in engine.evaluate(t)]

        assert step(0.0) == []  # pending (for: 1m)
        store.fence = (-1, elector.key)  # leadership lost while evaluating
        with pytest.raises(NotLeader):
            step(61.0)  # would fire and page
        assert store.open_incidents() == [] and store.due_deliveries(1e9) == []
        store.fence = lead
        assert step(62.0) == []  # reloaded from the saved state: pending again, nothing invented
        assert step(123.0) == ["INC-000001#1"]
        assert step(124.0) == []
        assert store.enqueue_deliveries(("hook",), 124.0) == 1
        assert [r[0] for r in store.due_deliveries(124.0)] == ["INC-000001#1"]
    finally:
        elector.release()
        store.close()
