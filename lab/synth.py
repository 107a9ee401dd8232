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
_CORE_IF = "XGigabitEthernet1/0/{}"


def _uplinks(name: str, ifs: list[str], up: tuple[tuple[str, str], tuple[str, str]]) -> list[dict[str, Any]]:
    """A device's two uplinks (its last two ports) to (device, port) pairs, one redundancy group."""
    return [
        {
            "a": {"device": name, "interface": mine},
            "b": {"device": dev, "interface": port},
            "redundancy_group": name,
        }
        for mine, (dev, port) in zip((ifs[-1], ifs[-2]), up, strict=True)
    ]


def synth_inventory(n_devices: int, n_interfaces: int = 48) -> dict[str, Any]:
    """An inventory dict: 2 core switches, then access switches of 4 vendors with dual uplinks.

    While the cores have a port for every access switch, the access switches hang off the cores.
    Beyond that an aggregation layer takes them: pairs of aggregation switches (each with
    `n_interfaces` ports, two of them uplinks to the cores) carry up to `n_interfaces - 2` access
    switches each, and the cores get one port per aggregation uplink. Every interface is the end of
    at most one link, so the inventory passes `govnet inventory check` at any size.
    """
    if n_devices < 3:
        raise ValueError("need at least 3 devices")
    sites = [{"name": "ncc", "kind": "control_centre"}, {"name": "access", "kind": "access", "parent": "ncc"}]
    k = n_interfaces
    flat = n_devices - 2 <= k or k < 3  # 2-port devices leave an aggregation switch no downlink
    pairs = 0 if flat else -(-(n_devices - 2) // k)  # each pair and its k-2 access switches: k devices
    core_ports = k if flat else max(k, 2 * pairs)
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for c in (1, 2):
        devices.append({
            "name": f"core{c}", "site": "ncc", "role": "core_switch", "vendor": "huawei", "model": "S12708",
            "address": f"10.0.0.{c}", "interfaces": [_CORE_IF.format(p) for p in range(1, core_ports + 1)],
        })  # fmt: skip
    aggs: list[tuple[str, list[str]]] = []
    for p in range(pairs):
        for side, c_port in (("a", 2 * p + 1), ("b", 2 * p + 2)):
            j = 2 * p + (side == "b")
            name = f"agg{p + 1:03d}{side}"
            ifs = [_CORE_IF.format(q) for q in range(1, k + 1)]
            devices.append({
                "name": name, "site": "ncc", "role": "aggregation_switch", "vendor": "huawei",
                "address": f"10.0.{1 + j // 250}.{j % 250 + 1}", "interfaces": ifs,
            })  # fmt: skip
            links += _uplinks(
                name, ifs, (("core1", _CORE_IF.format(c_port)), ("core2", _CORE_IF.format(c_port)))
            )
            aggs.append((name, ifs))
    for n in range(n_devices - 2 - 2 * pairs):
        vendor, model = _ACCESS[n % len(_ACCESS)]
        name = f"sw{n + 1:04d}"
        ifs = [_IF_NAMES[vendor].format(q) for q in range(1, k + 1)]
        devices.append({
            "name": name, "site": "access", "role": "access_switch", "vendor": vendor, "model": model,
            "address": f"10.{1 + n // 250}.{n % 250}.1", "interfaces": ifs,
        })  # fmt: skip
        if flat:
            port = _CORE_IF.format(n % k + 1)
            links += _uplinks(name, ifs, (("core1", port), ("core2", port)))
        else:
            (a, a_ifs), (b, b_ifs) = aggs[2 * (n // (k - 2))], aggs[2 * (n // (k - 2)) + 1]
            slot = n % (k - 2)  # the aggregation switches' last two ports are their uplinks
            links += _uplinks(name, ifs, ((a, a_ifs[slot]), (b, b_ifs[slot])))
    return {"sites": sites, "devices": devices, "links": links}


def write_synth_inventory(path: Path, n_devices: int, n_interfaces: int = 48) -> Path:
    """Write a synthetic inventory YAML file and return its path."""
    path.write_text(
        yaml.safe_dump(synth_inventory(n_devices, n_interfaces), sort_keys=False), encoding="utf-8"
    )
    return path
