"""Profile features for units: microwatts to dBm, device-level unit detection, SI prefixes, joined groups."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from collectors.snmp.evaluate import DBM_FLOOR, Walk, evaluate, uw_to_dbm
from collectors.snmp.profile import Profile, ProfileError, load_profiles

RX = "1.3.6.1.4.1.2011.5.25.31.1.1.3.1.8"  # hwEntityOpticalRxPower
TX = "1.3.6.1.4.1.2011.5.25.31.1.1.3.1.9"
LANE_RX = "1.3.6.1.4.1.2011.5.25.31.1.1.3.1.32"
BIAS = "1.3.6.1.4.1.2011.5.25.31.1.1.3.1.7"
NAME = "1.3.6.1.2.1.47.1.1.1.1.7"


def _huawei() -> Profile:
    return load_profiles()["huawei"]


def _rx(walk: Walk) -> dict[str, float]:
    ev = evaluate(_huawei(), walk)
    return {dict(s.labels)["ifname"]: s.value for s in ev.samples if s.metric == "govnet_optic_rx_power_dbm"}


def test_uw_to_dbm() -> None:
    assert uw_to_dbm(1000) == 0.0
    assert math.isclose(uw_to_dbm(536), -2.7084, abs_tol=1e-4)
    assert uw_to_dbm(0) == DBM_FLOOR and uw_to_dbm(0.00001) == DBM_FLOOR


def test_huawei_microwatt_device() -> None:
    # No power below -1 anywhere on the device: the column is in microwatts.
    walk: Walk = {
        f"{NAME}.1": b"XGE0/0/1",
        f"{RX}.1": 536,
        f"{TX}.1": 591,
        f"{NAME}.2": b"XGE0/0/2",
        f"{RX}.2": -1,
    }
    got = _rx(walk)
    assert set(got) == {"XGE0/0/1"} and math.isclose(got["XGE0/0/1"], -2.708, abs_tol=1e-3)


def test_huawei_dbm_device_and_lane_column_first() -> None:
    # One negative reading makes the whole device 0.01 dBm: +1.20 dBm stays +1.20, not 1.2 uW.
    walk: Walk = {
        f"{NAME}.1": b"GE0/7/0",
        f"{RX}.1": 120,
        f"{TX}.1": 256,
        f"{NAME}.2": b"GE0/7/1",
        f"{RX}.2": -849,
        f"{TX}.2": -575,
        f"{NAME}.3": b"GE0/7/2",
        f"{RX}.3": 999,
        f"{LANE_RX}.3": b"-270.19",  # the lane column wins where it holds one number
    }
    got = _rx(walk)
    assert got == pytest.approx({"GE0/7/0": 1.2, "GE0/7/1": -8.49, "GE0/7/2": -2.7019})


def test_huawei_bias_needs_microampere_evidence() -> None:
    walk: Walk = {f"{NAME}.1": b"GE0/7/0", f"{BIAS}.1": 34, f"{NAME}.2": b"GE0/7/1", f"{BIAS}.2": 42}
    ev = evaluate(_huawei(), walk)
    assert not [s for s in ev.samples if s.metric == "govnet_optic_bias_amperes"]
    walk[f"{BIAS}.2"] = 5232
    ev = evaluate(_huawei(), walk)
    bias = sorted(s.value for s in ev.samples if s.metric == "govnet_optic_bias_amperes")
    assert bias == pytest.approx([0.000034, 0.005232])


def test_entity_sensor_si_prefix() -> None:
    base = "1.3.6.1.4.1.9.9.91.1.1.1.1"
    walk: Walk = {
        f"{base}.1.5": 5,  # amperes
        f"{base}.2.5": 8,  # milli
        f"{base}.3.5": 1,  # one decimal
        f"{base}.4.5": 61,
        f"{NAME}.5": b"Gi1/0/52 Bias Current Sensor",
        "1.3.6.1.2.1.47.1.1.1.1.4.5": 4,
        "1.3.6.1.2.1.47.1.1.1.1.5.4": 10,
        f"{NAME}.4": b"GigabitEthernet1/0/52",
    }
    ev = evaluate(load_profiles()["cisco"], walk)
    got = [(s.metric, dict(s.labels)) for s in ev.samples if s.metric.startswith("govnet_optic")]
    assert got == [("govnet_optic_bias_amperes", {"ifname": "GigabitEthernet1/0/52"})]
    assert [s.value for s in ev.samples if s.metric.startswith("govnet_optic")] == pytest.approx([0.0061])


def test_version_keeps_the_release() -> None:
    descr = (
        b"S5720-56C-PWR-EI-AC\nHuawei Versatile Routing Platform Software \r\n"
        b" VRP (R) software,Version 5.170 (S5720 V200R010C00SPC600)"
    )
    ev = evaluate(_huawei(), {"1.3.6.1.2.1.1.1.0": descr})
    assert ev.info["version"] == "5.170 V200R010C00SPC600"
    assert ev.info["release"] == "V200R010C00SPC600"
    assert ev.info["hardware"] == "S5720-56C-PWR-EI-AC"


def test_bad_conversion_rejected(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("match: {}\nmetrics: []\n", encoding="utf-8")
    (tmp_path / "x.yaml").write_text(
        "extends: [base]\nmetrics:\n  - {name: govnet_x, value: sysUpTime, convert: mw_to_furlongs}\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match="convert must be one of"):
        load_profiles(tmp_path)


def test_lldp_management_address_from_the_row_index() -> None:
    man = "1.0.8802.1.1.2.1.4.2.1.3"  # lldpRemManAddrIfSubtype
    walk: Walk = {
        f"{man}.0.5.2.1.4.10.46.101.110": 2,
        f"{man}.0.5.2.2.16.254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1": 2,  # IPv6: not an IPv4 label
        "1.0.8802.1.1.2.1.3.7.1.3.5": b"XGigabitEthernet0/0/1",
        "1.3.6.1.2.1.31.1.1.1.1.7": b"XGigabitEthernet0/0/1",
    }
    ev = evaluate(load_profiles()["huawei"], walk)
    got = [dict(s.labels) for s in ev.samples if s.metric == "govnet_neighbor_address_info"]
    assert got == [
        {
            "address": "10.46.101.110",
            "ifname": "XGigabitEthernet0/0/1",
            "protocol": "lldp",
            "remote_index": "2",
        }
    ]
