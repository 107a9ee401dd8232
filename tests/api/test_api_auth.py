"""Users, passwords, tokens, sessions, login rate limit, CSRF, X-Forwarded-For, the `user add` command."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import AuthDB, AuthError, LoginLimiter, check_password, hash_password
from api.cli import token_add_command, user_add_command
from tests.support.api_world import PASSWORD, World, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("auth"), logstore=False)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    world.state.limiter = LoginLimiter()
    with TestClient(create_app(world.state)) as c:
        yield c


def test_passwords_and_tokens_are_stored_hashed(world: World) -> None:
    raw = b"".join(p.read_bytes() for p in world.tmp.glob("users.db*"))
    assert PASSWORD.encode() not in raw
    for token in world.tokens.values():
        assert token.split("_", 2)[2].encode() not in raw
    rows = sqlite3.connect(world.tmp / "users.db").execute("SELECT pw_hash FROM users").fetchall()
    assert rows and all(r[0].startswith("scrypt$32768$8$1$") for r in rows)
    assert oct((world.tmp / "users.db").stat().st_mode & 0o777) == "0o600"


def test_password_hash_checks() -> None:
    stored = hash_password("a long enough password")
    assert check_password("a long enough password", stored)
    assert not check_password("a long enough passwore", stored)
    assert hash_password("x" * 12) != hash_password("x" * 12)  # salted
    assert not check_password("x", "md5$abc")


def test_no_default_password_and_weak_ones_refused(tmp_path: Path) -> None:
    db = AuthDB(tmp_path / "users.db")
    assert db.count_users() == 0  # a fresh install has no user at all, hence nothing to guess
    with pytest.raises(AuthError, match="at least 12"):
        db.add_user("admin", "admin", "admin")
    with pytest.raises(AuthError, match="role"):
        db.add_user("root", "superuser", "x" * 20)
    with pytest.raises(AuthError, match="user name"):
        db.add_user("../x", "admin", "x" * 20)


def test_user_add_command_creates_first_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVNET_TEST_ADMIN_PW", "first admin password 1")
    assert user_add_command(tmp_path, "root-admin", "admin", "env:GOVNET_TEST_ADMIN_PW") == 0
    out = capsys.readouterr()
    assert "first admin password" not in out.out + out.err
    db = AuthDB(tmp_path / "users.db")
    assert db.verify_login("root-admin", "first admin password 1") == "admin"
    assert user_add_command(tmp_path, "root-admin", "admin", "env:GOVNET_TEST_ADMIN_PW") == 2  # exists
    monkeypatch.setenv("GOVNET_TEST_ADMIN_PW", "short")
    assert user_add_command(tmp_path, "other", "admin", "env:GOVNET_TEST_ADMIN_PW") == 2
    assert "short" not in capsys.readouterr().err
    assert token_add_command(tmp_path, "root-admin", 1, "ci") == 0
    token = capsys.readouterr().out.strip()
    assert db.authenticate(token, "api") is not None
    trail = (
        sqlite3.connect(tmp_path / "audit.db").execute("SELECT action, target, outcome FROM audit").fetchall()
    )
    assert ("user_add", "root-admin", "success") in trail and (
        "token_add",
        token.split("_")[1],
        "success",
    ) in trail


def test_api_login_logout_and_token_expiry(client: TestClient, world: World) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "u-oncall", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["role"] == "oncall"
    h = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.get("/api/v1/me", headers=h).json()["user"] == "u-oncall"
    assert client.post("/api/v1/auth/logout", headers=h).status_code == 200
    assert client.get("/api/v1/me", headers=h).status_code == 401  # revoked
    short = world.state.auth.issue("u-oncall", "api", 100)[1]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {short}"}).status_code == 200
    world.clock.now += 101
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {short}"}).status_code == 401


def test_disabled_user_loses_tokens(client: TestClient, world: World) -> None:
    world.state.auth.add_user("temp-engineer", "engineer", PASSWORD)
    token = world.state.auth.issue("temp-engineer", "api", 3600)[1]
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/devices", headers=h).status_code == 200
    r = client.post("/api/v1/users/temp-engineer/disable", headers=world.headers("admin"))
    assert r.status_code == 200
    assert client.get("/api/v1/devices", headers=h).status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": "temp-engineer", "password": PASSWORD})
    assert r.status_code == 401


def test_login_rate_limited_per_user_and_xff_does_not_help(client: TestClient, world: World) -> None:
    for i in range(5):
        r = client.post(
            "/api/v1/auth/login",
            json={"username": "u-auditor", "password": "wrong"},
            headers={"X-Forwarded-For": f"10.9.9.{i}"},
        )
        assert r.status_code == 401
    # Now even the right password is refused, whatever X-Forwarded-For claims.
    r = client.post(
        "/api/v1/auth/login",
        json={"username": "u-auditor", "password": PASSWORD},
        headers={"X-Forwarded-For": "10.1.1.1"},
    )
    assert r.status_code == 429
    world.clock.now += 301  # the window passes
    assert (
        client.post("/api/v1/auth/login", json={"username": "u-auditor", "password": PASSWORD}).status_code
        == 200
    )
    _, rows = world.state.audit.page(0, 50, "u-auditor", "login")
    outcomes = [r.outcome for r in rows]
    assert outcomes.count("failure") >= 5 and "rate_limited" in outcomes and outcomes[0] == "success"
    assert all(r.client == "testclient" for r in rows)  # the TCP peer, never the header


def test_login_rate_limited_per_client_across_names(world: World) -> None:
    lim = LoginLimiter(per_user=5, per_client=20, window=300)
    for i in range(20):
        lim.failed(f"name{i}", "192.0.2.7", 1000.0)
    assert lim.blocked("fresh-name", "192.0.2.7", 1001.0)
    assert not lim.blocked("fresh-name", "192.0.2.8", 1001.0)
    assert not lim.blocked("fresh-name", "192.0.2.7", 1301.0)


def test_login_delays_grow_per_user_and_client_and_memory_is_bounded() -> None:
    lim = LoginLimiter(per_user=3, per_client=1000, window=300, max_delay=60, max_keys=50)
    waits = []
    now = 1000.0
    for _ in range(10):
        lim.failed("victim", "198.51.100.9", now)
        waits.append(lim.blocked("victim", "198.51.100.9", now))
        now += waits[-1]
    assert waits[:2] == [0.0, 0.0] and waits[2:6] == [1.0, 2.0, 4.0, 8.0] and max(waits) == 60.0
    assert not lim.blocked("victim", "198.51.100.10", now)  # the victim's own address is untouched
    lim.succeeded("victim", "198.51.100.10")  # a success elsewhere resets nothing of the attacker's
    assert lim.blocked("victim", "198.51.100.9", now - 1)
    # Refused attempts make one audit record per window, with their count.
    counts = [lim.throttled("victim", "198.51.100.9", now + i * 0.01) for i in range(500)]
    assert counts[0] == 1 and counts[1:] == [None] * 499
    assert lim.throttled("victim", "198.51.100.9", now + 61) == 500
    for i in range(5000):  # a spray of names from many clients: memory stays bounded
        lim.failed(f"n{i}", f"10.0.{i // 250}.{i % 250}", now)
    assert len(lim) <= 100


def test_console_login_sets_strict_cookie_and_csrf_is_required(client: TestClient) -> None:
    r = client.post(
        "/login",
        data={"username": "u-oncall", "password": PASSWORD, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/incidents"  # no open redirect
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = client.get("/incidents")
    assert page.status_code == 200
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    r = client.post("/incidents/INC-000002/ack", data={"comment": "no token"}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post(
        "/incidents/INC-000002/ack", data={"comment": "x", "csrf": "f" * 64}, follow_redirects=False
    )
    assert r.status_code == 403
    r = client.post(
        "/incidents/INC-000002/ack", data={"comment": "mine", "csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/incidents").status_code == 401


def test_console_401_page_links_to_login(client: TestClient) -> None:
    r = client.get("/devices/nc-core-1")
    assert r.status_code == 401 and 'href="/login?next=/devices/nc-core-1"' in r.text
    r = client.post("/login", data={"username": "u-oncall", "password": "nope"})
    assert r.status_code == 401 and "用户名或密码错误" in r.text
