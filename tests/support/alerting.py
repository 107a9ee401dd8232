"""The alert scenario shared by the alert e2e, HA-pair and scale-out tests: its district, fast rules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from alerts.rules import DEFAULT_RULES

CHILDREN = [f"acc-{i:02d}" for i in range(1, 51)]


def inventory_doc(children: Sequence[str] = CHILDREN, poll_interval: str = "3s") -> dict[str, Any]:
    """The scenario's district: two cores, two aggregation switches with redundant uplinks, 50 access."""
    # One vendor throughout: the alert path does not depend on it, and the scenario should not fail
    # on another vendor profile's polling problem (vendor coverage is tests/collectors/snmp/'s job).
    devices: list[dict[str, Any]] = [
        {"name": "core-1", "site": "ncc", "role": "core_switch", "vendor": "ruijie", "address": "10.0.0.1"},
        {"name": "core-2", "site": "ncc", "role": "core_switch", "vendor": "ruijie", "address": "10.0.0.2"},
    ]
    links: list[dict[str, Any]] = []
    for n in (1, 2):
        devices.append(
            {"name": f"agg-{n}", "site": f"jd-{n}", "role": "aggregation_switch", "vendor": "ruijie",
             "address": f"10.0.{n}.1"}
        )  # fmt: skip
        for core, port in (("core-1", 47), ("core-2", 48)):
            links.append(
                {"a": {"device": f"agg-{n}", "interface": f"GigabitEthernet1/0/{port}"},
                 "b": {"device": core, "interface": f"XGigabitEthernet0/0/{n}"},
                 "redundancy_group": f"agg-{n}-up"}
            )  # fmt: skip
    for i, name in enumerate(children, start=1):
        devices.append(
            {"name": name, "site": "comm", "role": "access_switch", "vendor": "ruijie",
             "address": f"10.1.0.{i}"}
        )  # fmt: skip
        links.append(
            {"a": {"device": name, "interface": "GigabitEthernet 0/25"},
             "b": {"device": "core-1", "interface": f"GigabitEthernet1/0/{i}"}}
        )  # fmt: skip
    sites = [{"name": "ncc", "kind": "control_centre"}]
    sites += [{"name": "comm", "kind": "access"}] if children else []
    sites += [{"name": f"jd-{n}", "kind": "aggregation"} for n in (1, 2)]
    return {"defaults": {"poll_interval": poll_interval}, "sites": sites, "devices": devices, "links": links}


def fast_rules(path: Path, for_: str = "6s", keep_firing_for: str = "4s") -> None:
    """Write the shipped rules with short `for`/`keep_firing_for` so a scenario runs in seconds."""
    # The shipped rules with short `for`/`keep_firing_for` so the scenario runs in seconds.
    doc = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    for rule in doc["rules"]:
        if "for" in rule:
            rule["for"] = for_
        if "keep_firing_for" in rule:
            rule["keep_firing_for"] = keep_firing_for
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
