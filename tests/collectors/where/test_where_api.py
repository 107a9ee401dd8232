"""GET /api/v1/where and the console's search box: roles, answers, clear 400s for malformed input,
links from security-log addresses, and the CLI's errors for the same inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from collectors.where.history import History
from collectors.where.resolve import Host
from collectors.where.service import WhereSection, WhereService
from collectors.where.tables import parse_mac
from tests.support.api_world import PASSWORD, XSS, World, make_world
from tests.support.paths import EXAMPLES

T1 = 1_790_000_000
HOST_IP, HOST_MAC = "10.1.0.7", "54:ee:75:12:34:56"
MALFORMED = [
    "10.1.0.300", "zz:zz:zz:zz:zz:zz", "54:ee:75:12:34", "54ee.7512.34567", "' OR 1=1 --", XSS,
    "10.1.0.7/24", "::g", "a" * 80, " ", "54:ee:75:12:34:56:78", "%00",
]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("whereapi")
    world = make_world(tmp)
    history = History(path=tmp / "where.db")
    mac = parse_mac(HOST_MAC)
    assert mac is not None
    # The host was on sq01 port 3, then moved to sq02 port 5; an XSS-looking port name is escaped.
    history.record({Host(HOST_IP, mac, "acc-chengguan-sq01", "GigabitEthernet0/0/3", 110)}, T1)
    history.record({Host(HOST_IP, mac, "acc-chengguan-sq02", "GigabitEthernet0/0/5", 110)}, T1 + 300)
    history.record({Host("10.1.0.8", 0x3C52A1000001, "acc-chengguan-sq02", XSS, 110)}, T1 + 300)
    svc = WhereService(world.state.inventory, WhereSection(state_dir=tmp), history)
    world.state.where = lambda: svc
    return world


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.state)) as c:
        yield c


@pytest.mark.parametrize("role", ["oncall", "engineer", "auditor"])
def test_where_answers_the_roles_that_trace_addresses(client: TestClient, world: World, role: str) -> None:
    r = client.get("/api/v1/where", params={"q": HOST_IP}, headers=world.headers(role))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (
        doc["location"]["device"] == "acc-chengguan-sq02"
        and doc["location"]["port"] == "GigabitEthernet0/0/5"
    )
    assert doc["location"]["site"] == "chengguan-sq02" and doc["location"]["vlan"] == 110
    assert [(h["device"], h["first_seen"], h["last_seen"]) for h in doc["history"]] == [
        ("acc-chengguan-sq02", T1 + 300, T1 + 300),
        ("acc-chengguan-sq01", T1, T1),
    ]
    assert doc["macs"] == [{"mac": HOST_MAC, "vendor": doc["macs"][0]["vendor"]}]
    assert doc["macs"][0]["vendor"]  # 54:ee:75 is registered (Wistron InfoComm)
    by_mac = client.get("/api/v1/where", params={"q": "54EE.7512.3456"}, headers=world.headers(role)).json()
    assert by_mac["location"]["port"] == "GigabitEthernet0/0/5"


def test_admin_and_anonymous_are_refused(client: TestClient, world: World) -> None:
    assert (
        client.get("/api/v1/where", params={"q": HOST_IP}, headers=world.headers("admin")).status_code == 403
    )
    assert client.get("/api/v1/where", params={"q": HOST_IP}).status_code == 401


@pytest.mark.parametrize("bad", MALFORMED)
def test_malformed_addresses_get_a_clear_400(client: TestClient, world: World, bad: str) -> None:
    r = client.get("/api/v1/where", params={"q": bad}, headers=world.headers("oncall"))
    assert r.status_code == 400, (bad, r.status_code, r.text)
    assert "MAC" in r.json()["detail"] and "address" in r.json()["detail"]
    page = client.get("/where", params={"q": bad}, headers=world.headers("oncall"))
    assert page.status_code == 400
    assert "where-error" in page.text and "<script>alert" not in page.text


def test_unknown_address_is_not_found_not_an_error(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/where", params={"q": "10.9.9.9"}, headers=world.headers("oncall"))
    assert r.status_code == 200 and r.json()["found"] is False and r.json()["location"] is None


def _login(client: TestClient, role: str) -> None:
    client.cookies.clear()
    r = client.post("/login", data={"username": f"u-{role}", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_console_search_box_and_log_addresses_link_to_where(client: TestClient, world: World) -> None:
    _login(client, "auditor")
    logs = client.get("/logs")
    assert logs.status_code == 200
    assert f'href="/where?q={HOST_IP}"' in logs.text  # a security-log source address links to "where"
    assert 'action="/where"' in logs.text  # the search box in the header
    page = client.get("/where", params={"q": HOST_IP})
    assert page.status_code == 200
    assert "acc-chengguan-sq02" in page.text and "GigabitEthernet0/0/5" in page.text
    other = client.get("/where", params={"q": "10.1.0.8"})
    assert XSS not in other.text and "&lt;script&gt;" in other.text
    _login(client, "admin")
    assert client.get("/where", params={"q": HOST_IP}).status_code == 403
    assert 'action="/where"' not in client.get("/devices").text
    client.cookies.clear()


def test_cli_refuses_malformed_input_with_a_clear_error(tmp_path: Path, world: World) -> None:
    cfg = tmp_path / "govnet.yaml"
    inv = EXAMPLES / "district.yaml"
    cfg.write_text(yaml.safe_dump({"inventory": str(inv), "where": {"state_dir": str(world.tmp)}}))
    for bad in ("10.1.0.300", "zz:zz:zz:zz:zz:zz", "' OR 1=1 --"):
        out = subprocess.run(
            [sys.executable, "-m", "govnet", "where", "--config", str(cfg), bad],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 2, out
        assert "not an IPv4/IPv6 address or a MAC address" in out.stderr and "Traceback" not in out.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "govnet", "where", "--config", str(cfg), HOST_MAC, "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["location"]["port"] == "GigabitEthernet0/0/5"
    text = subprocess.run(
        [sys.executable, "-m", "govnet", "where", "--config", str(cfg), HOST_IP],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "port: acc-chengguan-sq02 GigabitEthernet0/0/5 VLAN 110" in text.stdout
