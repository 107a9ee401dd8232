"""schemathesis against the published OpenAPI spec: generated requests to every operation, no 5xx.

Each operation is called with a token of a role the policy table allows, so the handler (not the
guard) is exercised; examples are bounded to keep the run short on a shared machine.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import Case

from api.app import create_app
from api.policy import POLICY, Role
from tests.support.api_world import World, make_world
from tests.support.browser import serve

HOST = "127.34.0.31"
MAX_EXAMPLES = 8
# Operations that end the caller's own token or disable users: run them, but with a throwaway token.
PREFERRED = (Role.engineer, Role.oncall, Role.auditor, Role.admin)
# The spec writes `{path}` where the route says `{path:path}`.
TABLE = {(m, re.sub(r":\w+\}", "}", p)): roles for (m, p), roles in POLICY.items()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World, dict[str, object]]]:
    world = make_world(tmp_path_factory.mktemp("st"))
    app = create_app(world.state)
    with TestClient(app) as c:
        spec = c.get("/api/v1/openapi.json", headers=world.headers("auditor")).json()
    with serve(app, HOST) as base:
        yield base, world, spec


def test_no_server_errors(served: tuple[str, World, dict[str, object]]) -> None:
    base, world, spec = served
    schema = schemathesis.openapi.from_dict(spec)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    # An operation the spec cannot describe is an Err without .ok(): the test fails here, loudly.
    operations = [op.ok() for op in schema.get_all_operations()]  # type: ignore[union-attr]

    def check(strategy: SearchStrategy[Case[Any]], role: Role, label: str) -> None:
        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: Case[Any]) -> None:
            token = world.state.auth.issue(f"u-{role.value}", "api", 3600)[1]
            headers = {"Authorization": f"Bearer {token}"}
            resp = case.call(base_url=base, headers=headers, timeout=30)
            statuses[resp.status_code] += 1
            if resp.status_code >= 500:
                failures.append(f"{label} -> {resp.status_code}")

        run()

    assert len(operations) >= 25
    for op in operations:
        roles = TABLE.get((op.method.upper(), op.path), frozenset(Role))  # public: any token will do
        role = next(r for r in PREFERRED if r in roles)

        check(op.as_strategy(), role, op.label)
    calls = sum(statuses.values())
    print(f"\nschemathesis: {len(operations)} operations, {calls} calls, statuses {dict(statuses)}")
    assert failures == []
