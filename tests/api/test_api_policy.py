"""Every route of the app against the one policy table: no token, expired and forged tokens, each role.

Cases are generated from the app's route list, so a route added without a policy entry fails here.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.policy import POLICY, PUBLIC, Role
from tests.support.api_world import ROLES, World, make_world

SAMPLE_PARAMS = {
    "name": "nc-core-1",
    "incident_id": "INC-000001",
    "silence_id": "SIL-000000000000",
    "device": "nc-core-1",
    "path": "pgsql/dc-db-1.dump",
    "export_id": "20260101T000000Z-00000000",
    "filename": "manifest.json",
    "username": "nobody",
    "token_id": "0000000000000000",
}


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves (HEAD is GET's shadow)."""
    out = []
    for route in app.router.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, str(getattr(route, "path", ""))))
    return out


def unlisted(app: FastAPI) -> list[tuple[str, str]]:
    """Routes with neither a policy entry nor a public mark."""
    return [key for key in app_routes(app) if key not in POLICY and key not in PUBLIC]


def concrete(path: str) -> str:
    """A request path for a route template, with sample values for its parameters."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE_PARAMS.get(m.group(1), "app.css"), path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("policy"))


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.state)) as c:
        yield c


def call(client: TestClient, method: str, path: str, **kw: Any) -> int:
    body: dict[str, Any] = {"json": {}} if method == "POST" else {}
    return int(client.request(method, concrete(path), follow_redirects=False, **body, **kw).status_code)


def _route_cases() -> list[tuple[str, str]]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(make_world(Path(tmp)).state)
        return app_routes(app)


ROUTES = _route_cases()
PROTECTED = [r for r in ROUTES if r not in PUBLIC]


def test_every_route_has_a_policy_entry() -> None:
    assert ROUTES, "no routes found"
    assert [r for r in ROUTES if r not in POLICY and r not in PUBLIC] == []
    # and no stale policy entries for routes that no longer exist
    assert sorted(set(POLICY) | set(PUBLIC)) == sorted(set(ROUTES))


def test_a_route_without_policy_entry_is_detected_and_denied(world: World) -> None:
    app = create_app(world.state)

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "x"}

    assert unlisted(app) == [("GET", "/api/v1/forgotten")]
    with TestClient(app) as c:
        assert c.get("/api/v1/forgotten").status_code == 401
        for role in ROLES:  # fail closed: no role may call a route the table does not name
            assert c.get("/api/v1/forgotten", headers=world.headers(role)).status_code == 403


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_route_against_policy(client: TestClient, world: World, method: str, path: str) -> None:
    auth = world.state.auth
    real_id = world.tokens["admin"].split("_", 2)[1]
    forged = {
        "no token": {},
        "expired": {"headers": {"Authorization": f"Bearer {world.expired}"}},
        "known id, wrong secret": {
            "headers": {"Authorization": f"Bearer gvn_{real_id}_{secrets.token_urlsafe(32)}"}
        },
        "random token": {
            "headers": {"Authorization": f"Bearer gvn_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"}
        },
        "garbage": {"headers": {"Authorization": "Bearer ' OR 1=1 --"}},
        "basic auth": {"headers": {"Authorization": "Basic dS1hZG1pbjpwYXNz"}},
        "forged cookie": {"cookies": {"govnet_session": f"gvn_{real_id}_{secrets.token_urlsafe(32)}"}},
        "api token as cookie": {"cookies": {"govnet_session": world.tokens["admin"]}},
        "x-forwarded-for": {"headers": {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}},
    }
    for what, kw in forged.items():
        client.cookies.clear()
        for k, v in kw.get("cookies", {}).items():
            client.cookies.set(k, v)
        status = call(client, method, path, headers=kw.get("headers", {}))
        client.cookies.clear()
        assert status == 401, f"{what}: {method} {path} answered {status}"
    for role in Role:
        # A fresh token per call: a logout or disable in one case must not change another.
        token = auth.issue(f"u-{role.value}", "api", 3600)[1]
        status = call(client, method, path, headers={"Authorization": f"Bearer {token}"})
        if role in POLICY[(method, path)]:
            assert status not in (401, 403), f"{role}: {method} {path} refused ({status})"
            assert status < 500, f"{role}: {method} {path} failed ({status})"
        else:
            assert status == 403, f"{role}: {method} {path} answered {status}, policy forbids it"


def test_public_routes_work_without_credentials(client: TestClient) -> None:
    assert client.get("/login").status_code == 200
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.post("/api/v1/auth/login", json={"username": "x", "password": "y"}).status_code == 401


def test_policy_summary_counts(world: World) -> None:
    """Print the matrix size (figures for the report)."""
    calls = len(PROTECTED) * (9 + len(Role))
    print(
        f"\nroutes={len(ROUTES)} protected={len(PROTECTED)} "
        f"public={len(ROUTES) - len(PROTECTED)} calls={calls}"
    )
