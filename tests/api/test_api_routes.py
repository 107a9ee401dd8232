"""What the routes return and do, against the real engine, log store, git repository and files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerts.persist import StateDB
from api.app import create_app
from collectors.backup.verify import JobResult
from collectors.backup.verify import samples as backup_samples
from logstore.export import verify_export
from logstore.signing import KeySpec
from tests.support.api_world import EXPORT_KEY_ENV, XSS, World, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("routes"))


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.state)) as c:
        yield c


def test_device_status_from_samples_and_topology(client: TestClient, world: World) -> None:
    h = world.headers("oncall")
    d = client.get("/api/v1/devices/agg-chengguan", headers=h).json()
    assert d["status"] == "down" and d["last_poll"] is not None
    assert client.get("/api/v1/devices/acc-chengguan-sq01", headers=h).json()["status"] == "unreachable"
    deg = client.get("/api/v1/devices/agg-dongcheng", headers=h).json()
    assert deg["status"] == "degraded" and sorted(u["state"] for u in deg["uplinks"]) == ["down", "up"]
    fw = client.get("/api/v1/devices/nc-fw-1", headers=h).json()
    assert (fw["ha_group"], fw["ha_role"], fw["ha_expected"]) == ("nc-fw", "active", "active")
    page = client.get("/api/v1/devices?status=unreachable&limit=4&offset=8", headers=h).json()
    assert page["total"] == 10 and len(page["items"]) == 2
    assert client.get("/api/v1/devices?site=dc", headers=h).json()["total"] == 3
    assert client.get("/api/v1/devices/nope", headers=h).status_code == 404
    topo = client.get("/api/v1/topology", headers=h).json()
    assert any(link["state"] == "down" for link in topo["links"])


def test_incidents_ack_escalate_silence_are_persisted_and_audited(client: TestClient, world: World) -> None:
    h = world.headers("oncall")
    inc = client.get("/api/v1/incidents?status=open&level=III", headers=h).json()["items"]
    assert [i["id"] for i in inc] == ["INC-000001"]
    first = inc[0]
    acked_before = client.get("/api/v1/incidents?status=acked", headers=h).json()["total"]
    assert first["colour"] == "yellow" and first["report_deadline"] == first["opened_at"] + 4 * 3600
    assert first["alerts"][0]["runbook"], "runbook steps are shown"
    r = client.post("/api/v1/incidents/INC-000001/ack", json={"comment": "已派人前往城关汇聚点"}, headers=h)
    assert r.status_code == 200 and r.json()["acked_by"] == "u-oncall"
    r = client.post("/api/v1/incidents/INC-000001/escalate", json={"comment": "需要厂商支持"}, headers=h)
    assert r.status_code == 200 and r.json()["escalated_to"] in ("张三", "李四", "王五")
    r = client.post(
        "/api/v1/silences",
        headers=h,
        json={"matchers": ['device="agg-dongcheng"'], "duration_seconds": 3600, "comment": "割接"},
    )
    assert r.status_code == 201
    sid = r.json()["id"]
    bad = client.post(
        "/api/v1/silences", headers=h, json={"matchers": ["(("], "duration_seconds": 600, "comment": "x"}
    )
    assert bad.status_code == 422
    assert sid in {item["id"] for item in client.get("/api/v1/silences", headers=h).json()["items"]}
    assert client.get("/api/v1/incidents?status=acked", headers=h).json()["total"] == acked_before + 1
    # A second process reading the same SQLite file sees the ack, the silence and the escalation notice.
    db = StateDB(world.tmp / "alerts.db")
    stored = db.incident("INC-000001")
    assert (
        stored is not None and stored.acked_by == "u-oncall" and stored.ack_comment == "已派人前往城关汇聚点"
    )
    assert stored.escalation_step >= 1
    assert sid in {s.id for s in db.silences()}
    kinds = [r[0] for r in db.conn.execute("SELECT json_extract(doc, '$.kind') FROM outbox").fetchall()]
    assert "escalation" in kinds
    assert client.post(f"/api/v1/silences/{sid}/expire", headers=h).status_code == 200
    assert client.post("/api/v1/incidents/INC-404/ack", json={}, headers=h).status_code == 404
    _, rows = world.state.audit.page(0, 100, "u-oncall", None)
    actions = {r.action for r in rows}
    assert {"incident_ack", "incident_escalate", "silence_add", "silence_expire"} <= actions


def test_alerts_list(client: TestClient, world: World) -> None:
    items = client.get("/api/v1/alerts", headers=world.headers("engineer")).json()["items"]
    inhibited = [a for a in items if a["inhibited_by"]]
    assert any(a["alert"] == "AggregationDown" for a in items) and inhibited


def test_log_search_filters_and_paging(client: TestClient, world: World) -> None:
    h = world.headers("auditor")
    q = {"from": "2026-09-21T00:00:00Z", "to": "2026-09-21T02:00:00Z", "limit": 7}
    first = client.get("/api/v1/logs", params=q, headers=h).json()
    assert len(first["items"]) == 7 and first["next_after"] == first["items"][-1]["seq"]
    seqs = [r["seq"] for r in first["items"]]
    while first["next_after"]:
        first = client.get("/api/v1/logs", params={**q, "after_seq": first["next_after"]}, headers=h).json()
        seqs += [r["seq"] for r in first["items"]]
    assert len(seqs) == 20 and seqs == sorted(seqs)
    deny = client.get("/api/v1/logs", params={"event_type": "policy_deny", "limit": 500}, headers=h).json()
    assert len(deny["items"]) == 20 and {r["event_type"] for r in deny["items"]} == {"policy_deny"}
    txt = client.get("/api/v1/logs", params={"q": "SCRIPT"}, headers=h).json()
    assert [r["device"] for r in txt["items"]] == ["nc-fw-2"] and XSS in txt["items"][0]["msg"]
    assert client.get("/api/v1/logs", params={"event_type": "nope"}, headers=h).status_code == 422
    assert client.get("/api/v1/logs", params={"from": "yesterday"}, headers=h).status_code == 422


def test_export_verifies_offline_and_is_audited(client: TestClient, world: World) -> None:
    h = world.headers("auditor")
    body = {"from": "2026-09-21T00:00:00+08:00", "to": "2026-09-21T23:59:59+08:00", "format": "csv"}
    r = client.post("/api/v1/logs/exports", json=body, headers=h)
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["records"] == 41
    files = {}
    for name in exp["files"]:
        got = client.get(f"/api/v1/logs/exports/{exp['id']}/{name}", headers=h)
        assert got.status_code == 200
        files[name] = got.content
    out = world.tmp / "downloaded"
    out.mkdir()
    for name, data in files.items():
        (out / name).write_bytes(data)
    check = verify_export(out, KeySpec("hmac-sha256", f"env:{EXPORT_KEY_ENV}"))
    assert check.ok, check.problems
    rows = list(csv.reader(io.StringIO(files["records.csv"].decode())))
    assert rows[0][0] == "seq" and len(rows) == 42 and any(XSS in c for row in rows for c in row)
    (out / "records.csv").write_bytes(files["records.csv"].replace(b"line 3 deny", b"line 3 allow"))
    assert not verify_export(out, KeySpec("hmac-sha256", f"env:{EXPORT_KEY_ENV}")).ok
    listed = client.get("/api/v1/logs/exports", headers=h).json()["items"]
    assert exp["id"] in [e["id"] for e in listed]
    _, trail = world.state.audit.page(0, 100, "u-auditor", "log_export")
    assert trail and trail[0].target == exp["id"] and "records=41" in trail[0].detail
    bad = client.post("/api/v1/logs/exports", json={**body, "to": body["from"]}, headers=h)
    assert bad.status_code == 422
    _, trail = world.state.audit.page(0, 100, "u-auditor", "log_export")
    assert trail[0].outcome == "failure"


TRAVERSALS = [
    "../secret.txt",
    "..%2fsecret.txt",
    "%2e%2e/secret.txt",
    "pgsql/../../secret.txt",
    "escape",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "pgsql/%2e%2e%2f%2e%2e%2fsecret.txt",
    "....//secret.txt",
    "pgsql\\..\\..\\secret.txt",
    "pgsql/dc-db-1.dump%00.txt",
    "",
    ".",
    "pgsql",
]


@pytest.mark.parametrize("attempt", TRAVERSALS)
def test_backup_download_stays_in_root(client: TestClient, world: World, attempt: str) -> None:
    r = client.get(f"/api/v1/backups/files/{attempt}", headers=world.headers("engineer"))
    assert r.status_code in (404, 405, 422), (attempt, r.status_code)
    assert b"outside the backup root" not in r.content and b"root:" not in r.content


@pytest.mark.parametrize(
    "attempt",
    [
        "../../users.db",
        "..%2f..%2fusers.db",
        "20260101T000000Z-00000000/../../users.db",
        "x/%2e%2e%2f%2e%2e%2fusers.db",
        "20260101T000000Z-00000000/..%2f..%2fusers.db",
    ],
)
def test_export_download_stays_in_root(client: TestClient, world: World, attempt: str) -> None:
    for prefix in ("/api/v1/logs/exports/", "/logs/exports/"):
        r = client.get(prefix + attempt, headers=world.headers("auditor"))
        assert r.status_code in (404, 405, 422), (prefix + attempt, r.status_code)
        assert b"SQLite format" not in r.content


def test_backup_download_and_listing(client: TestClient, world: World) -> None:
    h = world.headers("engineer")
    r = client.get("/api/v1/backups/files/pgsql/dc-db-1.dump", headers=h)
    assert r.status_code == 200 and r.content == b"PGDMP-backup"
    listing = client.get("/api/v1/backups", headers=h).json()
    assert [f["path"] for f in listing["files"]["items"]] == [
        "pgsql/dc-db-1.dump"
    ]  # the symlink is not listed
    assert {j["name"] for j in listing["jobs"]} >= {"dc-db-1-daily", "netconf-daily"}


def test_backup_job_age_read_from_backup_job_label(client: TestClient, world: World) -> None:
    # Real producer samples: the job is named by `backup_job` (the host dc-db-1 has two jobs).
    inv = world.state.inventory
    job = next(j for j in inv.backup_jobs if j.name == "dc-db-1-daily")
    result = JobResult(job.name, job.mode, "ok", age_s=job.max_age + 60.0)
    latest = world.state.latest
    assert latest is not None
    latest.publish("backup-test", backup_samples(inv, job, result, world.clock.now))
    try:
        jobs = {
            j["name"]: j
            for j in client.get("/api/v1/backups", headers=world.headers("engineer")).json()["jobs"]
        }
    finally:
        latest.remove("backup-test")
    assert jobs["dc-db-1-daily"]["age"] == job.max_age + 60.0 and jobs["dc-db-1-daily"]["state"] == "stale"
    others = [j for name, j in jobs.items() if name != "dc-db-1-daily"]
    assert others and all(j["age"] is None for j in others)


def test_config_versions_and_diff(client: TestClient, world: World) -> None:
    h = world.headers("engineer")
    versions = client.get("/api/v1/configs/nc-core-1/versions", headers=h).json()
    assert versions["total"] == 2 and "changed" in versions["items"][0]["subject"]
    diff = client.get("/api/v1/configs/nc-core-1/diff", headers=h).text
    assert "+vlan 20" in diff and "-vlan 10" not in diff
    assert client.get("/api/v1/configs/..%2f..%2fetc/versions", headers=h).status_code == 404
    assert client.get("/api/v1/configs/nc-core-2/versions", headers=h).json()["total"] == 0


def test_user_and_token_admin(client: TestClient, world: World) -> None:
    h = world.headers("admin")
    pw = "new auditor pw 7"
    r = client.post(
        "/api/v1/users", json={"name": "new-auditor", "role": "auditor", "password": "p" * 14}, headers=h
    )
    assert r.status_code == 422 and "weak" in r.json()["detail"]  # one character repeated
    r = client.post(
        "/api/v1/users", json={"name": "new-auditor", "role": "auditor", "password": pw}, headers=h
    )
    assert r.status_code == 201
    r = client.post(
        "/api/v1/users", json={"name": "new-auditor", "role": "auditor", "password": pw}, headers=h
    )
    assert r.status_code == 409
    users = client.get("/api/v1/users", headers=h).json()["items"]
    assert "pw_hash" not in users[0] and "new-auditor" in {u["name"] for u in users}
    # The administrator cannot mint the auditor's token (三权分立); the refusal is audited as the admin.
    r = client.post("/api/v1/tokens", json={"user": "new-auditor", "days": 1, "label": "siem"}, headers=h)
    assert r.status_code == 403
    _, rows = world.state.audit.page(0, 5, "u-admin", "token_add")
    assert rows[0].outcome == "denied" and rows[0].target == "new-auditor"
    login = client.post("/api/v1/auth/login", json={"username": "new-auditor", "password": pw}).json()
    lh = {"Authorization": f"Bearer {login['token']}"}
    tok = client.post("/api/v1/tokens", json={"days": 1, "label": "siem"}, headers=lh).json()
    listed = client.get("/api/v1/tokens", headers=h).json()["items"]
    assert tok["id"] in {t["id"] for t in listed} and all(
        "token" not in t and "hash" not in t for t in listed
    )
    assert {t["user"] for t in listed if t["id"] == tok["id"]} == {"new-auditor"}
    ah = {"Authorization": f"Bearer {tok['token']}"}
    assert client.get("/api/v1/audit", headers=ah).status_code == 200
    assert client.post(f"/api/v1/tokens/{tok['id']}/revoke", headers=h).status_code == 200  # admin revokes
    assert client.get("/api/v1/audit", headers=ah).status_code == 401


def test_audit_records_are_sql_safe_and_chained(client: TestClient, world: World) -> None:
    h = world.headers("oncall")
    evil = "x'); DROP TABLE audit; --"
    client.post("/api/v1/incidents/INC-000002/ack", json={"comment": evil}, headers=h)
    _, rows = world.state.audit.page(0, 5, "u-oncall", "incident_ack")
    assert rows[0].detail == evil
    verify = getattr(world.state.audit, "verify", None)
    assert verify is not None and verify() == []


def test_openapi_published_and_health(client: TestClient, world: World) -> None:
    spec = client.get("/api/v1/openapi.json", headers=world.headers("auditor")).json()
    assert spec["openapi"].startswith("3.") and "/api/v1/incidents/{incident_id}/ack" in spec["paths"]
    assert not any(not p.startswith("/api/") for p in spec["paths"])
    health = client.get("/api/v1/health", headers=world.headers("auditor")).json()
    assert health["alert_engine"] and health["logstore"] and health["polled_devices"] == 133


def test_audit_into_logstore_when_shared(tmp_path: Path) -> None:
    w = make_world(tmp_path, audit_in_logstore=True)
    with TestClient(create_app(w.state)) as c:
        assert (
            c.post(
                "/api/v1/incidents/INC-000001/ack", json={"comment": "c"}, headers=w.headers("oncall")
            ).status_code
            == 200
        )
        rows = c.get("/api/v1/audit", headers=w.headers("auditor")).json()["items"]
    assert w.store is not None
    recs = [r for r, _ in w.store.iter_records(event_type="audit")]
    assert any(r["action"] == "incident_ack" and r["user"] == "u-oncall" for r in recs)
    assert rows[0]["action"] == "incident_ack" and w.store.verify() == []


def test_standby_node_answers_503_not_500(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a govnet HA standby the store fences writes (NotLeader): the API says where to act."""
    from alerts.persist import NotLeader

    def fenced(*_a: object, **_k: object) -> None:
        raise NotLeader("standby")

    monkeypatch.setattr(world.engine, "acknowledge", fenced)
    h = world.headers("oncall")
    r = client.post("/api/v1/incidents/INC-000001/ack", json={"comment": "x"}, headers=h)
    assert r.status_code == 503 and "standby" in r.json()["detail"]
