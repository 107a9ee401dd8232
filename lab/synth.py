"""Synthetic inventories for scale tests: N devices with K interfaces each, linked in a tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_ACCESS = [("huawei", "S5720-56C-PWR-EI-AC"), ("h3c", "S5130S-28P-EI"), ("ruijie", "S5750C-28GT4XS-H"),
           ("cisco", "WS-C2960X-48FPS-L")]  # fmt: skip
_IF_NAMES = {
    "huawei": "GigabitEthernet0/0/{}",
    "h3c": "GigabitEthernet1/0/{}",
    "ruijie": "GigabitEthernet 0/{}",
    "cisco": "GigabitEthernet1/0/{}",
}


def synth_inventory(n_devices: int, n_interfaces: int = 48) -> dict[str, Any]:
    """An inventory dict: 2 core switches, then access switches of 4 vendors with dual uplinks."""
    if n_devices < 3:
        raise ValueError("need at least 3 devices")
    sites = [{"name": "ncc", "kind": "control_centre"}, {"name": "access", "kind": "access", "parent": "ncc"}]
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for c in (1, 2):
        devices.append({
            "name": f"core{c}", "site": "ncc", "role": "core_switch", "vendor": "huawei", "model": "S12708",
            "address": f"10.0.0.{c}",
            "interfaces": [f"XGigabitEthernet1/0/{k}" for k in range(1, n_interfaces + 1)],
        })  # fmt: skip
    for n in range(n_devices - 2):
        vendor, model = _ACCESS[n % len(_ACCESS)]
        name = f"sw{n + 1:04d}"
        ifs = [_IF_NAMES[vendor].format(k) for k in range(1, n_interfaces + 1)]
        devices.append({
            "name": name, "site": "access", "role": "access_switch", "vendor": vendor, "model": model,
            "address": f"10.{1 + n // 250}.{n % 250}.1", "interfaces": ifs,
        })  # fmt: skip
        port = f"XGigabitEthernet1/0/{n % n_interfaces + 1}"
        for c, up in ((1, ifs[-1]), (2, ifs[-2])):
            a = {"device": name, "interface": up}
            links.append({"a": a, "b": {"device": f"core{c}", "interface": port}, "redundancy_group": name})
    return {"sites": sites, "devices": devices, "links": links}


def write_synth_inventory(path: Path, n_devices: int, n_interfaces: int = 48) -> Path:
    """Write a synthetic inventory YAML file and return its path."""
    path.write_text(
        yaml.safe_dump(synth_inventory(n_devices, n_interfaces), sort_keys=False), encoding="utf-8"
    )
    return path
