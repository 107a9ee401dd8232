"""On-call from a phone: every notification links to its incident page; the page, its roles, its
acknowledge (which returns to it, and to nothing else), against the real engine and app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerts.config import AlertingConfig
from alerts.engine import Engine
from alerts.rules import load_rules
from api.app import create_app
from core.config import validate_section
from core.samples import Sample, labels_of
from tests.support.api_world import PASSWORD, World, make_world

RULE = """
rules:
  - alert: DeviceDown
    condition: {metric: govnet_up, op: "==", value: 0}
    level: II
    severity: critical
    summary: "{{ labels.device }} 不可达"
    runbook: [检查设备电源与上联]
"""


def parse_alerting(data: dict[str, str], base: Path) -> AlertingConfig:
    """The `alerts:` section as `govnet run` reads it."""
    return validate_section(AlertingConfig, data, base, "alerts")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("incident-page"))


@pytest.fixture()
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.state)) as c:
        yield c


def _login(client: TestClient, user: str) -> str:
    r = client.post("/login", data={"username": user, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/incidents?status=active")
    return str(page.text.split('name="csrf" value="')[1].split('"')[0])


@pytest.mark.parametrize("console_url", ["https://noc.example.gov.cn", "http://127.0.0.1:9820/", None])
def test_every_notification_links_to_its_incident_page(tmp_path: Path, console_url: str | None) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULE, encoding="utf-8")
    cfg = parse_alerting({"console_url": console_url} if console_url else {}, rules_file.parent)
    engine = Engine(load_rules(rules_file), console_url=cfg.console_url)
    labels = labels_of(device="core-1", site="ncc", role="core_switch", vendor="huawei")
    engine.publish("core-1", [Sample("govnet_up", labels, 0.0, 1000.0)])
    notes = engine.evaluate(1000.0)
    engine.publish("core-1", [Sample("govnet_up", labels, 1.0, 1060.0)])
    notes += engine.evaluate(1060.0)
    kinds = [n.kind for n in notes]
    assert kinds == ["firing", "resolved"], kinds
    for n in notes:
        if console_url is None:
            assert "/incidents/" not in n.text
            continue
        want = f"{console_url.rstrip('/')}/incidents/{n.incident_id}"
        assert n.text.splitlines()[-1] == f"详情与确认：{want}", n.text


def test_console_url_must_be_an_http_address(tmp_path: Path) -> None:
    for bad in ("javascript:alert(1)", "https://noc.example.gov.cn/x?y=1", "ftp://x", "https://a b"):
        with pytest.raises(ValueError, match="console_url"):
            parse_alerting({"console_url": bad}, tmp_path)


def test_incident_page_shows_one_incident_to_every_role_that_sees_the_board(
    client: TestClient, world: World
) -> None:
    assert client.get("/incidents/INC-000001", follow_redirects=False).status_code in (303, 401)
    _login(client, "u-auditor")
    page = client.get("/incidents/INC-000001")
    assert page.status_code == 200
    assert page.text.count('<article class="incident') == 1 and 'id="INC-000001"' in page.text
    assert 'name="viewport" content="width=device-width' in page.text
    assert 'form method="post" action="/incidents/INC-000001/ack"' not in page.text  # auditors only read
    assert client.get("/incidents/INC-999999").status_code == 404
    assert client.get("/incidents/%3Cscript%3E").status_code == 404


def test_acknowledge_from_the_page_returns_to_it_and_nowhere_else(client: TestClient, world: World) -> None:
    csrf = _login(client, "u-oncall")
    page = client.get("/incidents/INC-000002")
    assert 'name="back" value="/incidents/INC-000002"' in page.text
    r = client.post(
        "/incidents/INC-000002/ack",
        data={"comment": "手机上认领", "csrf": csrf, "back": "//evil.example/incidents/x"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/incidents#INC-000002"
    assert world.engine.incidents["INC-000002"].acked_by == "u-oncall"
    other = next(i for i, inc in world.engine.incidents.items() if inc.open and not inc.acked_by)
    r = client.post(
        f"/incidents/{other}/ack",
        data={"comment": "", "csrf": csrf, "back": f"/incidents/{other}"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{other}"
    assert "认领人: u-oncall" in client.get(f"/incidents/{other}").text
