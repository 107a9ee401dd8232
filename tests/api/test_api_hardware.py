"""Hardware inventory and link verification through the API and the console: JSON, CSV, XLSX, map."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from collectors.snmp.evaluate import evaluate
from collectors.snmp.profile import default_profiles
from collectors.snmp.snmprec import load_snmprec
from core.samples import Sample, labels_of
from tests.support.api_world import XSS, World, make_world
from tests.support.paths import DATA

SNMPREC = DATA / "snmprec"


def _recording_samples(world: World, device: str, recording: str) -> list[Sample]:
    """A real device's evaluated recording, published as one district device's latest poll."""
    d = world.state.inventory.device(device)
    base = dict(device=d.name, site=d.site, role=d.role.value, vendor=d.vendor.value)
    prof = default_profiles()["huawei"]
    ev = evaluate(prof, load_snmprec(SNMPREC / f"{recording}.snmprec"))
    now = world.clock.now
    return [Sample(s.metric, labels_of(**base, **dict(s.labels)), s.value, now) for s in ev.samples]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    w = make_world(tmp_path_factory.mktemp("api-hw"), logstore=False)
    latest = w.state.latest
    assert latest is not None
    latest.publish("nc-core-1", _recording_samples(w, "nc-core-1", "vrp_5720"))
    # A module whose name is a script and whose serial starts like a spreadsheet formula.
    d = w.state.inventory.device("nc-core-2")
    base = dict(device=d.name, site=d.site, role=d.role.value, vendor=d.vendor.value)
    module = labels_of(
        **base, entity="9", name=XSS, serial="=HYPERLINK(1)", model="LSU1", **{"class": "module"}
    )
    info = labels_of(**base, hardware="S12708", version="5.170 V200R019")
    latest.publish(
        "nc-core-2",
        [Sample("govnet_device_info", info, 1.0, 0.0), Sample("govnet_module_info", module, 1.0, 0.0)],
    )
    return w


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.state)) as c:
        yield c


def test_hardware_json_has_the_model_release_serial_and_boards(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/hardware", headers=world.headers("oncall"))
    assert r.status_code == 200
    rows = [x for x in r.json()["items"] if x["device"] == "nc-core-1"]
    assert rows[0]["item"] == "device"
    assert rows[0]["model"] == "S5720-56C-PWR-EI-AC" and rows[0]["release"] == "V200R010C00SPC600"
    assert rows[0]["serial"] == "2102359576DMHC000120"
    assert {x["item"] for x in rows[1:]} >= {"chassis", "module"}
    client.cookies.clear()  # no session left by another test of this module
    assert client.get("/api/v1/hardware").status_code == 401  # behind a role, like every route


def test_exports_are_safe_for_excel(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/hardware/export?format=csv", headers=world.headers("engineer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    core2 = [x for x in rows if x["device"] == "nc-core-2" and x["item"] != "device"]
    assert core2[0]["serial"] == "'=HYPERLINK(1)" and core2[0]["name"] == XSS  # data, never a formula
    r = client.get("/api/v1/hardware/export?format=xlsx", headers=world.headers("engineer"))
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        strings = z.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in sheet and "=HYPERLINK(1)" in strings and "S5720-56C-PWR-EI-AC" in strings
    assert (
        client.get("/api/v1/hardware/export?format=exe", headers=world.headers("engineer")).status_code == 422
    )


def test_console_page_escapes_device_text(client: TestClient, world: World) -> None:
    client.cookies.clear()
    login = client.post("/login", data={"username": "u-oncall", "password": "correct horse battery staple"})
    assert login.status_code in (200, 303)
    page = client.get("/hardware")
    assert page.status_code == 200
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    assert "V200R010C00SPC600" in page.text and "/hardware/export?format=xlsx" in page.text
    assert client.get("/hardware/export?format=csv").status_code == 200


def test_links_and_map_show_what_lldp_says(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/links", headers=world.headers("oncall"))
    assert r.status_code == 200
    body = r.json()
    # vrp_5720's neighbours are not district devices: nothing confirmed, all listed as undeclared.
    assert {x["remote_sysname"] for x in body["undeclared"]} == {"LNS-Huawei", "CE-NG", "Zrih", "pm-test"}
    states = {x["state"] for x in body["links"]}
    assert "confirmed" not in states and states <= {"missing", "wrong_port", "down", "unknown"}
    topo = client.get("/api/v1/topology", headers=world.headers("oncall")).json()
    assert all("lldp" in link for link in topo["links"])
    client.cookies.clear()  # the console map needs a session of its own (tests run in any order)
    login = client.post("/login", data={"username": "u-oncall", "password": "correct horse battery staple"})
    assert login.status_code in (200, 303)
    svg = client.get("/topology.svg")
    assert svg.status_code == 200 and "lldp-" in svg.text
