"""Headless Chromium (Debian `chromium`, driven by playwright) for the console tests: the `browser`
fixture (registered for every test by tests/conftest.py), a login helper, and the real API server
in a thread. Screenshots go to ARTIFACTS (tests/artifacts/, gitignored)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.support.paths import TESTS
from tests.support.require import require, require_cmd

if TYPE_CHECKING:  # playwright is imported in the fixture: a missing package fails there, loudly
    from collections.abc import Coroutine

    from playwright.sync_api import Browser, Dialog, Page, ViewportSize
    from starlette.types import ASGIApp

T = TypeVar("T")

ARTIFACTS = TESTS / "artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (contexts keep the tests' sessions apart)."""
    require_cmd("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "python package playwright")
        raise
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def login(
    browser: Browser, base: str, user: str, password: str, viewport: ViewportSize | None = None
) -> tuple[Page, list[str]]:
    """A page logged in through the console's form, and the messages of every dialog it opens (none
    expected: no device text ever runs as script)."""
    ctx = browser.new_context(viewport=viewport or DESKTOP, locale="zh-CN")
    page = ctx.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(base + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:500]
    return page, dialogs


@contextmanager
def serve(app: ASGIApp, host: str) -> Iterator[str]:
    """The app under uvicorn in a thread on `host` (an ephemeral port): its base URL while it runs."""
    import uvicorn  # the API's own server; imported here so browser-less users of this module stay light

    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(srv.serve()), daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if srv.started:
                break
            time.sleep(0.05)  # not Event().wait: a timed lock wait never returns under libfaketime
        assert srv.started, "uvicorn did not start"
        yield f"http://{host}:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)` in a thread of its own: playwright's sync API keeps an event loop running in
    the test's thread while a browser is open, where asyncio.run refuses to start a second one."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]
