"""Past monthly reports in the API and console: listed and downloaded by engineer, auditor and admin only,
every download audited, nothing outside the report folder reachable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.api_world import World, make_world


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("reports_api"))


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.state)) as c:
        yield c


@pytest.mark.parametrize("role", ["auditor", "engineer", "admin"])
def test_readers_list_and_download_and_each_download_is_audited(
    client: TestClient, world: World, role: str
) -> None:
    h = world.headers(role)
    items = client.get("/api/v1/reports", headers=h).json()["items"]
    assert [i["path"] for i in items] == [
        "2026-11/report.xlsx",
        "2026-11/report.pdf",
    ]  # the symlink is not listed
    r = client.get("/api/v1/reports/files/2026-11/report.pdf", headers=h)
    assert r.status_code == 200 and r.content == b"%PDF-1.7 monthly"
    assert r.headers["content-type"] == "application/pdf"
    _, rows = world.state.audit.page(0, 100, f"u-{role}", None)
    assert [(a.action, a.target) for a in rows if a.action == "report_download"] == [
        ("report_download", "2026-11/report.pdf")
    ]
    page = client.get("/reports", headers=h)
    assert page.status_code == 200 and "2026-11/report.pdf" in page.text


def test_oncall_may_not_and_nothing_outside_the_folder(client: TestClient, world: World) -> None:
    assert client.get("/api/v1/reports", headers=world.headers("oncall")).status_code == 403
    h = world.headers("auditor")
    for attempt in ("escape/report.pdf", "../secret.txt", "2026-11/../../secret.txt", "%2e%2e/secret.txt"):
        assert client.get(f"/api/v1/reports/files/{attempt}", headers=h).status_code == 404, attempt
