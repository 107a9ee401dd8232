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
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from collectors.snmp.evaluate import Evaluation, RawSample, evaluate
from collectors.snmp.profile import ProfileError, default_profiles, load_profiles, select_profile
from collectors.snmp.snmprec import load_snmprec
from tests.support.paths import ROOT

SNMPREC = Path(os.environ.get("GOVNET_SNMPREC_DIR", ROOT / "tests" / "data" / "snmprec"))
RECORDINGS = sorted(SNMPREC.glob("*.snmprec")) if SNMPREC.is_dir() else []
BAD = sorted((ROOT / "tests" / "testdata" / "snmp" / "bad_profiles").glob("*.yaml"))

# LibreNMS expectation -> (govnet metric(s), factor from LibreNMS units to govnet units, tolerance).
SENSOR_MAP: dict[str, tuple[tuple[str, ...], float, float]] = {
    "temperature": (("govnet_temperature_celsius", "govnet_ups_battery_temperature_celsius"), 1.0, 0.5),
    "charge": (("govnet_ups_battery_charge_ratio",), 0.01, 0.005),
    "runtime": (("govnet_ups_battery_runtime_seconds",), 60.0, 1.0),  # LibreNMS minutes
    "load": (("govnet_ups_load_ratio",), 0.01, 0.005),
    "voltage": (("govnet_ups_input_voltage_volts", "govnet_ups_output_voltage_volts"), 1.0, 0.5),
}
CPU_MEAN_TOLERANCE = 0.05  # LibreNMS may poll per-core loads where govnet reads the 5-min total


def _section(data: dict[str, Any], module: str, key: str) -> list[dict[str, Any]]:
    mod = data.get(module)
    if not isinstance(mod, dict):
        return []
    poller = mod.get("poller")
    if isinstance(poller, dict) and key in poller:
        return list(poller[key])
    disc = mod.get("discovery")
    return list(disc.get(key, [])) if isinstance(disc, dict) else []


def expectations(data: dict[str, Any]) -> list[tuple[str, tuple[str, ...], str, float, float]]:
    """(what, govnet metrics, source OID, expected govnet value, tolerance) from a LibreNMS JSON."""
    out = []
    for p in _section(data, "processors", "processors"):
        if p.get("processor_usage") is not None:
            out.append(
                (
                    "cpu",
                    ("govnet_cpu_ratio",),
                    str(p["processor_oid"]).lstrip("."),
                    float(p["processor_usage"]) / 100,
                    0.01,
                )
            )
    for m in _section(data, "mempools", "mempools"):
        oid = m.get("mempool_perc_oid") or m.get("mempool_used_oid")
        if oid and m.get("mempool_perc") is not None:
            out.append(
                (
                    "memory",
                    ("govnet_memory_used_ratio",),
                    str(oid).lstrip("."),
                    float(m["mempool_perc"]) / 100,
                    0.011,
                )
            )
    for s in _section(data, "sensors", "sensors"):
        spec = SENSOR_MAP.get(s.get("sensor_class", ""))
        if spec and s.get("sensor_current") is not None:
            metrics, factor, tol = spec
            out.append(
                (
                    s["sensor_class"],
                    metrics,
                    str(s["sensor_oid"]).lstrip("."),
                    float(s["sensor_current"]) * factor,
                    tol,
                )
            )
    return out


def _by_source(ev: Evaluation) -> dict[tuple[str, str], RawSample]:
    return {(s.metric, s.source): s for s in ev.samples if s.source}


def _run(path: Path) -> tuple[str, Evaluation, dict[str, Any] | None]:
    walk = load_snmprec(path)
    soid = walk.get("1.3.6.1.2.1.1.2.0")
    profile = select_profile(default_profiles(), soid if isinstance(soid, str) else None, "generic", "server")
    expected_file = path.parent / "librenms-expected" / f"{path.stem}.json"
    data = json.loads(expected_file.read_text(encoding="utf-8")) if expected_file.exists() else None
    return profile.name, evaluate(profile, walk), data


WITH_EXPECTED = [p for p in RECORDINGS if (p.parent / "librenms-expected" / f"{p.stem}.json").exists()]


@pytest.mark.parametrize("path", WITH_EXPECTED, ids=[p.stem for p in WITH_EXPECTED])
def test_recording_matches_librenms(path: Path) -> None:
    """Values govnet reads from the same OIDs as LibreNMS agree; every category LibreNMS has is covered."""
    name, ev, data = _run(path)
    assert name != "base", f"{path.stem}: no vendor profile matched its sysObjectID"
    assert data is not None
    got = _by_source(ev)
    covered: dict[str, int] = defaultdict(int)
    wanted: dict[str, list[float]] = defaultdict(list)
    errors = []
    for what, metrics, oid, value, tol in expectations(data):
        wanted[what].append(value)
        for metric in metrics:
            s = got.get((metric, oid))
            if s is None:
                continue
            covered[what] += 1
            if abs(s.value - value) > tol + 1e-9:
                errors.append(f"{what} {oid}: govnet {s.value:.4g} vs LibreNMS {value:.4g}")
    assert not errors, "\n".join(errors)
    mine = defaultdict(list)
    for s in ev.samples:
        mine[s.metric].append(s.value)
    for what, values in wanted.items():
        if covered[what]:
            continue
        if what == "cpu" and mine["govnet_cpu_ratio"]:
            avg_mine = sum(mine["govnet_cpu_ratio"]) / len(mine["govnet_cpu_ratio"])
            assert abs(avg_mine - sum(values) / len(values)) <= CPU_MEAN_TOLERANCE, f"{path.stem}: cpu mean"
            continue
        assert what not in ("cpu", "memory", "temperature"), f"{path.stem}: LibreNMS has {what}, govnet none"


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
    dev = _section(data, "os", "devices")[0]

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
    assert with_octets, f"{path.stem}: recording has no octet counters at all"


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
