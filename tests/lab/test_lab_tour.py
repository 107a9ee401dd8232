"""The guided tour's steps, planned from the example district: which faults on which devices."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inventory.load import load_inventory
from inventory.topology import Topology
from lab.tour import STEP_KEYS, STEPS, menu, plan
from tests.support.paths import EXAMPLES


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tour")
    shutil.copy(EXAMPLES / "district.yaml", d / "inventory.yaml")
    return d


def test_uplink_step_downs_one_of_two_uplinks_of_an_aggregation_point(run_dir: Path) -> None:
    step, device, reqs = plan(run_dir, "uplink")
    inv = load_inventory(run_dir / "inventory.yaml")
    assert inv.device(device).role.value == "aggregation_switch"
    [req] = reqs
    assert req["kind"] == "link_down"
    group = [lnk for lnk in inv.links if lnk.a.device == device and lnk.redundancy_group]
    assert len(group) == 2 and req["params"]["interface"] in {lnk.a.interface for lnk in group}
    assert step.look == "/incidents"


def test_core_step_silences_the_core_and_exactly_what_it_cuts_off(run_dir: Path) -> None:
    _, core, reqs = plan(run_dir, "core")
    inv = load_inventory(run_dir / "inventory.yaml")
    assert inv.device(core).role.value == "core_switch"
    dead = [r["device"] for r in reqs]
    assert all(r["kind"] == "dead" for r in reqs) and dead[0] == core
    behind = Topology.from_inventory(inv).assess(down=[core]).unreachable()
    assert set(dead[1:]) == behind and behind  # single-homed devices only: aggregation points stay up
    assert not any(inv.device(d).role.value == "aggregation_switch" for d in behind)


def test_failover_bruteforce_and_config_steps(run_dir: Path) -> None:
    _, fw, reqs = plan(run_dir, "failover")
    assert reqs == [{"op": "fault", "device": fw, "kind": "ha_failover", "params": {}}]
    _, fw2, reqs = plan(run_dir, "bruteforce")
    assert [r["kind"] for r in reqs] == ["login_failed", "login"] and reqs[0]["count"] >= 20
    assert {r["device"] for r in reqs} == {fw2}
    step, dev, reqs = plan(run_dir, "config")
    assert reqs[0]["kind"] == "config_change" and "acl number 3001" in reqs[0]["params"]["line"]
    assert step.look.format(device=dev) == f"/backups/{dev}"


def test_menu_lists_every_step_with_its_command(run_dir: Path) -> None:
    text = "\n".join(menu(run_dir, "govnet"))
    for key, s in zip(STEP_KEYS, STEPS, strict=True):
        assert f"govnet lab tour {key} --run-dir {run_dir}" in text and s.title in text
    assert f"govnet lab tour clear --run-dir {run_dir}" in text
    with pytest.raises(ValueError):
        plan(run_dir, "nonsense")
