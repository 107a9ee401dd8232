"""A small running monitor for the API tests (no tests here): the example district with real
components — alert engine with SQLite state, log store, git config repository, auth database."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from alerts.engine import Engine
from alerts.oncall import EscalationPolicy, Rota
from alerts.persist import StateDB
from alerts.rules import DEFAULT_RULES, load_rules
from api.audit import LogStoreAudit, SqliteAudit
from api.auth import AuthDB
from api.state import ApiState
from collectors.ssh.configrepo import ConfigRepo
from core.latest import LatestStore
from core.samples import Sample, labels_of
from inventory.load import load_inventory
from inventory.topology import Topology
from logstore.record import new_record
from logstore.signing import KeySpec
from logstore.store import LogStore
from tests.support.paths import ROOT

DISTRICT = ROOT / "examples" / "district.yaml"
T0 = 1_790_000_000.0
XSS = "<script>alert('xss')</script>"
ROLES = ("admin", "engineer", "oncall", "auditor")
PASSWORD = "correct horse battery staple"
EXPORT_KEY_ENV = "GOVNET_TEST_API_EXPORT_KEY"


@dataclass
class Clock:
    """A settable clock shared by the engine, the auth database and the API."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """Everything a test needs: the ApiState and handles on the real components behind it."""

    state: ApiState
    clock: Clock
    engine: Engine
    store: LogStore | None
    tokens: dict[str, str] = field(default_factory=dict)  # role -> Bearer token
    expired: str = ""
    tmp: Path = Path()

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def device_samples(
    inv_devices: dict[str, tuple[str, str, str]], name: str, now: float, up: bool
) -> list[Sample]:
    site, role, vendor = inv_devices[name]
    lab = labels_of(device=name, site=site, role=role, vendor=vendor)
    return [Sample("govnet_up", lab, 1.0 if up else 0.0, now)]


def make_world(tmp: Path, logstore: bool = True, audit_in_logstore: bool = False) -> World:
    """The district with agg-chengguan down (its access sites unreachable), agg-dongcheng degraded,
    the firewall pair active/standby, an access switch whose sysDescr is a script tag, incidents fired."""
    clock = Clock()
    inv = load_inventory(DISTRICT)
    topo = Topology.from_inventory(inv)
    meta = {d.name: (d.site, d.role.value, d.vendor.value) for d in inv.devices}
    latest = LatestStore()
    engine = Engine(
        load_rules(DEFAULT_RULES),
        topo,
        escalation=EscalationPolicy(Rota(("张三", "李四", "王五"))),
        db=StateDB(tmp / "alerts.db"),
    )
    down = {"agg-chengguan", *topo.downstream("agg-chengguan")}

    def poll(now: float) -> None:
        for name in meta:
            samples = device_samples(meta, name, now, name not in down)
            base = dict(samples[0].labels)
            if name == "agg-dongcheng":
                ups = topo.uplinks_of["agg-dongcheng"]
                for ifname, up in ((ups[0].a_interface, 0.0), (ups[1].a_interface, 1.0)):
                    samples.append(Sample("govnet_if_oper_up", labels_of(**base, ifname=ifname), up, now))
            if name in ("nc-fw-1", "nc-fw-2"):
                mine = "active" if name == "nc-fw-1" else "standby"
                for st in ("active", "standby"):
                    samples.append(
                        Sample("govnet_ha_role", labels_of(**base, state=st), float(st == mine), now)
                    )
            if name == "acc-dongcheng-sq01":
                samples.append(
                    Sample("govnet_device_info", labels_of(**base, sysdescr=XSS, hardware="S2700"), 1.0, now)
                )
            latest.publish(name, samples)
            engine.publish(name, samples)

    for step in range(0, 16):
        now = T0 - 900 + step * 60
        poll(now)
        engine.evaluate(now)
    store = LogStore(tmp / "logs") if logstore else None
    if store is not None:
        recs = []
        for i in range(40):
            recs.append(
                new_record(
                    device="nc-fw-1",
                    event_type="policy_deny" if i % 2 else "admin_login",
                    src_ip=f"10.1.0.{i}",
                    dst_ip="10.255.0.9",
                    dst_port=22,
                    action="deny",
                    msg=f"line {i} deny tcp",
                    recv_ts=f"2026-09-21T0{i // 10}:{i % 10}0:00.000000Z",
                )
            )
        recs.append(
            new_record(
                device="nc-fw-2",
                event_type="other",
                msg=f"user {XSS} =cmd|' /C calc'!A0",
                recv_ts="2026-09-21T05:00:00.000000Z",
            )
        )
        store.append_batch(recs)
    repo = ConfigRepo(tmp / "configs")
    repo.save("nc-core-1", "sysname nc-core-1\nvlan 10\n", T0 - 7200)
    repo.save("nc-core-1", f"sysname nc-core-1\nvlan 10\nvlan 20\n description {XSS}\n", T0 - 3600)
    backups = tmp / "backups"
    (backups / "pgsql").mkdir(parents=True)
    (backups / "pgsql" / "dc-db-1.dump").write_bytes(b"PGDMP-backup")
    (tmp / "secret.txt").write_text("outside the backup root")
    (backups / "escape").symlink_to(tmp / "secret.txt")
    reports = tmp / "reports" / "2026-11"
    reports.mkdir(parents=True)
    (reports / "report.pdf").write_bytes(b"%PDF-1.7 monthly")
    (reports / "report.xlsx").write_bytes(b"PK xlsx")
    (reports.parent / "escape").mkdir()
    (reports.parent / "escape" / "report.pdf").symlink_to(tmp / "secret.txt")
    os.environ[EXPORT_KEY_ENV] = "test-export-key-0123456789"
    auth = AuthDB(tmp / "users.db", clock=clock)
    audit = (
        LogStoreAudit(store)
        if audit_in_logstore and store is not None
        else SqliteAudit(tmp / "audit.db", clock)
    )
    state = ApiState(
        inventory=inv,
        auth=auth,
        audit=audit,
        session_secret=b"test-session-secret",
        export_dir=tmp / "exports",
        latest=latest,
        engine=lambda: engine,
        logstore=lambda: store,
        config_repo=repo,
        backup_dir=backups,
        report_dir=reports.parent,
        export_key=KeySpec("hmac-sha256", f"env:{EXPORT_KEY_ENV}"),
        clock=clock,
    )
    world = World(state, clock, engine, store, tmp=tmp)
    for role in ROLES:
        auth.add_user(f"u-{role}", role, PASSWORD)
        world.tokens[role] = auth.issue(f"u-{role}", "api", 86400)[1]
    world.expired = auth.issue("u-admin", "api", 30)[1]
    clock.now += 60  # the 30-second token has expired, the others have not
    return world
