"""Shared test helpers: real components are required under `make test` (GOVNET_STRICT=1)."""

from __future__ import annotations

import os
import shutil

import pytest

STRICT = os.environ.get("GOVNET_STRICT") == "1"


def require(condition: bool, what: str) -> None:
    """Fail loudly under `make test` when a real component is missing; skip (loudly) elsewhere."""
    if condition:
        return
    msg = f"REAL COMPONENT MISSING: {what}"
    if STRICT:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def require_cmd(*names: str) -> None:
    """Require each executable to be on PATH (or in /usr/sbin)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        require(found is not None, f"executable {name!r} (run ./scripts/system-deps.sh as root)")


def require_root() -> None:
    """Require root (network namespaces, raw sockets)."""
    require(os.geteuid() == 0, "root privileges (network namespaces)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under `make test` a skipped test is a failed test: nothing is silently left out."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"SKIPPED UNDER make test (GOVNET_STRICT=1) is a failure: {report.longrepr}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reverse", action="store_true", help="run the collected tests in reverse order (order independence)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--reverse`: every test must pass whatever ran before it (scripts/time-independence.sh)."""
    if config.getoption("--reverse"):
        items.reverse()
