"""HA pair state over the CLI: the pair verdict as a pure function, and real lab firewall pairs over SSH."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.ssh.cli import trust_command
from collectors.ssh.client import SshRunner, SshSettings
from collectors.ssh.ha import HaCollector, pair_state
from inventory.load import load_inventory
from inventory.model import Inventory
from lab.ssh import start_ssh_servers
from lab.state import LabDevice
from tests.support.loopthread import LoopThread

FAST = SshSettings(conn_timeout_s=3, banner_timeout_s=2, auth_timeout_s=3, read_timeout_s=10, deadline_s=20)


@pytest.mark.parametrize(
    ("observed", "verdict"),
    [
        (("active", "standby"), "normal"),
        (("standby", "active"), "failed_over"),
        (("active", "down"), "degraded"),
        (("down", "active"), "degraded"),
        (("standby", "down"), "down"),
        (("down", "down"), "down"),
        (("active", "active"), "split_brain"),
        (("standby", "standby"), "no_active"),
        (("unknown", "active"), "degraded"),
    ],
)
def test_pair_verdict(observed: tuple[Any, Any], verdict: str) -> None:
    assert pair_state([("active", observed[0]), ("standby", observed[1])]) == verdict
    # primary/secondary are the same expectations under another name
    assert pair_state([("primary", observed[0]), ("secondary", observed[1])]) == verdict


def _lab_device(name: str, vendor: str, octet: int, ha_role: str) -> LabDevice:
    return LabDevice(
        name=name, site="ncc", role="firewall", vendor=vendor, model="", address=f"127.27.1.{octet}",
        snmp_port=161, ssh_port=0, boot_time=time.time() - 86400, ha_role=ha_role, ha_group="pair",
    )  # fmt: skip


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, LabDevice], Inventory, Path]]:
    lab_devices = [
        _lab_device("asa-1", "cisco", 1, "active"),
        _lab_device("asa-2", "cisco", 2, "standby"),
        _lab_device("usg-1", "huawei", 3, "active"),
        _lab_device("usg-2", "huawei", 4, "standby"),
    ]
    loop = LoopThread()
    run_dir = tmp_path_factory.mktemp("ssh-ha")
    try:
        ssh = loop.run(start_ssh_servers(lab_devices, run_dir))
        try:
            password = f"file:{run_dir / 'secrets' / 'ssh_password'}"
            doc = {
                "sites": [{"name": "ncc", "kind": "control_centre"}],
                "devices": [
                    {"name": d.name, "site": "ncc", "role": "firewall", "vendor": d.vendor,
                     "address": d.address,
                     "ssh": {"username": "govnet", "password": password, "port": d.ssh_port}}
                    for d in lab_devices
                ],
                "ha_groups": [
                    {"name": "asa-pair", "kind": "firewall", "members": [
                        {"device": "asa-1", "expected_role": "active"},
                        {"device": "asa-2", "expected_role": "standby"}]},
                    {"name": "usg-pair", "kind": "firewall", "members": [
                        {"device": "usg-1", "expected_role": "primary"},
                        {"device": "usg-2", "expected_role": "secondary"}]},
                ],
            }  # fmt: skip
            known = run_dir / "govnet_known_hosts"
            inv_file = run_dir / "inv.yaml"
            inv_file.write_text(yaml.safe_dump(doc))
            inv = load_inventory(inv_file)
            for d in lab_devices:
                assert trust_command(inv_file, d.name, known) == 0
            yield {d.name: d for d in lab_devices}, inv, known
        finally:
            loop.run(ssh.close())
    finally:
        loop.stop()


def _poll(inv: Inventory, known: Path, group: str) -> tuple[str, dict[tuple[str, str], float]]:
    async def run() -> Any:
        runner = SshRunner(known, FAST)
        try:
            grp = next(g for g in inv.ha_groups if g.name == group)
            return await HaCollector(runner).poll_group(inv, grp, 1_700_000_000)
        finally:
            runner.close()

    verdict, samples = asyncio.run(run())
    values = {}
    for s in samples:
        labels = dict(s.labels)
        values[(s.metric, labels.get("device", "") + ":" + labels["state"])] = s.value
    return verdict, values


def test_asa_pair_normal_failover_degraded_split_brain(pairs: Any) -> None:
    lab, inv, known = pairs
    verdict, values = _poll(inv, known, "asa-pair")
    assert verdict == "normal"
    assert values[("govnet_ha_member_role", "asa-1:active")] == 1
    assert values[("govnet_ha_member_role", "asa-2:standby")] == 1
    assert values[("govnet_ha_group_state", ":normal")] == 1
    assert values[("govnet_ha_group_state", ":split_brain")] == 0
    try:
        lab["asa-1"].ha_role, lab["asa-2"].ha_role = "standby", "active"  # ha_failover fault
        assert _poll(inv, known, "asa-pair")[0] == "failed_over"
        lab["asa-1"].dead = True  # one member gone
        verdict, values = _poll(inv, known, "asa-pair")
        assert verdict == "degraded" and values[("govnet_ha_member_role", "asa-1:down")] == 1
        lab["asa-1"].dead = False
        lab["asa-1"].ha_role = "active"  # both think they are active
        verdict, values = _poll(inv, known, "asa-pair")
        assert verdict == "split_brain" and values[("govnet_ha_group_state", ":split_brain")] == 1
    finally:
        lab["asa-1"].dead = False
        lab["asa-1"].ha_role, lab["asa-2"].ha_role = "active", "standby"


def test_huawei_hrp_pair_reads_roles(pairs: Any) -> None:
    _lab, inv, known = pairs
    assert _poll(inv, known, "usg-pair")[0] == "normal"
