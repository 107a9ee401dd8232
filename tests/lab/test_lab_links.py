"""Link verification on the example district served by the lab: every declared link confirmed by LLDP,
and `govnet links discover` prints a link the inventory lacks as a fragment to paste."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path

import yaml

from collectors.links import verify
from collectors.snmp.collector import SnmpCollector
from core.samples import Sample
from inventory.load import load_inventory
from inventory.model import Inventory
from lab.runner import LabProcess
from tests.support.paths import EXAMPLES, GOVNET

LAB_BASE = "127.47.0.0"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.47.0.1", 0))
        return int(s.getsockname()[1])


def _poll_all(inv: Inventory) -> dict[str, list[Sample]]:
    collector = SnmpCollector(timeout_s=3.0, retries=2)
    sem = asyncio.Semaphore(16)

    async def one(d: object) -> tuple[str, list[Sample]]:
        async with sem:
            r = await collector.poll(inv, d, time.time(), 30.0)  # type: ignore[arg-type]
            assert r.ok, (r.device, r.error)
            return r.device, list(r.samples)

    async def go() -> dict[str, list[Sample]]:
        return dict(await asyncio.gather(*(one(d) for d in inv.devices)))

    return asyncio.run(go())


def test_district_links_confirmed_and_discover(tmp_path: Path) -> None:
    with LabProcess(
        EXAMPLES / "district.yaml",
        tmp_path / "lab",
        base=LAB_BASE,
        snmp_port=_free_udp_port(),
        ssh_port=0,
        progress=None,
        start_timeout=300,
    ) as lab:
        inv = load_inventory(lab.inventory_path)
        found = verify(inv, _poll_all(inv))
        assert len(found.links) == len(inv.links) > 100
        assert not [
            (c.link.a.device, c.link.a.interface, c.state) for c in found.links if c.state != "confirmed"
        ]
        assert found.undeclared == []
        # Drop one declared uplink from a copy of the inventory: discover finds exactly that cable.
        doc = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
        k = next(k for k, x in enumerate(doc["links"]) if not x.get("redundancy_group"))
        dropped = doc["links"].pop(k)
        partial = tmp_path / "partial.yaml"
        partial.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        out = subprocess.run(
            [str(GOVNET), "links", "discover", "--inventory", str(partial)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        fragment = yaml.safe_load(out.stdout)

        def ends(x: dict[str, dict[str, str]]) -> set[tuple[str, str]]:
            return {(x["a"]["device"], x["a"]["interface"]), (x["b"]["device"], x["b"]["interface"])}

        assert [ends(x) for x in fragment["links"]] == [ends(dropped)]
