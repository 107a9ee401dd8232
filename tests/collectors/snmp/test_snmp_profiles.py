"""Profiles against real device recordings: one generic test per recording, driven by the data.

Each `.snmprec` under GOVNET_SNMPREC_DIR (default tests/data/snmprec) is evaluated with the profile
its sysObjectID selects and compared with LibreNMS's expected JSON when one exists. Adding a
recording (and its expected JSON) needs no new test code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collectors.snmp.evaluate import Evaluation, evaluate
from collectors.snmp.profile import ProfileError, default_profiles, load_profiles, probe_oids, select_profile
from collectors.snmp.snmprec import load_snmprec
from tests.support import librenms_compare
from tests.support.paths import ROOT

SNMPREC = Path(os.environ.get("GOVNET_SNMPREC_DIR", ROOT / "tests" / "data" / "snmprec"))
RECORDINGS = sorted(SNMPREC.glob("*.snmprec")) if SNMPREC.is_dir() else []
BAD = sorted((ROOT / "tests" / "testdata" / "snmp" / "bad_profiles").glob("*.yaml"))


def _run(path: Path) -> tuple[str, Evaluation, dict[str, Any] | None]:
    walk = load_snmprec(path)
    soid = walk.get("1.3.6.1.2.1.1.2.0")
    profiles = default_profiles()
    answered = {o for o in probe_oids(profiles) if o in walk}  # what the discovery GET would return
    profile = select_profile(profiles, soid if isinstance(soid, str) else None, "generic", "server", answered)
    expected_file = path.parent / "librenms-expected" / f"{path.stem}.json"
    data = json.loads(expected_file.read_text(encoding="utf-8")) if expected_file.exists() else None
    return profile.name, evaluate(profile, walk), data


WITH_EXPECTED = [p for p in RECORDINGS if (p.parent / "librenms-expected" / f"{p.stem}.json").exists()]


@pytest.mark.parametrize("path", WITH_EXPECTED, ids=[p.stem for p in WITH_EXPECTED])
def test_recording_matches_librenms(path: Path) -> None:
    """Every value LibreNMS expects (sensors of the compared classes, processors, mempools) is present
    with the same value after unit conversion, or documented in docs/metrics.md (not supported /
    differs from LibreNMS, with the reason). Right or absent, never wrong."""
    name, _, data = _run(path)
    assert name != "base", f"{path.stem}: no vendor profile matched its sysObjectID"
    assert data is not None
    r = librenms_compare.compare(path, data, librenms_compare.not_supported(), librenms_compare.differs())
    assert r.expected, f"{path.stem}: LibreNMS expects nothing comparable"
    assert not r.wrong, "\n".join(r.wrong)
    missing = [f"{e.what} {e.kind} {e.oid} ({e.descr}) = {e.value}" for e in r.missing]
    assert not missing, "absent and not documented as not supported:\n" + "\n".join(missing)
    assert len(r.equal) + len(r.differ) + len(r.unsupported) == len(r.expected)


def test_documented_exceptions_are_used() -> None:
    """Each "Not supported" / "Differs from LibreNMS" row in docs/metrics.md still covers a real case."""
    rows = librenms_compare.not_supported() + librenms_compare.differs()
    assert rows, "docs/metrics.md exception tables not found"
    used: set[int] = set()
    for path in WITH_EXPECTED:
        _, _, data = _run(path)
        assert data is not None
        r = librenms_compare.compare(path, data, librenms_compare.not_supported(), librenms_compare.differs())
        reasons = {why for _, why in (*r.unsupported, *r.differ)}
        used.update(i for i, row in enumerate(rows) if row.reason in reasons)
    stale = [rows[i].prefix for i in range(len(rows)) if i not in used]
    assert not stale, f"rows that cover nothing any more: {stale}"


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_recording_identity(path: Path) -> None:
    """device_info carries the sysObjectID, and version/hardware agree with LibreNMS where both exist."""
    _, ev, data = _run(path)
    info = [s for s in ev.samples if s.metric == "govnet_device_info"]
    assert len(info) == 1 and info[0].value == 1.0
    walk_soid = load_snmprec(path).get("1.3.6.1.2.1.1.2.0")
    assert ev.info.get("sysobjectid") == str(walk_soid).lstrip(".")
    assert not any(ch in v for v in ev.info.values() for ch in "\n\r\x00")
    if data is None:
        return
    dev = librenms_compare.section(data, "os", "devices")[0]

    def norm(v: str) -> str:
        return "".join(ch for ch in v.lower() if ch.isalnum())

    for key in ("version", "hardware"):
        theirs, ours = dev.get(key), ev.info.get(key)
        if theirs and ours:
            assert norm(ours) in norm(theirs) or norm(theirs) in norm(ours), f"{key}: {ours!r} vs {theirs!r}"


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_recording_interfaces(path: Path) -> None:
    """Every interface with an octet counter yields in/out octet counters labelled with its ifName."""
    walk = load_snmprec(path)
    _, ev, _ = _run(path)
    names = {oid.rsplit(".", 1)[1]: v for oid, v in walk.items() if oid.startswith("1.3.6.1.2.1.31.1.1.1.1.")}
    with_octets = {
        oid.rsplit(".", 1)[1]
        for oid in walk
        if oid.rsplit(".", 1)[0] in ("1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.2.2.1.10")
    }
    for metric in ("govnet_if_in_octets_total", "govnet_if_out_octets_total"):
        series = {dict(s.labels)["ifindex"]: s for s in ev.samples if s.metric == metric}
        missing = with_octets - set(series)
        assert not missing, f"{metric}: no series for ifindex {sorted(missing)[:5]}"
        for idx, s in series.items():
            assert s.type == "counter" and s.value >= 0
            if idx in names:
                assert dict(s.labels)["ifname"], f"ifindex {idx} has an ifName but no ifname label"
    # LibreNMS trims recordings to what its modules read: some (UPS cards, sensor-only captures) carry
    # no ifTable at all, or only ifName for naming sensors. One with an ifTable must have octet counters.
    has_iftable = any(oid.startswith("1.3.6.1.2.1.2.2.1.") for oid in walk)
    assert with_octets or not has_iftable, f"{path.stem}: recording has an ifTable but no octet counters"


def test_recordings_present() -> None:
    """The recordings directory is found (otherwise the parametrised tests silently vanish)."""
    assert len(RECORDINGS) >= 10, f"no recordings under {SNMPREC}"


def test_mibgen_check() -> None:
    """oids.json is exactly what the MIB sources compile to."""
    r = subprocess.run(
        [sys.executable, "-m", "collectors.snmp.mibgen", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr


def test_profiles_load_and_reference_known_objects() -> None:
    """Every shipped profile loads; metric names and label names follow the conventions."""
    profiles = load_profiles()
    assert {
        "base",
        "huawei",
        "h3c",
        "ruijie",
        "cisco",
        "cisco_asa",
        "hillstone",
        "fortinet",
        "huawei_usg",
        "sangfor",
        "topsec",
        "linux",
        "ups",
        "apc",
    } <= set(profiles)
    for p in profiles.values():
        for m in p.metrics:
            assert m.name.startswith("govnet_")
            assert not {lab.name for lab in m.labels} & {"device", "site", "role", "vendor"}


@pytest.mark.parametrize(
    ("soid", "vendor", "role", "expected"),
    [
        ("1.3.6.1.4.1.9.1.2404", "cisco", "firewall", "cisco_asa"),
        ("1.3.6.1.4.1.9.1.1208", "cisco", "access_switch", "cisco"),
        (None, "cisco", "firewall", "cisco_asa"),
        (None, "huawei", "firewall", "huawei_usg"),
        ("1.3.6.1.4.1.2011.2.23.291", "huawei", "core_switch", "huawei"),
        ("1.3.6.1.4.1.2011.2.239.1", "huawei", "firewall", "huawei_usg"),  # USG: Huawei prefix + role
        ("1.3.6.1.4.1.9.1.1208", "cisco", "firewall", "cisco"),  # a Catalyst stays a Catalyst
        (None, "huawei", "core_switch", "huawei"),
        (None, "sangfor", "firewall", "sangfor"),
        ("1.3.6.1.4.1.12356.101.1.644", "generic", "firewall", "fortinet"),
        ("1.3.6.1.4.1.99999.1", "generic", "server", "base"),
        ("1.3.6.1.4.1.20110", "generic", "server", "base"),  # a prefix must end at a dot
    ],
)
def test_profile_selection(soid: str | None, vendor: str, role: str, expected: str) -> None:
    """sysObjectID prefix wins (longest), then inventory vendor+role, then vendor, then base."""
    assert select_profile(default_profiles(), soid, vendor, role).name == expected


@pytest.mark.parametrize("bad", BAD, ids=[p.stem for p in BAD])
def test_bad_profile_rejected(bad: Path, tmp_path: Path) -> None:
    """Each bad profile names its expected error in its first line (`# error: ...`)."""
    expected = bad.read_text(encoding="utf-8").splitlines()[0].removeprefix("# error:").strip()
    (tmp_path / "base.yaml").write_text("match: {}\nmetrics: []\n", encoding="utf-8")
    (tmp_path / bad.name).write_text(bad.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ProfileError, match=expected):
        load_profiles(tmp_path)


def test_every_profile_vendor_is_an_inventory_vendor() -> None:
    """A vendor a profile matches on is accepted by the inventory (fortinet, apc were refused)."""
    from inventory.model import Vendor

    named = {v for p in load_profiles().values() for v in p.vendors}
    assert {"fortinet", "apc"} <= named
    assert named <= {v.value for v in Vendor}
    assert select_profile(default_profiles(), None, "fortinet", "firewall").name == "fortinet"


@pytest.mark.parametrize("state", [5, 6])
def test_envmon_sensor_not_present_is_absent_not_zero(state: int) -> None:
    """A CISCO-ENVMON temperature in state notPresent(5)/notFunctioning(6) reads 0 on real agents (the
    second C9500X of a StackWise Virtual pair in LibreNMS's iosxe_c9500x-svl): absent, never 0 degrees."""
    walk = load_snmprec(SNMPREC / "ios_2960x.snmprec")
    state_col, value_col = "1.3.6.1.4.1.9.9.13.1.3.1.6.", "1.3.6.1.4.1.9.9.13.1.3.1.3."
    rows = sorted(k[len(state_col) :] for k in walk if k.startswith(state_col))
    assert len(rows) >= 2
    walk[state_col + rows[0]], walk[value_col + rows[0]] = state, 0
    profile = select_profile(default_profiles(), str(walk["1.3.6.1.2.1.1.2.0"]), "cisco", "access_switch")
    temps = {s.source for s in evaluate(profile, walk).samples if s.metric == "govnet_temperature_celsius"}
    assert value_col + rows[0] not in temps
    assert {value_col + r for r in rows[1:]} <= temps
