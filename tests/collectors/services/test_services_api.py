"""Service checks in the API and console: the list, one service with its last diff (escaped), baselines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from collectors.services.runner import ServiceChecker
from collectors.services.watch import BaselineRepo
from inventory.services import ServiceEntry
from tests.support.api_world import World, make_world
from tests.support.services_env import HOST, NAME, Nginx, Pki

PAGE = "<html><body><h1>某区人民政府</h1><p>政务公开</p>{extra}</body></html>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    root = tmp_path_factory.mktemp("svc-api")
    ng = Nginx(root / "nginx", Pki(root / "pki"))
    ng.page(PAGE.format(extra=""))
    ng.start()
    yield ng
    ng.stop()


def test_service_pages_and_baseline_acceptance(tmp_path: Path, site: Nginx) -> None:
    (tmp_path / "world").mkdir()
    world: World = make_world(tmp_path / "world", logstore=False)
    entry = {
        "name": "portal", "owner": {"unit": "区政府办公室", "site": "ncc"}, "type": "https",
        "target": f"https://{NAME}:{site.https_port}/", "address": HOST, "timeout": "5s",
        "tls": {"ca_file": str(site.pki.ca_file)}, "content": {},
    }  # fmt: skip
    checker = ServiceChecker([ServiceEntry.model_validate(entry).root], BaselineRepo(tmp_path / "baselines"))
    with TestClient(create_app(world.state)) as client:
        oncall, auditor = world.headers("oncall"), world.headers("auditor")
        assert client.get("/api/v1/services", headers=oncall).json() == {"items": [], "running": False}
        world.state.services = lambda: checker
        asyncio.run(checker.check_all())
        items = client.get("/api/v1/services", headers=oncall).json()["items"]
        assert [(i["name"], i["up"], i["content_changed"]) for i in items] == [("portal", True, False)]
        assert 300 < items[0]["cert_days_left"] < 400
        # The page changes; its new text carries markup, shown as text in the console.
        site.page(PAGE.format(extra="<p>&lt;script&gt;alert(1)&lt;/script&gt; 新通知</p>"))
        asyncio.run(checker.check_all())
        one = client.get("/api/v1/services/portal", headers=oncall).json()
        assert one["watch"]["changed"] and "+<script>alert(1)</script> 新通知" in one["watch"]["diff"]
        html = client.get("/services/portal", headers=oncall).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; 新通知" in html and "<script>alert(1)" not in html
        assert client.get("/services", headers=auditor).status_code == 200
        assert client.post("/api/v1/services/portal/baseline", headers=auditor).status_code == 403
        r = client.post("/api/v1/services/portal/baseline", headers=oncall)
        assert r.status_code == 200 and len(r.json()["commit"]) == 40
        assert client.get("/api/v1/services/nope", headers=oncall).status_code == 404
        asyncio.run(checker.check_all())
        one = client.get("/api/v1/services/portal", headers=oncall).json()
        assert not one["watch"]["changed"]
        assert [b["author"] for b in one["watch"]["baselines"]] == [
            "u-oncall <u-oncall@govnet>",
            "govnet <govnet@localhost>",
        ]
        _, rows = world.state.audit.page(0, 50, "u-oncall", "baseline_accept")
        assert rows and rows[0].outcome == "success"
