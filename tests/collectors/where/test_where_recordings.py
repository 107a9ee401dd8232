"""Every ARP and forwarding row govnet reads from a real recording equals the recording, exactly.

One generic test over every recording in tests/data/snmprec that holds ARP or FDB rows: the recording
is served over SNMP by the lab's agent, govnet's where-poller reads it like a device, and its rows
are compared with what this file reads straight from the recording's text (no per-file code), with
each forwarding row's port checked through dot1dBasePortIfIndex and ifName.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from collectors.where.poll import TablesPoller, report
from inventory.model import Device
from lab.snmp.snmprec import serve_snmprec
from tests.support.paths import DATA

SNMPREC = Path(os.environ.get("GOVNET_SNMPREC", DATA / "snmprec"))
ARP_PHYS, ARP_MEDIA = "1.3.6.1.2.1.4.35.1.4.", "1.3.6.1.2.1.4.22.1.2."
QFDB, DFDB = "1.3.6.1.2.1.17.7.1.2.2.1.2.", "1.3.6.1.2.1.17.4.3.1.2."
LLDP_REM, LLDP_ID, LLDP_DESC = (
    "1.0.8802.1.1.2.1.4.1.1.4.",
    "1.0.8802.1.1.2.1.3.7.1.3.",
    "1.0.8802.1.1.2.1.3.7.1.4.",
)
IFDESCR = "1.3.6.1.2.1.2.2.1.2."
BASE, IFNAME, VTP = "1.3.6.1.2.1.17.1.4.1.2.", "1.3.6.1.2.1.31.1.1.1.1.", "1.3.6.1.4.1.9.9.46.1.3.1.1.2."


def _records(path: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        parts = line.split("|", 2)
        if len(parts) == 3:
            out[parts[0]] = (parts[1], parts[2])
    return out


def _mac(tag: str, value: str) -> str:
    """A recorded MAC value in aa:bb:.. form: hex octets (4x) or a MAC printed as text (4)."""
    if tag == "4x":
        return ":".join(value[i : i + 2] for i in range(0, 12, 2)).lower()
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) == 6:  # six octets recorded as they are
        return ":".join(f"{b:02x}" for b in raw)
    return ":".join(f"{int(p, 16):02x}" for p in value.split(":"))


def _with(records: dict[str, tuple[str, str]], prefix: str) -> dict[str, tuple[str, str]]:
    return {oid[len(prefix) :]: v for oid, v in records.items() if oid.startswith(prefix)}


def expected(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """ARP and FDB rows straight from the recording text."""
    rec = _records(path)
    # A port's name is its ifName, else its ifDescr (the APC cards record only ifDescr).
    names = {int(k): v for k, (_, v) in _with(rec, IFDESCR).items()}
    names.update({int(k): v for k, (_, v) in _with(rec, IFNAME).items()})
    base = {int(k): int(v) for k, (_, v) in _with(rec, BASE).items()}
    arp = []
    malformed = []
    phys = _with(rec, ARP_PHYS)
    for index, (tag, value) in (phys or _with(rec, ARP_MEDIA)).items():
        nums = [int(x) for x in index.split(".")]
        if not phys and len(nums) != 5:  # ifIndex + 4 octets; sanitised rows ("30.10.90.6") are not
            malformed.append((index,))
            continue
        if phys and (len(nums) < 3 or not tag.startswith("4")):
            # No address in the index, or no octets for a MAC (Dell's UPS card records `1|2|0`).
            malformed.append((index,))
            continue
        if phys:  # ifIndex.addrtype[.len].address
            addr = nums[2:]
            addr = addr[1:] if len(addr) in (5, 17) else addr
            ip = ".".join(map(str, addr)) if len(addr) == 4 else None
            if ip is None:
                import ipaddress

                ip = str(ipaddress.IPv6Address(bytes(addr)))
        else:
            ip = ".".join(map(str, nums[1:]))
        arp.append((ip, _mac(tag, value), names.get(nums[0])))
    fdb = []
    q = _with(rec, QFDB)
    vtp_up = [k for k, (_, v) in _with(rec, VTP).items() if v == "1"]
    for index, (_, value) in (q or _with(rec, DFDB)).items():
        nums = [int(x) for x in index.split(".")]
        # An fdbId stands for its VLAN only in 1..4094 (Ruijie's fdbId 0 is no VLAN).
        vlan = (nums[0] if 1 <= nums[0] <= 4094 else None) if q else (1 if vtp_up else None)
        mac = ":".join(f"{b:02x}" for b in (nums[1:] if q else nums))
        if_index = base.get(int(value))
        fdb.append((mac, vlan, int(value), if_index, names.get(if_index) if if_index is not None else None))
    return {"arp": sorted(arp, key=repr), "fdb": sorted(fdb, key=repr), "malformed": malformed}


RECORDINGS = sorted(p for p in SNMPREC.glob("*.snmprec") if any(v for v in expected(p).values()))


def test_recordings_present() -> None:
    # The issue names comware (about 200 MAC and 200 ARP rows), Cisco and Huawei recordings.
    names = {p.stem for p in RECORDINGS}
    assert {"comware", "ios_2960x", "vrp_5720"} <= names
    assert _with(_records(SNMPREC / "vrp_5720.snmprec"), LLDP_REM)  # LLDP neighbours to exclude
    comware = expected(SNMPREC / "comware.snmprec")
    assert len(comware["arp"]) > 190 and len(comware["fdb"]) > 190


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_rows_equal_recording(path: Path) -> None:
    want = expected(path)

    async def run() -> dict[str, list[dict[str, Any]]]:
        server = await serve_snmprec({path.stem: path}, "127.0.0.1", 0)
        port = server.transports[0].get_extra_info("sockname")[1]
        try:
            dev = Device.model_validate(
                {
                    "name": path.stem.replace("_", "-"),
                    "site": "lab",
                    "role": "aggregation_switch",
                    # The vendor only decides whether Cisco's per-VLAN bridge tables are read.
                    "vendor": "cisco" if path.stem.startswith("ios") else "generic",
                    "address": "127.0.0.1",
                }
            )
            from inventory.model import SnmpV2c

            creds = SnmpV2c.model_validate(
                {"community": f"env:GOVNET_TEST_COMMUNITY_{path.stem.upper()}", "port": port}
            )
            os.environ[f"GOVNET_TEST_COMMUNITY_{path.stem.upper()}"] = path.stem
            poller = TablesPoller(timeout_s=0.5, retries=0)
            tables = await poller.read(dev, creds, arp=True, fdb=True, budget_s=60)
            assert tables.ok, tables.error
            assert tables.skipped == len(want["malformed"])  # the rows that are no address, only
            return report(tables)
        finally:
            server.close()

    got = asyncio.run(run())
    arp = sorted(((r["ip"], r["mac"], r["interface"]) for r in got["arp"]), key=repr)
    fdb = sorted(
        ((r["mac"], r["vlan"], r["bridge_port"], r["if_index"], r["interface"]) for r in got["fdb"]), key=repr
    )
    assert arp == want["arp"]
    assert fdb == want["fdb"]
    # LLDP: every local port with a neighbour is found by name (lldpLocPortId/Desc = ifName/ifDescr).
    rec = _records(path)
    rem_ports = {k.split(".")[1] for k in _with(rec, LLDP_REM)}
    # An empty ifDescr (FortiGate) names nothing: an absent lldpLocPortId must not match it.
    named = {v for k, (_, v) in _with(rec, IFNAME).items()} | {v for k, (_, v) in _with(rec, IFDESCR).items()}
    named.discard("")
    want_lldp = {
        p
        for p in rem_ports
        if {_with(rec, LLDP_ID).get(p, ("", ""))[1], _with(rec, LLDP_DESC).get(p, ("", ""))[1]} & named
    }
    assert len(got["lldp_ports"]) == len(want_lldp)
    if_names = {v for _, (_, v) in _with(rec, IFNAME).items()} | {
        v for _, (_, v) in _with(rec, IFDESCR).items()
    }
    assert set(got["lldp_ports"]) <= if_names
    # Port mapping: every forwarding row whose bridge port the agent maps has its interface name.
    for mac, _vlan, bport, if_index, name in fdb:
        if if_index is not None:
            assert name is not None, (mac, bport, if_index)
