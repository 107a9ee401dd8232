"""Over the wire: the lab's agent serves real recordings, SnmpCollector polls them with gufo-snmp,
and the samples equal the offline evaluation of the same recording (no data lost or altered in transit)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from collectors.base import PollResult
from collectors.snmp import SnmpCollector
from collectors.snmp.evaluate import evaluate
from collectors.snmp.netsnmpd import free_udp_port
from collectors.snmp.profile import default_profiles, probe_oids, select_profile
from collectors.snmp.snmprec import load_snmprec
from inventory.model import Inventory
from lab.snmp.snmprec import serve_snmprec as serve
from tests.support.paths import ROOT

SNMPREC = Path(os.environ.get("GOVNET_SNMPREC_DIR", ROOT / "tests" / "data" / "snmprec"))
# netvision-rfc: a UPS card with net-snmp's Linux sysObjectID, found by the discovery probe.
PICK = ["vrp_5720", "asa", "fortigate_60f", "linux_powermon", "generex-ups_cs141", "comware", "netvision-rfc"]
HOST = "127.22.0.5"


def _files() -> list[Path]:
    files = [SNMPREC / f"{n}.snmprec" for n in PICK]
    return [f for f in files if f.exists()]


def test_collector_over_the_wire_matches_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _files()
    assert files, f"no recordings under {SNMPREC}"
    monkeypatch.setenv("GOVNET_T_WIRE", "unused")
    port = free_udp_port(HOST)
    devices = []
    for f in files:
        env = "GOVNET_T_COMM_" + f.stem.upper().replace("-", "_")
        monkeypatch.setenv(env, f.stem)
        devices.append(
            {
                "name": f.stem.replace("_", "-"),
                "site": "lab",
                "role": "server",
                "vendor": "generic",
                "address": HOST,
                "snmp": {"version": "2c", "community": f"env:{env}", "port": port},
            }
        )
    inv = Inventory.model_validate({"sites": [{"name": "lab"}], "devices": devices})

    async def poll_all() -> dict[str, PollResult]:
        server = await serve({f.stem: f for f in files}, HOST, port)
        try:
            col = SnmpCollector(timeout_s=2.0, retries=1)
            return {d.name: await col.poll(inv, d, 500.0, deadline_s=60) for d in inv.devices}
        finally:
            server.close()

    results = asyncio.run(poll_all())
    for f, dev in zip(files, inv.devices, strict=True):
        r = results[dev.name]
        assert r.ok, f"{f.stem}: {r.error}"
        walk = load_snmprec(f)
        soid = walk.get("1.3.6.1.2.1.1.2.0")
        answered = {o for o in probe_oids(default_profiles()) if o in walk}
        prof = select_profile(default_profiles(), str(soid), "generic", "server", answered)
        offline = {(s.metric, s.labels): s.value for s in evaluate(prof, walk).samples}
        online = {
            (
                s.metric,
                tuple(kv for kv in s.labels if kv[0] not in ("device", "site", "role", "vendor")),
            ): s.value
            for s in r.samples
        }
        # sysUpTime is served live by the lab agent; everything else must be identical.
        skip = {"govnet_uptime_seconds"}
        off = {k: v for k, v in offline.items() if k[0] not in skip}
        on = {k: v for k, v in online.items() if k[0] not in skip}
        assert set(on) == set(off), f"{f.stem}: series differ: {sorted(set(on) ^ set(off))[:5]}"
        if f.stem == "netvision-rfc":
            assert prof.name == "linux+ups" and any(k[0] == "govnet_ups_on_battery" for k in on)
        bad = [k for k in on if abs(on[k] - off[k]) > 1e-9 * max(1.0, abs(off[k]))]
        assert not bad, f"{f.stem}: values differ for {bad[:5]}"


def test_walk_past_the_end_of_the_mib_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A column after the agent's last OID (reply starts at endOfMibView) is empty, not an error."""
    rec = tmp_path / "tiny.snmprec"
    rec.write_text(
        "1.3.6.1.2.1.1.1.0|4|tiny agent\n"
        "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10\n"
        "1.3.6.1.2.1.1.3.0|67|12345\n"
        "1.3.6.1.2.1.1.5.0|4|tiny\n"
        "1.3.6.1.2.1.31.1.1.1.1.1|4|eth0\n"
        "1.3.6.1.2.1.31.1.1.1.6.1|70|1000\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("GOVNET_T_TINY", "tiny")
    port = free_udp_port(HOST)
    inv = Inventory.model_validate(
        {
            "sites": [{"name": "lab"}],
            "devices": [
                {
                    "name": "tiny",
                    "site": "lab",
                    "role": "server",
                    "vendor": "linux",
                    "address": HOST,
                    "snmp": {"version": "2c", "community": "env:GOVNET_T_TINY", "port": port},
                }
            ],
        }
    )

    async def go() -> object:
        server = await serve({"tiny": rec}, HOST, port)
        try:
            return await SnmpCollector(timeout_s=2.0, retries=1).poll(inv, inv.devices[0], 1.0, deadline_s=20)
        finally:
            server.close()

    r = asyncio.run(go())
    assert r.ok, r.error  # type: ignore[attr-defined]
    octets = [s for s in r.samples if s.metric == "govnet_if_in_octets_total"]  # type: ignore[attr-defined]
    assert [dict(s.labels)["ifname"] for s in octets] == ["eth0"] and octets[0].value == 1000
