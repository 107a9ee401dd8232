"""`match: also`: a profile added by inventory role or by an answered probe, whatever the sysObjectID."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.snmp.profile import Profile, ProfileError, load_profiles, probe_oids, select_profile

HOST_OID = "1.3.6.1.4.1.8072.3.2.10"
BATTERY_STATUS = "1.3.6.1.2.1.33.1.2.1.0"  # upsBatteryStatus.0

PROFILES = {
    "base.yaml": "match: {}\nmetrics:\n  - {name: govnet_uptime_seconds, value: sysUpTime}\n",
    "host.yaml": (
        "extends: [base]\nmatch: {sysobjectid: ['" + HOST_OID + "']}\n"
        "info: {version: [sysDescr]}\n"
        "metrics:\n  - {name: govnet_cpu_ratio, value: hrProcessorLoad}\n"
    ),
    "ups.yaml": (
        "extends: [base]\n"
        "match: {roles: [ups], also: {roles: [ups], answers: [upsBatteryStatus]}}\n"
        "info: {version: [upsIdentUPSSoftwareVersion]}\n"
        "metrics:\n  - {name: govnet_ups_on_battery, value: upsOutputSource}\n"
    ),
    "vendorups.yaml": (
        "extends: [base]\nmatch: {sysobjectid: ['1.3.6.1.4.1.318']}\n"
        "metrics:\n  - {name: govnet_ups_on_battery, value: upsBasicOutputStatus}\n"
    ),
}


@pytest.fixture
def profiles(tmp_path: Path) -> dict[str, Profile]:
    for name, text in PROFILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return load_profiles(tmp_path)


def _names(p: Profile) -> list[str]:
    return sorted(m.name for m in p.metrics)


def test_probe_oids_are_scalar_instances(profiles: dict[str, Profile]) -> None:
    assert probe_oids(profiles) == [BATTERY_STATUS]


def test_host_without_ups_signs_keeps_its_profile(profiles: dict[str, Profile]) -> None:
    assert select_profile(profiles, HOST_OID, "generic", "server").name == "host"


@pytest.mark.parametrize(("role", "answered"), [("server", {BATTERY_STATUS}), ("ups", set())])
def test_host_oid_with_ups_signs_also_reads_ups(
    profiles: dict[str, Profile], role: str, answered: set[str]
) -> None:
    p = select_profile(profiles, HOST_OID, "generic", role, answered)
    assert p.name == "host+ups"
    assert _names(p) == ["govnet_cpu_ratio", "govnet_ups_on_battery", "govnet_uptime_seconds"]
    version = {i.label: i for i in p.info}["version"]
    # The UPS's identity, not the card OS's: the host's sysDescr candidate is replaced.
    assert [c[0].obj.name for c in version.candidates] == ["upsIdentUPSSoftwareVersion"]


def test_unknown_oid_answering_gets_the_ups_profile_itself(profiles: dict[str, Profile]) -> None:
    assert select_profile(profiles, "1.3.6.1.4.1.99999", "generic", "server", {BATTERY_STATUS}).name == "ups"
    assert select_profile(profiles, "1.3.6.1.4.1.99999", "generic", "server", set()).name == "base"


def test_profile_with_its_own_ups_metrics_is_not_mixed(profiles: dict[str, Profile]) -> None:
    p = select_profile(profiles, "1.3.6.1.4.1.318.1.3.27", "generic", "ups", {BATTERY_STATUS})
    assert p.name == "vendorups"
    assert [m.alternatives[0][0].name for m in p.metrics if m.name == "govnet_ups_on_battery"] == [
        "upsBasicOutputStatus"
    ]


def test_also_answers_must_be_scalar(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("match: {}\nmetrics: []\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("match: {also: {answers: [upsInputVoltage]}}\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="only scalar objects"):
        load_profiles(tmp_path)
