"""Trap receiver against real net-snmp `snmptrap`/`snmpinform` (v2c and v3) on 127.28.0.0/16."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from collectors.base import PollResult
from collectors.scheduler import Scheduler, SchedulerSettings
from collectors.traps.defs import DefinitionError, TrapCatalog, load_files
from collectors.traps.service import TrapsConfig, TrapService, build
from core.config import validate_section
from core.fanout import FanOut
from core.latest import LatestStore
from inventory.model import Inventory
from tests.support.require import require_cmd

RECEIVER = "127.28.0.1"
AGG = "127.28.1.2"
FW = "127.28.1.3"
STRANGER = "127.28.1.99"
FW_ENGINE = "8000000001020304a1"
SECRETS = {
    "GV5_TRAP_COMMUNITY": "trap-c0mm",
    "GV5_TRAP_AUTH": "trap-auth-pass-1",
    "GV5_TRAP_PRIV": "trap-priv-pass-1",
    "GV5_POLL_COMMUNITY": "poll-c0mm",
}


def inventory() -> Inventory:
    return Inventory.model_validate(
        {
            "defaults": {
                "poll_interval": "1d",
                "snmp": {"version": "2c", "community": "env:GV5_POLL_COMMUNITY"},
            },
            "sites": [{"name": "s1"}],
            "devices": [
                {
                    "name": "agg-1",
                    "site": "s1",
                    "role": "aggregation_switch",
                    "vendor": "huawei",
                    "address": AGG,
                },
                {"name": "fw-1", "site": "s1", "role": "firewall", "vendor": "hillstone", "address": FW},
            ],
        }
    )


SECTION: dict[str, Any] = {
    "listen": f"{RECEIVER}:0",
    "communities": ["env:GV5_TRAP_COMMUNITY"],
    "v3_users": [
        {
            "user": "gvtrap",
            "auth_protocol": "sha256",
            "auth_key": "env:GV5_TRAP_AUTH",
            "priv_protocol": "aes128",
            "priv_key": "env:GV5_TRAP_PRIV",
        }
    ],
    "engine_ids": {"fw-1": FW_ENGINE},
}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)


def net_snmp_env() -> dict[str, str]:
    return {**os.environ, "MIBS": "", "MIBDIRS": "/nonexistent", "SNMPCONFPATH": "/nonexistent"}


async def send(*args: str) -> tuple[int, str]:
    """Run snmptrap/snmpinform; return code and stderr."""
    proc = await asyncio.create_subprocess_exec(
        *args, env=net_snmp_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode or 0, err.decode(errors="replace")


def v2c_trap(port: int, source: str, trap_oid: str, *extra: str, community: str = "trap-c0mm") -> list[str]:
    return [
        "snmptrap",
        "-v2c",
        "-c",
        community,
        f"--clientaddr={source}",
        f"{RECEIVER}:{port}",
        "",
        trap_oid,
        *extra,
    ]


LINKDOWN = ("1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.2", "i", "2", "1.3.6.1.2.1.2.2.1.8.2", "i", "2")


async def wait_for(cond: Any, limit: float = 5.0) -> bool:
    end = asyncio.get_running_loop().time() + limit
    while asyncio.get_running_loop().time() < end:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return bool(cond())


def test_catalog_is_data_and_matches_exact_text_and_prefix(tmp_path: Path) -> None:
    cat = TrapCatalog.load()
    assert cat.classify("1.3.6.1.6.3.1.1.5.3").name == "linkDown"
    assert cat.classify(".1.3.6.1.6.3.1.1.5.4").kind == "link"
    assert cat.classify("1.3.6.1.4.1.12356.101.2.0.401").kind == "ha"
    asa = "1.3.6.1.4.1.9.9.41.2.0.1"
    assert cat.classify(asa, ["%ASA-1-104001: (Primary) Switching to ACTIVE"]).name == "asaFailoverActive"
    assert cat.classify(asa, ["%ASA-6-302013: Built inbound"]).name == "clogMessageGenerated"
    assert cat.classify("1.3.6.1.4.1.2011.5.25.1").name == "huaweiEnterpriseTrap"
    assert cat.classify("1.3.6.1.4.1.20110.1").name == "unknown"  # not under 2011: no partial-arc match
    bad = tmp_path / "bad.yaml"
    bad.write_text("vendor: x\ntraps:\n  - {name: a, oid: 1.3.6.1, prefix: 1.3.6.1.4}\n")
    with pytest.raises(DefinitionError, match="exactly one of oid or prefix"):
        load_files([bad])


def parse_config(data: dict[str, Any]) -> TrapsConfig:
    return validate_section(TrapsConfig, data, Path("."), "traps")


def test_config_errors_name_fields_and_hide_secrets() -> None:
    with pytest.raises(ValueError, match=r"communities\.0") as exc:
        parse_config({"communities": ["public-literal"]})
    assert "public-literal" not in str(exc.value)
    with pytest.raises(ValueError, match="weak SNMPv3"):
        parse_config(
            {"v3_users": [{"user": "u", "auth_protocol": "md5", "auth_key": "env:A", "priv_key": "env:B"}]}
        )
    with pytest.raises(ValueError, match="unknown device"):
        build(
            parse_config({**SECTION, "engine_ids": {"nope": FW_ENGINE}}),
            inventory=inventory(),
            request_poll=None,
        )
    with pytest.raises(ValueError, match="engine_ids"):
        parse_config({**SECTION, "engine_ids": {"fw-1": "zz"}})


class RecordingCollector:
    """A collector that records when it was asked to poll (the scheduler under test is real)."""

    def __init__(self) -> None:
        self.polled: list[str] = []

    async def poll(self, inventory: Inventory, device: Any, now: float) -> PollResult:
        self.polled.append(device.name)
        return PollResult(device.name, ok=True)


def test_v2c_linkdown_trap_triggers_a_real_poll_and_unknown_sources_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_cmd("snmptrap", "snmpd")
    from collectors.snmp import SnmpCollector
    from collectors.snmp.netsnmpd import NetSnmpd

    caplog.set_level(logging.INFO)

    async def scenario(agent: NetSnmpd) -> None:
        inv = inventory()
        store = LatestStore()
        collector = SnmpCollector(timeout_s=1.0, retries=0)
        # The lab agent listens on a free port: point the device's credentials at it.
        agg = inv.device("agg-1")
        creds = {"version": "2c", "community": "env:GV5_POLL_COMMUNITY", "port": agent.port}
        inv = Inventory.model_validate(
            {
                **inv.model_dump(mode="json"),
                "devices": [
                    {**agg.model_dump(mode="json", exclude_none=True), "snmp": creds},
                    inv.device("fw-1").model_dump(mode="json", exclude_none=True),
                ],
            }
        )
        scheduler = Scheduler(
            inv,
            collector,
            FanOut([store]),
            SchedulerSettings(timeout=1.0, retries=0),
            devices=[inv.device("agg-1")],
        )
        svc = TrapService(inv, parse_config(SECTION), request_poll=lambda: scheduler.poll_now)
        rcv = svc.start()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(scheduler.run()), asyncio.create_task(svc.run(stop))]
        try:
            await asyncio.sleep(0.2)
            assert scheduler.schedule.devices["agg-1"].polls == 0  # 1-day interval: no poll of its own
            t0 = asyncio.get_running_loop().time()
            rc, err = await send(*v2c_trap(rcv.port, AGG, *LINKDOWN))
            assert rc == 0, err
            # A day-long interval: only the trap can cause this poll (no timing asserted: shared machine).
            assert await wait_for(lambda: scheduler.schedule.devices["agg-1"].polls == 1, 20.0)
            elapsed = asyncio.get_running_loop().time() - t0
            print(f"linkDown trap -> re-poll finished in {elapsed * 1000:.0f} ms")
            oper = [s for s in store.snapshot() if s.metric == "govnet_if_oper_up"]
            assert oper, "the re-poll of the real agent published interface states"
            ev = rcv.events[-1]
            assert (ev.device, ev.trap, ev.if_index, ev.version, ev.inform) == (
                "agg-1",
                "linkDown",
                2,
                "2c",
                False,
            )
            assert rcv.received[("agg-1", "linkDown")] == 1
            assert svc.repolls_total["agg-1"] == 1

            # Unknown source: counted and logged with escaped text, no poll asked for.
            evil = "\x1b[31mred\x07"
            rc, err = await send(
                *v2c_trap(rcv.port, STRANGER, "1.3.6.1.4.1.99999.0.1", "1.3.6.1.4.1.99999.1", "s", evil)
            )
            assert rc == 0, err
            assert await wait_for(lambda: rcv.unknown_source_total == 1)
            assert rcv.events[-1].device is None
            assert "\\x1b[31mred\\x07" in rcv.events[-1].varbinds[-1][1]
            assert any("unknown source 127.28.1.99" in r.getMessage() for r in caplog.records)
            assert not any("\x1b" in r.getMessage() for r in caplog.records)

            # Wrong community: rejected by pysnmp, counted, nothing recorded.
            before = len(rcv.events)
            rc, _ = await send(*v2c_trap(rcv.port, AGG, *LINKDOWN, community="wrong"))
            assert await wait_for(lambda: rcv.rejected().get("bad_community", 0) >= 1)
            assert len(rcv.events) == before

            names = {(s.metric, s.label_dict.get("trap")) for s in svc.internal_samples()}
            assert ("govnet_traps_received_total", "linkDown") in names
            assert ("govnet_traps_unknown_source_total", None) in names
        finally:
            stop.set()
            scheduler.stop()
            await asyncio.gather(*tasks)

    with NetSnmpd(AGG, community="poll-c0mm") as agent:
        asyncio.run(scenario(agent))


def test_v3_inform_is_acknowledged_and_v3_trap_maps_by_engine_id() -> None:
    require_cmd("snmpinform", "snmptrap")

    async def scenario() -> None:
        inv = inventory()
        svc = TrapService(inv, parse_config(SECTION))
        rcv = svc.start()
        try:
            v3 = [
                "-v3",
                "-u",
                "gvtrap",
                "-l",
                "authPriv",
                "-a",
                "SHA-256",
                "-A",
                "trap-auth-pass-1",
                "-x",
                "AES",
                "-X",
                "trap-priv-pass-1",
            ]
            # Inform from the firewall's address: snmpinform exits 0 only once our Response arrived.
            rc, err = await send(
                "snmpinform",
                *v3,
                "-r",
                "1",
                "-t",
                "2",
                f"--clientaddr={FW}",
                f"{RECEIVER}:{rcv.port}",
                "",
                "1.3.6.1.4.1.12356.101.2.0.401",
            )
            assert rc == 0, err
            ev = rcv.events[-1]
            assert (ev.device, ev.trap, ev.kind, ev.version, ev.inform) == (
                "fw-1",
                "fgTrapHaSwitch",
                "ha",
                "3",
                True,
            )
            assert rcv.informs_total == 1

            # A v3 TRAP (the sender is authoritative) from an address not in the inventory, but with the
            # firewall's engine ID: mapped to fw-1 by engine ID.
            rc, err = await send(
                "snmptrap",
                *v3,
                "-e",
                "0x" + FW_ENGINE,
                f"--clientaddr={STRANGER}",
                f"{RECEIVER}:{rcv.port}",
                "",
                "1.3.6.1.6.3.1.1.5.1",
            )
            assert rc == 0, err
            assert await wait_for(lambda: rcv.received.get(("fw-1", "coldStart")) == 1)

            # Wrong auth key: the inform is not acknowledged (snmpinform fails) and is counted.
            bad = [a if a != "trap-auth-pass-1" else "wrong-auth-pass" for a in v3]
            rc, _ = await send(
                "snmpinform", *bad, "-r", "0", "-t", "1", f"{RECEIVER}:{rcv.port}", "", "1.3.6.1.6.3.1.1.5.1"
            )
            assert rc != 0
            assert rcv.rejected().get("wrong_digest", 0) >= 1
            assert rcv.informs_total == 1
        finally:
            rcv.close()

    asyncio.run(scenario())


def capture_trap_bytes() -> bytes:
    """A real v2c linkDown datagram from snmptrap, captured on a plain UDP socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((RECEIVER, 0))
        s.settimeout(10)
        port = s.getsockname()[1]
        subprocess.run(v2c_trap(port, AGG, *LINKDOWN), env=net_snmp_env(), check=True, timeout=20)
        return s.recvfrom(65535)[0]


def test_fuzzed_datagrams_are_counted_and_the_receiver_keeps_working() -> None:
    require_cmd("snmptrap")
    valid = capture_trap_bytes()
    rng = random.Random(5)

    def mutants() -> list[bytes]:
        out = [b"", b"\x00", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\xff" * 1500, valid[:10], valid[:-3]]
        for _ in range(1500):
            m = bytearray(valid)
            for _ in range(rng.randint(1, 6)):
                m[rng.randrange(len(m))] = rng.randrange(256)
            out.append(bytes(m))
        out += [rng.randbytes(rng.randint(1, 600)) for _ in range(500)]
        return out

    async def scenario() -> None:
        inv = inventory()
        svc = TrapService(inv, parse_config(SECTION))
        rcv = svc.start()
        try:
            garbage = mutants()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((AGG, 0))
                for i, g in enumerate(garbage):
                    s.sendto(g, (RECEIVER, rcv.port))
                    if i % 50 == 0:
                        await asyncio.sleep(0.005)  # let the loop drain the socket buffer
                assert await wait_for(lambda: rcv.datagrams_total >= len(garbage) - 5, 20)
                before = rcv.received.get(("agg-1", "linkDown"), 0)
                s.sendto(valid, (RECEIVER, rcv.port))
                assert await wait_for(lambda: rcv.received.get(("agg-1", "linkDown"), 0) == before + 1)
            rejected = sum(rcv.rejected().values())
            print(
                f"fuzz: {len(garbage)} datagrams, rejected {rcv.rejected()}, "
                f"malformed {rcv.malformed_total}, "
                f"accepted mutants {before}"
            )
            assert rejected + rcv.malformed_total > 0
        finally:
            rcv.close()

    asyncio.run(scenario())


def test_generic_trap_counters_exist_at_zero_before_the_first_trap() -> None:
    """increase() needs the series before the first trap: it must exist at 0 for every device."""
    require_cmd("snmptrap")
    receiver, agg = "127.44.3.1", "127.44.3.2"
    base = inventory().model_dump(mode="json", exclude_none=True)
    base["devices"][0]["address"], base["devices"][1]["address"] = agg, "127.44.3.3"
    inv = Inventory.model_validate(base)

    def counters(svc: TrapService, metric: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {s.labels: s.value for s in svc.internal_samples() if s.metric == metric}

    async def scenario() -> None:
        svc = TrapService(inv, parse_config({**SECTION, "listen": f"{receiver}:0"}))
        rcv = svc.start()
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        try:
            before = counters(svc, "govnet_traps_received_total")
            generic = {"coldStart", "warmStart", "linkDown", "linkUp", "authenticationFailure"}
            for device in ("agg-1", "fw-1"):
                traps = {dict(k)["trap"] for k in before if dict(k)["device"] == device}
                assert traps == generic, device
            assert set(before.values()) == {0.0}
            repolls = counters(svc, "govnet_traps_repolls_total")
            assert sorted(dict(k)["device"] for k in repolls) == ["agg-1", "fw-1"]
            assert set(repolls.values()) == {0.0}
            # A real linkDown from agg-1: the same series (same labels) goes from 0 to 1.
            cmd = v2c_trap(rcv.port, agg, *LINKDOWN)
            cmd[cmd.index(f"{RECEIVER}:{rcv.port}")] = f"{receiver}:{rcv.port}"
            rc, err = await send(*cmd)
            assert rc == 0, err
            assert await wait_for(lambda: rcv.received.get(("agg-1", "linkDown")) == 1)
            after = counters(svc, "govnet_traps_received_total")
            assert after.keys() == before.keys()
            changed = {
                dict(k)["device"] + "/" + dict(k)["trap"]: v for k, v in after.items() if v != before[k]
            }
            assert changed == {"agg-1/linkDown": 1.0}
        finally:
            stop.set()
            await task

    asyncio.run(scenario())
