"""Headless Chromium against the real console: on-call staff open a defaced service, read the diff and
the findings, and accept the page as the new baseline (CSRF form, strict CSP, text stays text)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from api.app import create_app
from collectors.services.runner import ServiceChecker
from collectors.services.watch import BaselineRepo
from inventory.services import ServiceEntry
from tests.support.api_world import PASSWORD, make_world
from tests.support.browser import ARTIFACTS, login, run_async, serve
from tests.support.services_env import HOST as SITE_HOST
from tests.support.services_env import NAME, Nginx, Pki

if TYPE_CHECKING:
    from playwright.sync_api import Browser

HOST = "127.34.0.23"
PAGE = "<html><body><h1>某区人民政府</h1><p>政务公开</p>{extra}</body></html>"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Nginx]:
    ng = Nginx(tmp_path / "nginx", Pki(tmp_path / "pki"))
    ng.page(PAGE.format(extra=""))
    ng.start()
    yield ng
    ng.stop()


def test_oncall_reads_the_diff_and_accepts_a_baseline(tmp_path: Path, site: Nginx, browser: Browser) -> None:
    (tmp_path / "world").mkdir()
    world = make_world(tmp_path / "world", logstore=False)
    entry = {
        "name": "portal", "owner": {"unit": "区政府办公室", "site": "ncc"}, "type": "https",
        "target": f"https://{NAME}:{site.https_port}/", "address": SITE_HOST, "timeout": "5s",
        "tls": {"ca_file": str(site.pki.ca_file)}, "content": {},
    }  # fmt: skip
    checker = ServiceChecker([ServiceEntry.model_validate(entry).root], BaselineRepo(tmp_path / "baselines"))
    world.state.services = lambda: checker
    run_async(checker.check_all())
    injected = '<p>&lt;img src=x onerror=alert(1)&gt; 网上投注</p><script src="https://js.evil.example/x.js"></script>'
    site.page(PAGE.format(extra=injected))
    run_async(checker.check_all())
    with serve(create_app(world.state), HOST) as base:
        page, dialogs = login(browser, base, "u-oncall", PASSWORD)
        page.goto(base + "/services")
        row = page.locator("tr", has_text="portal")
        assert "已变化" in row.inner_text() and "js.evil.example" in row.inner_text()
        page.click("a[href='/services/portal']")
        page.wait_for_load_state()
        assert "新增外部脚本/框架域名: js.evil.example" in page.locator("main").inner_text()
        diff = page.locator("pre.diff").inner_text()
        assert "+<img src=x onerror=alert(1)> 网上投注" in diff  # the page's text, shown as text
        assert page.locator("main img").count() == 0
        page.screenshot(path=str(ARTIFACTS / "service-defaced.png"), full_page=True)
        page.click("form[action='/services/portal/baseline'] button")
        page.wait_for_load_state()
        assert "未变化" in page.locator("h2", has_text="页面内容").inner_text()
        assert "u-oncall <u-oncall@govnet>" in page.locator("table", has_text="commit").inner_text()
        assert dialogs == []
    repo = checker.repo
    assert repo is not None and repo.versions("portal")[0].author == "u-oncall <u-oncall@govnet>"
