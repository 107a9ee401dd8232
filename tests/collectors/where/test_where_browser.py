"""From an IPS log line to the switch port in one click, in headless Chromium against the real server.

The lab runs the example district; the where service sweeps its ARP and forwarding tables over SNMP;
an IPS `attack` record naming one of the lab's hosts as source is in the security-log store. On-call
staff open the IPS's log lines, click the source address, and the console shows the host's switch
port. The screenshot is kept as tests/artifacts/where-ips-to-port.png (docs/images/ holds a copy).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from api.app import create_app
from collectors.where.history import History
from collectors.where.service import WhereSection, WhereService
from inventory.load import load_inventory
from logstore.record import new_record
from tests.support.api_world import PASSWORD, World, make_world
from tests.support.browser import ARTIFACTS, login, run_async, serve
from tests.support.paths import EXAMPLES
from tests.support.ports import lab_process

if TYPE_CHECKING:
    from playwright.sync_api import Browser

HOST = "127.34.16.21"


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("wherebrowser")
    world = make_world(tmp)
    with lab_process(EXAMPLES / "district.yaml", tmp, "127.20.112.0") as lab:
        inv = load_inventory(lab.inventory_path)
        svc = WhereService(inv, WhereSection(state_dir=tmp), History(path=tmp / "where.db"))
        run_async(svc.sweep_once())
        host = next(h for h in lab.request("hosts")["hosts"] if h["switch"] == "acc-chengguan-sq03")
    assert world.store is not None
    world.store.append_batch(
        [
            new_record(
                device="nc-ips-1", event_type="attack", src_ip=host["ip"], src_port=51514,
                dst_ip="10.255.0.9", dst_port=445, action="block",
                msg=f"IPS: SMB exploit attempt from {host['ip']} blocked",
                recv_ts=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(world.clock.now)),
            )
        ]
    )  # fmt: skip
    world.state.where = lambda: svc
    try:
        with serve(create_app(world.state), HOST) as base:
            yield base, world, host
    finally:
        svc.history.close()


def test_ips_log_address_to_switch_port_in_one_click(
    traced: tuple[str, World, dict[str, str]], browser: Browser
) -> None:
    base, _world, host = traced
    page, dialogs = login(browser, base, "u-oncall", PASSWORD)
    page.goto(base + "/logs?device=nc-ips-1")
    link = page.locator(f"table.logs a.where:text-is('{host['ip']}')").first
    page.screenshot(path=str(ARTIFACTS / "where-ips-log.png"))
    link.click()  # one click from the IPS line
    page.wait_for_load_state()
    assert "/where?q=" in page.url
    loc = page.locator("#where-location").inner_text()
    assert "acc-chengguan-sq03" in loc and host["port"] in loc and f"VLAN {host['vlan']}" in loc
    assert host["mac"] in page.locator("main").inner_text()
    assert "agg-chengguan Vlanif" in page.locator("main").inner_text()  # the gateway's ARP entry
    page.screenshot(path=str(ARTIFACTS / "where-ips-to-port.png"), full_page=True)
    # The search box in the header answers the same, by MAC.
    page.fill("header input[name=q]", host["mac"].upper().replace(":", "-"))
    page.click("header form.where-box button")
    page.wait_for_load_state()
    assert host["port"] in page.locator("#where-location").inner_text()
    assert dialogs == []
