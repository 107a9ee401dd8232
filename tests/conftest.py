"""Root conftest: under `make test` (GOVNET_STRICT=1) a skipped test is a failed test."""

from __future__ import annotations

import pytest

from tests.support.require import STRICT

# Shared fixtures: `browser` (headless Chromium).
pytest_plugins = ["tests.support.browser"]


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
