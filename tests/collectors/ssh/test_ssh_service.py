"""The `ssh` section of `govnet run`, built from a section dict and run against real components:
lab vendor CLIs (config backup, firewall HA over the CLI) and a PostgreSQL pair behind a real sshd."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from collectors.ssh.cli import trust_command
from collectors.ssh.service import SshSection, SshService, build
from core.config import SectionError, validate_section
from inventory.load import load_inventory
from lab.ssh import start_ssh_servers
from lab.state import LabDevice
from tests.support.db import PgPair, Sshd, make_pg_pair, sshd  # noqa: F401  (fixture)
from tests.support.loopthread import LoopThread


def _fw(name: str, octet: int, role: str) -> LabDevice:
    return LabDevice(
        name=name,
        site="dc",
        role="firewall",
        vendor="huawei",
        model="",
        address=f"127.31.1.{octet}",
        snmp_port=161,
        ssh_port=0,
        boot_time=time.time() - 86400,
        ha_role=role,
        ha_group="fw",
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd) -> Iterator[Any]:  # noqa: F811
    gen = make_pg_pair()
    pair = next(gen)
    loop = LoopThread()
    run_dir = tmp_path_factory.mktemp("ssh-service")
    lab = [_fw("usg-1", 1, "active"), _fw("usg-2", 2, "standby")]
    try:
        ssh_lab = loop.run(start_ssh_servers(lab, run_dir))
        try:
            password = f"file:{run_dir / 'secrets' / 'ssh_password'}"
            doc = {
                "sites": [{"name": "dc", "kind": "datacentre"}],
                "devices": [
                    *(
                        {
                            "name": d.name,
                            "site": "dc",
                            "role": "firewall",
                            "vendor": "huawei",
                            "address": d.address,
                            "ssh": {"username": "govnet", "password": password, "port": d.ssh_port},
                        }
                        for d in lab
                    ),
                    *(
                        {
                            "name": n,
                            "site": "dc",
                            "role": "db_server",
                            "vendor": "linux",
                            "address": node.address,
                            "ssh": {
                                "username": "root",
                                "key_file": f"file:{sshd.client_key}",
                                "port": sshd.port,
                            },
                        }
                        for n, node in (("db-1", pair.primary), ("db-2", pair.standby))
                    ),
                ],
                "ha_groups": [
                    {
                        "name": "fw",
                        "kind": "firewall",
                        "members": [
                            {"device": "usg-1", "expected_role": "active"},
                            {"device": "usg-2", "expected_role": "standby"},
                        ],
                    },
                    {
                        "name": "db",
                        "kind": "database",
                        "members": [
                            {"device": "db-1", "expected_role": "primary"},
                            {"device": "db-2", "expected_role": "standby"},
                        ],
                    },
                ],
            }
            inv_file = run_dir / "inventory.yaml"
            inv_file.write_text(yaml.safe_dump(doc))
            known = run_dir / "state" / "known_hosts"
            for name in ("usg-1", "usg-2", "db-1", "db-2"):
                assert trust_command(inv_file, name, known) == 0
            yield {d.name: d for d in lab}, pair, load_inventory(inv_file), inv_file, run_dir
        finally:
            loop.run(ssh_lab.close())
    finally:
        loop.stop()
        for _ in gen:
            pass


def _section(pair: PgPair) -> dict[str, Any]:
    return {
        "state_dir": "state",
        "settings": {"banner_timeout": 3, "deadline": 30},
        "config_backup": {"every": "1d", "retry": "5m"},
        "ha": {"interval": "30s"},
        "db": {
            "interval": "15s",
            "default": {"transport": "ssh", "host": str(pair.primary.sockdir)},
            "access": {
                "db-1": {"host": str(pair.primary.sockdir), "port": pair.primary.port},
                "db-2": {"host": str(pair.standby.sockdir), "port": pair.standby.port},
            },
        },
    }


def _value(samples: list[Any], metric: str, **labels: str) -> float | None:
    for s in samples:
        d = s.label_dict
        if s.metric == metric and all(d.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def test_ssh_service_runs_all_three_jobs(world: Any) -> None:
    lab, pair, inv, _inv_file, run_dir = world
    (service,) = build(validate_section(SshSection, _section(pair), run_dir, "ssh"), inventory=inv)
    assert isinstance(service, SshService)
    assert [d.name for d in service.backup_devices] == [
        "usg-1",
        "usg-2",
    ]  # linux DB hosts have no CLI profile
    assert [g.name for g in service.ha_groups] == ["fw"] and [g.name for g in service.db_groups] == ["db"]

    changed: list[str] = []

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            deadline = time.monotonic() + 60
            while min(service.passes.values()) < 1 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            assert min(service.passes.values()) >= 1, service.passes
            check_first_pass()
            # A config change on a lab device: the next due backup stores exactly one new version.
            lab["usg-1"].config_extra.append("sysname usg-1-renamed")
            service.events.clear()
            await service.config_pass(time.time() + 86400 + 60)
            changed.extend(e.device for e in service.events if e.kind == "config_changed")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    def check_first_pass() -> None:
        samples = service.internal_samples()
        assert _value(samples, "govnet_config_backup_ok", device="usg-1") == 1
        assert _value(samples, "govnet_config_versions_total", device="usg-2") == 1
        assert _value(samples, "govnet_ha_group_state", group="fw", state="normal") == 1
        assert _value(samples, "govnet_ha_group_state", group="db", kind="database", state="normal") == 1
        assert _value(samples, "govnet_db_role", device="db-1", state="primary") == 1
        assert _value(samples, "govnet_db_replication_lag_bytes", device="db-2") == 0
        assert {e.kind for e in service.events} == {"config_changed"}  # first versions stored

    asyncio.run(go())
    assert changed == ["usg-1"]
    assert _value(service.internal_samples(), "govnet_config_versions_total", device="usg-1") == 2


def test_section_errors_name_the_field(world: Any) -> None:
    _lab, _pair, inv, _inv_file, run_dir = world

    def section(data: dict[str, Any]) -> SshSection:
        return validate_section(SshSection, data, run_dir, "ssh")

    with pytest.raises(ValueError, match=r"ssh\.db\.interval"):
        section({"db": {"interval": "often"}})
    unknown = section({"ha": {"groups": ["x"]}})
    assert unknown.problems(inv) == [(("ha", "groups", 0), "no HA group 'x' in the inventory")]
    with pytest.raises(SectionError, match=r"no HA group 'x'"):
        build(unknown, inventory=inv)
    with pytest.raises(ValueError, match=r"ssh\.db\.access\.db-1\.transport"):
        section({"db": {"access": {"db-1": {"transport": "telnet"}}}})
    with pytest.raises(ValueError, match=r"ssh\.bogus"):
        section({"bogus": 1})
