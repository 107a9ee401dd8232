"""`api:` section: validation, and uvicorn serving inside the asyncio loop of `govnet run`."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from api.auth import AuthDB
from api.service import ApiSection, ApiService, build
from core.config import validate_section
from core.latest import LatestStore
from inventory.load import load_inventory
from logstore.store import LogStore
from tests.support.api_world import DISTRICT

HOST = "127.34.0.11"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def section(tmp: Path, data: dict[str, object]) -> ApiSection:
    return validate_section(ApiSection, data, tmp, "api")


def test_section_errors_name_fields_and_never_echo_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r"api\.state_dir"):
        section(tmp_path, {"session_secret": "env:X"})
    with pytest.raises(ValueError, match=r"api\.session_secret") as err:
        section(tmp_path, {"state_dir": "s", "session_secret": "hunter2-literal"})
    assert "hunter2" not in str(err.value)
    with pytest.raises(ValueError, match=r"api\.bogus"):
        section(tmp_path, {"state_dir": "s", "session_secret": "env:X", "bogus": 1})
    with pytest.raises(ValueError, match=r"api\.listen"):
        section(tmp_path, {"state_dir": "s", "session_secret": "env:X", "listen": "nowhere"})


def test_serves_inside_the_loop_and_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVNET_TEST_SESSION_SECRET", "s" * 32)
    port = free_port()
    data: dict[str, object] = {
        "listen": f"{HOST}:{port}",
        "state_dir": "api-state",
        "session_secret": "env:GOVNET_TEST_SESSION_SECRET",
        "logstore_dir": "logs",
    }
    (svc,) = build(section(tmp_path, data), inventory=load_inventory(DISTRICT), latest=LatestStore())
    assert isinstance(svc, ApiService) and (tmp_path / "api-state").is_dir()
    db = AuthDB(tmp_path / "api-state" / "users.db")
    db.add_user("ops", "oncall", "a long password here")
    token = db.issue("ops", "api", 600)[1]

    async def scenario() -> tuple[int, int, dict[str, object], bool]:
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as client:
            for _ in range(100):
                try:
                    anon = (await client.get("/api/v1/health")).status_code
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            health = await client.get("/api/v1/health", headers={"Authorization": f"Bearer {token}"})
            await client.post(
                "/api/v1/auth/login",
                json={"username": "ops", "password": "wrong"},
                headers={"X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.9", "Forwarded": "for=10.9.9.9"},
            )
        stop.set()
        await asyncio.wait_for(task, 10)
        return anon, health.status_code, health.json(), task.done()

    anon, code, health, done = asyncio.run(scenario())
    assert (anon, code, done) == (401, 200, True)
    assert health["logstore"] is True and health["audit_backend"] == "logstore" and health["devices"] == 133
    assert (tmp_path / "logs" / "CLEAN").exists()  # the store the API opened was closed cleanly
    store = LogStore(tmp_path / "logs")
    logins = [r for r, _ in store.iter_records(event_type="audit") if r["action"] == "login"]
    store.close()
    assert [(r["user"], r["outcome"]) for r in logins] == [("ops", "failure")]
    assert logins[0]["src_ip"].startswith("127.")  # the TCP peer, not the 10.9.9.9 the headers claim
    with socket.socket() as s:  # the port was released
        s.bind((HOST, port))
