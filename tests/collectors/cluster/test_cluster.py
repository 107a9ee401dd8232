"""Scale-out by sharding: the hash ring, the membership state machine, Scheduler.set_devices, the
PostgreSQL member store, and three real `govnet run` nodes sharing a lab fleet through PostgreSQL 15.

Loopback range 127.43.0.0/16: PostgreSQL 127.43.0.2, nodes' /metrics 127.43.0.11-13, lab 127.43.16.0+.
The end-to-end size is GOVNET_CLUSTER_DEVICES (default 150) polled every GOVNET_CLUSTER_INTERVAL s (5).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from collectors.base import PollResult, device_labels
from collectors.cluster.config import ClusterConfig
from collectors.cluster.membership import Member, Membership
from collectors.cluster.service import ClusterService, build
from collectors.cluster.store import MemberStore
from collectors.scheduler import Schedule, Scheduler, SchedulerSettings
from core.config import check_inputs, validate_section
from core.latest import LatestStore
from core.ring import HashRing
from core.samples import Sample
from core.secrets import Secret
from inventory.model import Defaults, Device, Inventory, SnmpV2c
from lab.runner import LabProcess
from lab.synth import synth_inventory
from tests.support.db import PgNode, as_postgres, free_port, require_postgres
from tests.support.procs import stop

PG_ADDR = "127.43.0.2"
NODE_ADDR = {"a": "127.43.0.11", "b": "127.43.0.12", "c": "127.43.0.13"}
LAB_BASE = "127.43.16.0"
N_DEVICES = int(os.environ.get("GOVNET_CLUSTER_DEVICES", "150"))
INTERVAL = float(os.environ.get("GOVNET_CLUSTER_INTERVAL", "5"))
HEARTBEAT = 1.0
MISSED = 3

NAMES = [f"sw{i:04d}" for i in range(1, 1501)]


# -- the ring (pure) --------------------------------------------------------------------------------


@pytest.mark.parametrize("members", [["a", "b", "c"], ["node-1", "node-2", "node-3", "node-4", "node-5"]])
def test_ring_balance_within_bound(members: list[str]) -> None:
    shares = HashRing(members).assign(NAMES)
    fair = len(NAMES) / len(members)
    assert sum(len(v) for v in shares.values()) == len(NAMES)
    # 200 virtual nodes: spread ~1/sqrt(200) = 7 % of the fair share; bound at 20 %.
    for m, keys in shares.items():
        assert abs(len(keys) - fair) <= 0.2 * fair, (m, len(keys), fair)


def test_ring_is_deterministic_and_order_free() -> None:
    one = HashRing(["a", "b", "c"]).assign(NAMES)
    two = HashRing(["c", "a", "b", "a"]).assign(NAMES)
    assert one == two
    assert HashRing([]).owner("sw0001") is None and HashRing([]).assign(["x"]) == {}
    with pytest.raises(ValueError):
        HashRing(["a"], vnodes=0)


def test_ring_join_and_leave_move_only_the_members_share() -> None:
    before = HashRing(["a", "b", "c"])
    after = HashRing(["a", "b", "c", "d"])
    moved = [n for n in NAMES if before.owner(n) != after.owner(n)]
    # Minimal movement: every moved key goes to the newcomer, about 1/4 of them.
    assert all(after.owner(n) == "d" for n in moved)
    assert 0.15 * len(NAMES) <= len(moved) <= 0.35 * len(NAMES)
    # Leaving: only the leaver's keys move, and they spread over the others.
    gone = HashRing(["a", "c"])
    for n in NAMES:
        if before.owner(n) != "b":
            assert gone.owner(n) == before.owner(n)
    receivers = {gone.owner(n) for n in NAMES if before.owner(n) == "b"}
    assert receivers == {"a", "c"}


# -- membership (pure, time passed in) ---------------------------------------------------------------


def test_membership_drops_a_silent_member_after_missed_heartbeats() -> None:
    m = Membership("a", heartbeat_interval=2.0, missed_heartbeats=3)
    rows = [Member("a", "x", 100.0), Member("b", "y", 100.0), Member("c", "z", 99.0)]
    ch = m.observe(rows, 100.0)
    assert ch is not None and ch.members == ("a", "b", "c") and ch.joined == ("a", "b", "c")
    assert m.observe(rows, 101.0) is None  # unchanged: no rebalance
    # b keeps beating, c falls silent: still live at 6 s (3 x 2 s), dropped just after.
    rows = [Member("a", "x", 105.0), Member("b", "y", 105.0), Member("c", "z", 99.0)]
    assert m.observe(rows, 105.0) is None
    ch = m.observe(rows, 105.01)
    assert ch is not None and ch.members == ("a", "b") and ch.left == ("c",) and ch.joined == ()
    # c comes back.
    ch = m.observe([*rows[:2], Member("c", "z", 106.0)], 106.0)
    assert ch is not None and ch.joined == ("c",) and ch.members == ("a", "b", "c")
    assert m.rebalances == 3
    # Long dead rows are garbage; self never is.
    old = [Member("a", "x", 0.0), Member("d", "w", 0.0), Member("b", "y", 200.0)]
    assert m.expired(old, 200.0) == ["d"]


def test_membership_counts_itself_live_before_its_row_is_read() -> None:
    m = Membership("a", 1.0, 3)
    ch = m.observe([], 10.0)
    assert ch is not None and ch.members == ("a",)
    with pytest.raises(ValueError):
        Membership("a", 0.0, 3)


# -- Scheduler.set_devices ---------------------------------------------------------------------------


def _dev(name: str, n: int, interval: float = 10.0) -> Device:
    return Device(
        name=name,
        site="ncc",
        role="access_switch",
        vendor="huawei",
        address=f"127.43.200.{n + 1}",
        poll_interval=interval,
    )


def test_schedule_remove_makes_pending_slots_stale() -> None:
    sched = Schedule(SchedulerSettings())
    sched.add("x", 10.0, 0.0)
    sched.add("y", 10.0, 0.0)
    assert sched.remove("x") and not sched.remove("x")
    due = [n for n, _ in sched.pop_due(20.0)]
    assert due == ["y"]


class _Slow:
    """A collector double whose polls take `delay` seconds (the scheduler is what is tested)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.started: list[str] = []

    async def poll(self, inventory: Inventory, device: Device, now: float) -> PollResult:
        self.started.append(device.name)
        await asyncio.sleep(self.delay)
        s = Sample("govnet_cpu_ratio", device_labels(device), 0.1, now)
        return PollResult(device.name, ok=True, samples=[s], varbinds=1)


class _Sink:
    def __init__(self) -> None:
        self.published: list[str] = []

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        self.published.append(device)


def test_set_devices_before_and_during_run() -> None:
    devs = [_dev(f"d{i}", i, interval=0.5) for i in range(6)]
    inv = Inventory(devices=devs)
    collector, sink = _Slow(0.3), _Sink()
    sched = Scheduler(inv, collector, sink, SchedulerSettings(max_concurrency=10))

    async def main() -> tuple[list[str], list[str]]:
        task = asyncio.create_task(sched.run())
        # Narrowed before the first poll (the cluster service does this in its first step).
        sched.set_devices(devs[:2], sched.clock())
        await asyncio.sleep(1.2)
        # Swap: d0 stays, d1 (maybe mid-poll) leaves, d2/d3 join.
        added, removed = sched.set_devices([devs[0], devs[2], devs[3]], sched.clock())
        cut = len(sink.published)
        await asyncio.sleep(1.5)
        sched.stop()
        await task
        assert sink.published[:cut] and set(sink.published[:cut]) <= {"d0", "d1"}
        assert "d1" not in sink.published[cut:]  # a poll of a dropped device is not published
        return added, removed

    added, removed = asyncio.run(main())
    assert added == ["d2", "d3"] and removed == ["d1"]
    assert {"d2", "d3", "d0"} <= set(sink.published)
    assert not {"d4", "d5"} & set(collector.started)
    assert set(sched.schedule.devices) == {"d0", "d2", "d3"}
    metrics = {s.metric: s.value for s in sched.internal_samples()}
    assert metrics["govnet_scheduler_devices"] == 3.0


# -- config -------------------------------------------------------------------------------------------


def _section(tmp_path: Path, data: dict[str, object]) -> ClusterConfig:
    return validate_section(ClusterConfig, data, tmp_path, "cluster")


def test_cluster_section_errors_name_fields_and_never_echo_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        _section(tmp_path, {"dsn": "postgresql://u:hunter2@db/x", "vnodes": 0, "bogus": 1})
    text = str(exc.value)
    assert "dsn" in text and "vnodes" in text and "bogus" in text and "hunter2" not in text
    unset = _section(tmp_path, {"dsn": "env:GOVNET_NOPE_DSN"})
    assert check_inputs(unset) == [
        (("dsn",), "secret env:GOVNET_NOPE_DSN: environment variable GOVNET_NOPE_DSN is not set")
    ]
    (tmp_path / "dsn").write_text("host=127.43.0.2 port=1 user=x\n")
    section = _section(tmp_path, {"dsn": "file:dsn", "node_id": "n1", "heartbeat_interval": "500ms"})
    assert check_inputs(section) == []  # `file:` relative to the config file's folder
    inv = Inventory(devices=[])
    sched = Scheduler(inv, _Slow(0.0), _Sink(), SchedulerSettings())
    svc = build(section, inventory=inv, scheduler=sched, latest=LatestStore())
    assert [s.name for s in svc] == ["cluster"]


# -- real PostgreSQL ----------------------------------------------------------------------------------


def make_pg() -> Iterator[PgNode]:
    """A private PostgreSQL 15 on 127.43.0.2 (test_db_support's pieces, this file's address)."""
    bindir = require_postgres()
    base = Path(tempfile.mkdtemp(prefix="govnet-cluster-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    shutil.chown(base, "postgres", "postgres")
    sock = base / "sock"
    sock.mkdir()
    shutil.chown(sock, "postgres", "postgres")
    node = PgNode(bindir, base / "a", sock, PG_ADDR, free_port(PG_ADDR))
    try:
        as_postgres(
            str(bindir / "initdb"), "-D", str(node.datadir), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        with open(node.datadir / "postgresql.conf", "a") as f:
            f.write("fsync = off\nsynchronous_commit = off\nshared_buffers = 16MB\nmax_connections = 30\n")
        (node.datadir / "pg_hba.conf").write_text(
            "local all all trust\nhost all postgres 127.0.0.0/8 trust\n"
        )
        node.start()
        yield node
    finally:
        node.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def pg() -> Iterator[PgNode]:
    """One PostgreSQL for this module."""
    yield from make_pg()


def _dsn(pg: PgNode) -> str:
    return f"host={pg.address} port={pg.port} user=postgres dbname=postgres"


def test_member_store_heartbeats_in_the_store_clock(pg: PgNode) -> None:
    async def main() -> None:
        a, b = MemberStore(_dsn(pg)), MemberStore(_dsn(pg))
        try:
            await asyncio.gather(a.beat("ta", "127.43.0.11:1"), b.beat("tb", "127.43.0.12:1"))
            rows, now = await a.beat("ta", "127.43.0.11:1")
            seen = {m.node_id: m for m in rows}
            assert {"ta", "tb"} <= set(seen) and seen["tb"].address == "127.43.0.12:1"
            m = Membership("ta", 1.0, 3)
            assert m.live(rows, now) == ("ta", "tb")
            # tb stops beating: 3 s later (in the database's clock) it is no longer live.
            pg.sql(
                "UPDATE govnet_members SET last_seen = last_seen - interval '4 seconds' WHERE node_id='tb'"
            )
            rows, now = await a.beat("ta", "127.43.0.11:1")
            assert m.live(rows, now) == ("ta",)
            await b.delete(["tb"])
            rows, _ = await a.beat("ta", "127.43.0.11:1")
            assert "tb" not in {r.node_id for r in rows}
            await a.delete(["ta"])
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


# -- three real govnet nodes over the lab --------------------------------------------------------------

_UP = re.compile(r'^govnet_up\{[^}]*device="([^"]+)"[^}]*\} (\S+)$', re.M)
_GAUGE = re.compile(r"^(govnet_cluster_\w+)\{[^}]*\} (\S+)$", re.M)


class Node:
    """One `govnet run` subprocess with a cluster section."""

    def __init__(self, node_id: str, workdir: Path, inventory: Path, dsn_env: dict[str, str]) -> None:
        self.node_id = node_id
        self.listen = f"{NODE_ADDR[node_id]}:{free_port(NODE_ADDR[node_id])}"
        self.config = workdir / f"node-{node_id}.yaml"
        self.log = workdir / f"node-{node_id}.log"
        self.env = {**os.environ, **dsn_env}
        cfg = {
            "inventory": str(inventory),
            "prometheus": {"listen": self.listen},
            "scheduler": {"max_concurrency": 128, "timeout": "2s", "retries": 1},
            "log_level": "info",
            "cluster": {
                "dsn": "env:GOVNET_CLUSTER_DSN",
                "node_id": node_id,
                "address": self.listen,
                "heartbeat_interval": f"{HEARTBEAT}s",
                "missed_heartbeats": MISSED,
                "share_state": True,
            },
        }
        self.config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (returns at once)."""
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "govnet", "run", "--config", str(self.config)],
                stdout=subprocess.DEVNULL, stderr=logf, stdin=subprocess.DEVNULL, env=self.env,
            )  # fmt: skip

    def cpu_seconds(self) -> float:
        """utime + stime of the process so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Send `sig` and wait; SIGKILL if it hangs. The exit code."""
        proc, self.proc = self.proc, None
        return stop(proc, timeout, sig)

    def scrape(self) -> tuple[dict[str, float], dict[str, float]] | None:
        """(device -> govnet_up, cluster gauges) from /metrics; None when not serving."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(f"http://{self.listen}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        ups = {m.group(1): float(m.group(2)) for m in _UP.finditer(text)}
        gauges = {m.group(1): float(m.group(2)) for m in _GAUGE.finditer(text)}
        return ups, gauges


def _view(nodes: dict[str, Node]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for nid, node in nodes.items():
        got = node.scrape()
        out[nid] = got[0] if got else {}
    return out


def _wait_for(
    nodes: dict[str, Node], expect: dict[str, set[str]], timeout: float
) -> tuple[float, dict[str, float]]:
    """Scrape until each node's govnet_up devices equal `expect[node]`; (seconds, first-seen per device)."""
    t0 = time.monotonic()
    first_seen: dict[str, float] = {}
    view: dict[str, dict[str, float]] = {}
    while time.monotonic() - t0 < timeout:
        view = _view(nodes)
        now = time.monotonic() - t0
        for nid, devs in expect.items():
            for d in devs & set(view.get(nid, {})):
                first_seen.setdefault(d, now)
        if all(set(view.get(nid, {})) == devs for nid, devs in expect.items()):
            return now, first_seen
        time.sleep(0.25 if N_DEVICES <= 300 else 0.5)
    diff = {
        nid: (len(set(view.get(nid, {})) - devs), len(devs - set(view.get(nid, {}))))
        for nid, devs in expect.items()
    }
    raise AssertionError(f"no convergence in {timeout:.0f} s; (extra, missing) per node: {diff}")


def _wait_state_owners(pg: PgNode, expect: dict[str, set[str]], timeout: float = 10.0) -> None:
    """Wait until govnet_device_state names the expected owner of every device."""
    want = {d: nid for nid, devs in expect.items() for d in devs}
    got: dict[str, str] = {}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = pg.sql("SELECT device || ' ' || node_id FROM govnet_device_state").splitlines()
        got = dict(r.split(" ", 1) for r in rows if r)
        if got == want:
            return
        time.sleep(0.5)
    wrong = sorted(d for d in want if got.get(d) != want[d])
    raise AssertionError(f"device state owners differ for {len(wrong)} devices, e.g. {wrong[:5]}")


def _check_exactly_once(view: dict[str, dict[str, float]], names: list[str]) -> None:
    sets = [set(v) for v in view.values()]
    union = set().union(*sets)
    assert union == set(names), f"unpolled: {sorted(set(names) - union)[:5]}"
    for i, a in enumerate(sets):
        for b in sets[i + 1 :]:
            assert not a & b, f"polled twice: {sorted(a & b)[:5]}"


@pytest.mark.slow
def test_three_nodes_shard_the_lab_and_take_over(tmp_path: Path, pg: PgNode) -> None:
    inv = synth_inventory(N_DEVICES, 2)
    inv["links"] = []  # sharding needs no topology; 2-port cores could not carry the uplinks anyway
    for d in inv["devices"]:
        d["poll_interval"] = INTERVAL
    src = tmp_path / "synth.yaml"
    src.write_text(yaml.safe_dump(inv, sort_keys=False), encoding="utf-8")
    names = [d["name"] for d in inv["devices"]]
    report: list[str] = [
        f"cluster e2e: {N_DEVICES} devices, interval {INTERVAL:g} s, heartbeat {HEARTBEAT:g} s x {MISSED}"
    ]

    t_lab = time.monotonic()
    with LabProcess(src, tmp_path / "lab", base=LAB_BASE, progress=None, start_timeout=300) as lab:
        report.append(f"lab start: {time.monotonic() - t_lab:.1f} s")
        inventory_path = lab.inventory_path
        env = {"GOVNET_CLUSTER_DSN": _dsn(pg)}
        nodes = {nid: Node(nid, tmp_path, inventory_path, env) for nid in ("a", "b", "c")}
        lab_cpu0 = float(lab.status()["cpu_s"])
        try:
            for node in nodes.values():
                node.start()
            ring3 = HashRing(["a", "b", "c"]).assign(names)
            expect3 = {nid: set(v) for nid, v in ring3.items()}
            took, _ = _wait_for(nodes, expect3, timeout=60 + 3 * INTERVAL)
            report.append(
                f"3 nodes converged: {took:.1f} s after start; shares {[len(v) for v in ring3.values()]}"
            )
            view = _view(nodes)
            _check_exactly_once(view, names)
            ups = [v for per in view.values() for v in per.values()]
            report.append(f"govnet_up=1 for {sum(1 for v in ups if v == 1.0)}/{len(ups)} devices")
            for nid, node in nodes.items():
                got = node.scrape()
                assert got is not None
                gauges = got[1]
                assert gauges["govnet_cluster_members"] == 3.0
                assert gauges["govnet_cluster_devices_owned"] == len(expect3[nid])
                assert gauges["govnet_cluster_store_up"] == 1.0
            _wait_state_owners(pg, expect3)  # each shard shares its devices' health for the leader

            # Phase 1: SIGTERM c. It leaves the table on the way out; a and b take its devices.
            ring2 = {nid: set(v) for nid, v in HashRing(["a", "b"]).assign(names).items()}
            assert nodes["c"].stop(signal.SIGTERM) == 0
            survivors = {nid: nodes[nid] for nid in ("a", "b")}
            took, first = _wait_for(survivors, ring2, timeout=6 * INTERVAL)
            moved = [first[d] for d in expect3["c"]]
            report.append(
                f"SIGTERM c: its {len(moved)} devices polled by a/b after max {max(moved):.1f} s "
                f"(median {sorted(moved)[len(moved) // 2]:.1f} s); converged {took:.1f} s"
            )
            _check_exactly_once(_view(survivors), names)
            assert max(moved) <= 2 * INTERVAL, report

            # Phase 2: c comes back; its devices move back to it and leave a and b.
            nodes["c"].start()
            took, first = _wait_for(nodes, expect3, timeout=30 + 4 * INTERVAL)
            back = [first[d] for d in expect3["c"]]
            report.append(f"restart c: devices back on c after max {max(back):.1f} s; converged {took:.1f} s")
            _check_exactly_once(_view(nodes), names)

            # Phase 3: kill -9 b. Its row stays until it misses 3 heartbeats; then a and c take over.
            ring_ac = {nid: set(v) for nid, v in HashRing(["a", "c"]).assign(names).items()}
            nodes["b"].stop(signal.SIGKILL)
            alive = {nid: nodes[nid] for nid in ("a", "c")}
            took, first = _wait_for(alive, ring_ac, timeout=6 * INTERVAL)
            moved = [first[d] for d in expect3["b"]]
            report.append(
                f"kill -9 b: its {len(moved)} devices polled by a/c after max {max(moved):.1f} s "
                f"(median {sorted(moved)[len(moved) // 2]:.1f} s); converged {took:.1f} s"
            )
            _check_exactly_once(_view(alive), names)
            assert max(moved) <= 2 * INTERVAL, report
            _wait_state_owners(pg, ring_ac)
            cpu = {nid: node.cpu_seconds() for nid, node in alive.items()}
            lab_cpu = float(lab.status()["cpu_s"]) - lab_cpu0
            report.append(f"CPU s: nodes {cpu}, lab {lab_cpu:.1f}")
            logs = "".join(n.log.read_text(errors="replace") for n in nodes.values())
            assert "Traceback" not in logs
        finally:
            for node in nodes.values():
                node.stop(signal.SIGTERM)
            print("\n" + "\n".join(report))
    # Graceful leavers removed their rows; b's row (killed) is all that may remain.
    left = pg.sql("SELECT string_agg(node_id, ',' ORDER BY node_id) FROM govnet_members")
    assert left in ("", "b"), left


def test_set_devices_can_poll_taken_over_devices_at_once() -> None:
    devs = [_dev(f"d{i}", i, interval=60.0) for i in range(3)]
    sched = Scheduler(Inventory(devices=devs), _Slow(0.0), _Sink(), SchedulerSettings())
    sched.set_devices(devs[:1], 100.0)
    added, _ = sched.set_devices(devs, 100.0, poll_new_now=True)
    assert added == ["d1", "d2"]
    due = dict(sched.schedule.pop_due(100.0))
    # Taken-over devices are due now; the one kept stays on its phase of the 60 s grid.
    assert due == {"d1": 100.0, "d2": 100.0}
    assert sched.schedule.devices["d0"].next_due > 100.0


def test_two_services_shard_and_share_device_health_through_postgres(pg: PgNode) -> None:
    """Two ClusterServices (real PostgreSQL, real Schedulers not polling): shards and peer health."""
    devs = [_dev(f"h{i:02d}", i, interval=10.0) for i in range(20)]
    inv = Inventory(devices=devs, defaults=Defaults(snmp=SnmpV2c(community=Secret("env:UNUSED"))))
    os.environ["GOVNET_TEST_CLUSTER_DSN"] = _dsn(pg)

    def make(node: str) -> tuple[ClusterService, Scheduler, _Sink]:
        engine = _Sink()  # stands in for alerts' engine: the cluster service only calls publish()
        sched = Scheduler(inv, _Slow(0.0), _Sink(), SchedulerSettings())
        data = {"dsn": "env:GOVNET_TEST_CLUSTER_DSN", "node_id": node, "heartbeat_interval": "200ms",
                "share_state": True}  # fmt: skip
        section = ClusterConfig.model_validate(data)
        svc = build(section, inventory=inv, scheduler=sched, latest=LatestStore(), peer_sink=engine)[0]
        assert isinstance(svc, ClusterService)
        return svc, sched, engine

    a, sched_a, engine_a = make("sa")
    b, sched_b, engine_b = make("sb")

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(a.run(stop)), asyncio.create_task(b.run(stop))]
        try:
            for _ in range(50):
                await asyncio.sleep(0.1)
                if a.owned and b.owned and len(a.owned) + len(b.owned) == len(a.devices):
                    break
            assert set(a.owned).isdisjoint(b.owned)
            assert set(a.owned) | set(b.owned) == {d.name for d in a.devices}
            assert set(sched_a.schedule.devices) == set(a.owned)
            assert set(sched_b.schedule.devices) == set(b.owned)
            # a publishes a failed poll of one of its devices; b sees it within a few heartbeats.
            name = a.owned[0]
            dev = next(d for d in devs if d.name == name)
            a.publish(
                name,
                [Sample("govnet_up", device_labels(dev), 0.0, 1.0), Sample("govnet_cpu_ratio", (), 1, 1)],
            )
            b.publish(name, [Sample("govnet_up", device_labels(dev), 1.0, 1.0)])  # not b's: ignored
            for _ in range(30):
                await asyncio.sleep(0.1)
                if any(s.label_dict.get("device") == name for s in b.peer_samples()):
                    break
            seen = [s for s in b.peer_samples() if s.label_dict.get("device") == name]
            assert [(s.metric, s.value) for s in seen] == [("govnet_up", 0.0)]
            assert not any(s.label_dict.get("device") == name for s in a.peer_samples())
            # b's alert engine was given a's device as a polled device; a's engine never its own.
            assert name in engine_b.published and name not in engine_a.published
            assert set(engine_a.published) <= set(b.owned) and set(engine_b.published) <= set(a.owned)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    try:
        asyncio.run(main())
    finally:
        os.environ.pop("GOVNET_TEST_CLUSTER_DSN", None)
    assert pg.sql("SELECT count(*) FROM govnet_members WHERE node_id IN ('sa','sb')") == "0"


@pytest.mark.slow
def test_core_on_one_shard_children_on_both_pages_once(tmp_path: Path, pg: PgNode) -> None:
    """Topology-aware suppression across shards: core-1 is polled by node b (no alert engine), its 50
    children half by a and half by b; node a evaluates alerts over its own polls plus the health b
    shares through PostgreSQL. core-1 and every child die: exactly one page (CoreDeviceDown), and
    every child, on either shard, is DeviceUnreachable inhibited by core-1."""
    import contextlib
    import io
    import json
    from typing import Any

    from alerts.cli import list_command
    from tests.support.alerting import CHILDREN, fast_rules, inventory_doc
    from tests.support.govnet_run import webhook

    inv = inventory_doc()
    names = [d["name"] for d in inv["devices"]]
    ring = HashRing(["a", "b"])
    assert ring.owner("core-1") == "b"
    assert {ring.owner(c) for c in CHILDREN} == {"a", "b"}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inv), encoding="utf-8")
    fast_rules(tmp_path / "rules.yaml")
    stack = contextlib.ExitStack()
    hook, hook_url = stack.enter_context(webhook("127.43.0.20"))
    (tmp_path / "hook.url").write_text(hook_url + "\n")
    lab = LabProcess(
        tmp_path / "inventory.yaml", tmp_path / "lab", base="127.43.8.0", ssh_port=0, progress=None
    )
    env = {"GOVNET_CLUSTER_DSN": _dsn(pg)}
    nodes: dict[str, Node] = {}
    try:
        lab.start()
        nodes = {nid: Node(nid, tmp_path, lab.inventory_path, env) for nid in ("a", "b")}
        cfg = yaml.safe_load(nodes["a"].config.read_text())
        cfg["scheduler"] = {
            "timeout": "1s",
            "retries": 1,
            "unreachable_after": 3,
            "unreachable_recheck": "2s",
        }
        cfg["alerts"] = {
            "rules": [str(tmp_path / "rules.yaml")],
            "state_db": str(tmp_path / "alerts.db"),
            "evaluate_interval": "1s",
            "channels": [{"type": "webhook", "name": "hook", "url": f"file:{tmp_path / 'hook.url'}"}],
            "route": ["hook"],
        }
        nodes["a"].config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")

        def state() -> dict[str, Any]:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                assert list_command(nodes["a"].config, as_json=True, all_incidents=True) == 0
            return dict(json.loads(buf.getvalue()))

        for node in nodes.values():
            node.start()
        expect = {nid: set(v) for nid, v in ring.assign(names).items()}
        _wait_for(nodes, expect, timeout=60)
        end = time.monotonic() + 60
        while time.monotonic() < end:  # calm: all up on both shards, no open incident
            view = _view(nodes)
            if all(v == 1.0 for per in view.values() for v in per.values()) and not [
                i for i in state()["incidents"] if i["resolved_at"] is None
            ]:
                break
            time.sleep(1)
        time.sleep(3)
        before = len(hook.accepted())
        t0 = time.time()
        lab.fault("core-1", "dead")
        for name in CHILDREN:
            lab.fault(name, "dead")
        end = time.monotonic() + 45
        while time.monotonic() < end and len(hook.accepted()) == before:
            time.sleep(0.3)
        print(f"\ncross-shard core down -> page after {time.time() - t0:.1f} s")
        time.sleep(6)
        firing = [p for p in hook.accepted()[before:] if p["govnet"]["kind"] in ("firing", "update")]
        assert len(firing) == 1, [p["govnet"]["text"] for p in firing]
        assert {a["labels"]["alertname"] for a in firing[0]["alerts"]} == {"CoreDeviceDown"}
        assert firing[0]["commonLabels"]["device"] == "core-1"
        alerts = state()["alerts"]
        unreachable = {
            a["labels"]["device"]: a["inhibited_by"] for a in alerts if a["alert"] == "DeviceUnreachable"
        }
        assert unreachable == dict.fromkeys(CHILDREN, "core-1")
    finally:
        for node in nodes.values():
            node.stop()
        lab.stop()
        stack.close()
