"""Headless Chromium (Debian `chromium`, driven by playwright) against the real server: on-call logs in
and acknowledges an incident; the auditor searches and exports a log range; device text stays text.
Screenshots go to tests/artifacts/ (gitignored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from api.app import create_app
from logstore.export import verify_export
from logstore.signing import KeySpec
from logstore.stats import SECURITY_ROLES
from tests.support.api_world import EXPORT_KEY_ENV, PASSWORD, XSS, World, make_world
from tests.support.browser import ARTIFACTS, login, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser

HOST = "127.34.0.21"
DOWNLOAD_JS = (
    "h => { const a = document.createElement('a'); a.href = h; a.download = ''; "
    "document.body.append(a); a.click(); }"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World]]:
    world = make_world(tmp_path_factory.mktemp("browser"))
    with serve(create_app(world.state), HOST) as base:
        yield base, world


def test_oncall_acknowledges_an_incident(server: tuple[str, World], browser: Browser) -> None:
    base, world = server
    page, dialogs = login(browser, base, "u-oncall", PASSWORD)
    assert page.url.endswith("/incidents")
    card = page.locator("article#INC-000001")
    assert "III 较大" in card.locator(".badge").first.inner_text()
    assert "报告时限" in card.inner_text() and card.locator(".countdown").count() == 1
    page.screenshot(path=str(ARTIFACTS / "incidents-oncall.png"), full_page=True)
    card.locator("form.ack input[name=comment]").fill("已通知城关街道，正在排查光缆")
    card.locator("form.ack button").click()
    page.wait_for_load_state()
    assert "认领人: u-oncall" in page.locator("article#INC-000001").inner_text()
    inc = world.engine.incidents["INC-000001"]
    assert (inc.acked_by, inc.ack_comment) == ("u-oncall", "已通知城关街道，正在排查光缆")
    page.screenshot(path=str(ARTIFACTS / "incidents-acked.png"), full_page=True)
    page.goto(base + "/topology")
    assert page.locator("svg circle").count() == 133
    page.screenshot(path=str(ARTIFACTS / "topology.png"), full_page=True)
    page.goto(base + "/devices/acc-dongcheng-sq01")
    assert XSS in page.locator("td.devtext").first.inner_text()  # shown as text, never run
    assert page.locator("main script").count() == 0
    page.screenshot(path=str(ARTIFACTS / "device-script-sysdescr.png"))
    page.goto(base + "/incidents?lang=en")
    assert "Incidents" in page.locator("h1").inner_text()
    assert dialogs == []


def test_auditor_searches_and_exports_a_range(
    server: tuple[str, World], browser: Browser, tmp_path: Path
) -> None:
    base, _ = server
    page, dialogs = login(browser, base, "u-auditor", PASSWORD)
    assert page.url.endswith("/logs")
    page.fill("#search input[name=from]", "2026-09-21T00:00:00Z")
    page.fill("#search input[name=to]", "2026-09-22T00:00:00Z")
    page.click("#search button")
    page.wait_for_load_state()
    rows = page.locator("table.logs tr")
    assert rows.count() == 42  # header + 41 records
    assert any(XSS in t for t in page.locator("table.logs td.devtext").all_inner_texts())
    page.click("#export button[type=submit]")
    page.wait_for_load_state()
    result = page.locator("#export-result")
    assert "41" in result.inner_text()
    page.screenshot(path=str(ARTIFACTS / "logs-export-auditor.png"), full_page=True)
    out = tmp_path / "export"
    out.mkdir()
    for link in result.locator("a").all():
        href = link.get_attribute("href")
        assert href is not None
        with page.expect_download() as dl:
            # Same as clicking the link with the download attribute: the browser saves the file.
            page.evaluate(DOWNLOAD_JS, href)
        dl.value.save_as(out / href.rsplit("/", 1)[1])
    check = verify_export(out, KeySpec("hmac-sha256", f"env:{EXPORT_KEY_ENV}"))
    assert check.ok and check.records == 41, check.problems
    assert dialogs == []


def test_log_audit_statistics_page(server: tuple[str, World], browser: Browser) -> None:
    """The 等保 statistics page: coverage of the security devices, retention, size, per device lines."""
    base, world = server
    page, dialogs = login(browser, base, "u-auditor", PASSWORD)
    page.goto(base + "/logs/stats")
    coverage = page.locator("#coverage").inner_text()
    security = [d for d in world.state.inventory.devices if d.role.value in SECURITY_ROLES]
    assert f"2 / {len(security)}" in coverage  # nc-fw-1 and nc-fw-2 sent logs in the last 24 h
    assert "nc-ips-1" in coverage  # named as silent, linked to its logs
    row = page.locator("#devices tr", has_text="nc-fw-1").first.inner_text()
    assert "40" in row and "正常上报" in row
    page.screenshot(path=str(ARTIFACTS / "logs-stats.png"))  # docs/logs-stats.png is a copy
    page.goto(base + "/logout")
    oncall, _ = login(browser, base, "u-oncall", PASSWORD)
    oncall.goto(base + "/logs/stats")
    assert "无权" in oncall.locator("main").inner_text()  # on-call staff: not a 等保 review role
    assert dialogs == []
