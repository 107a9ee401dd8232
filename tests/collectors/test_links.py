"""Link verification on samples: each state, undeclared neighbours, the discover fragment."""

from __future__ import annotations

import yaml

from collectors.links import discover_fragment, link_samples, port_key, verify
from core.samples import Sample
from inventory.model import Inventory

INV = Inventory.model_validate(
    {
        "sites": [{"name": "s"}],
        "devices": [
            {"name": n, "site": "s", "role": r, "vendor": "huawei", "address": f"10.0.0.{k}"}
            for k, (n, r) in enumerate(
                [("core-1", "core_switch"), ("core-2", "core_switch"), ("agg-1", "aggregation_switch"),
                 ("fw-1", "firewall")], start=1
            )
        ],
        "links": [
            {"a": {"device": "agg-1", "interface": "GigabitEthernet0/0/47"},
             "b": {"device": "core-1", "interface": "XGigabitEthernet0/0/1"}, "redundancy_group": "up"},
            {"a": {"device": "agg-1", "interface": "GigabitEthernet0/0/48"},
             "b": {"device": "core-2", "interface": "XGigabitEthernet0/0/1"}, "redundancy_group": "up"},
            {"a": {"device": "fw-1", "interface": "eth1"},
             "b": {"device": "core-1", "interface": "XGE0/0/9"}},
        ],
    }
)  # fmt: skip


def nb(device: str, ifname: str, remote: str, port: str) -> Sample:
    labels = {"device": device, "ifname": ifname, "protocol": "lldp", "remote_sysname": remote}
    labels |= {"remote_port": port, "remote_port_desc": "", "remote_chassis": ""}
    return Sample("govnet_neighbor_info", tuple(sorted(labels.items())), 1.0, 0.0)


def oper(device: str, ifname: str, up: bool) -> Sample:
    return Sample("govnet_if_oper_up", (("device", device), ("ifname", ifname)), float(up), 0.0)


def states(snapshot: dict[str, list[Sample]]) -> list[str]:
    return [c.state for c in verify(INV, snapshot).links]


def test_port_names_compare_across_vendor_spellings() -> None:
    assert port_key("Gi1/0/1") == port_key("GigabitEthernet1/0/1")
    assert port_key("XGE0/0/1") == port_key("XGigabitEthernet0/0/1")
    assert port_key("GigabitEthernet 0/25") == port_key("GigabitEthernet0/25")
    assert port_key("Gi1/0/1") != port_key("Gi1/0/2") and port_key("Te1/0/1") != port_key("Gi1/0/1")


def test_confirmed_from_either_end_missing_down_unknown() -> None:
    # core-1 confirms link 1 (agg-1 sends nothing); link 2's ends speak LLDP but do not see each other;
    # fw-1 speaks no LLDP and core-1 sees nothing on XGE0/0/9: missing (core-1 does speak LLDP).
    snap = {
        "core-1": [nb("core-1", "XGigabitEthernet0/0/1", "AGG-1.example", "GigabitEthernet0/0/47")],
        "core-2": [nb("core-2", "XGigabitEthernet0/0/7", "other", "x")],
    }
    assert states(snap) == ["confirmed", "missing", "missing"]
    snap["agg-1"] = [oper("agg-1", "GigabitEthernet0/0/48", False)]
    assert states(snap) == ["confirmed", "down", "missing"]
    assert states({}) == ["unknown", "unknown", "unknown"]


def test_wrong_port_and_wrong_device() -> None:
    snap = {
        "agg-1": [
            nb("agg-1", "GigabitEthernet0/0/47", "core-1", "XGigabitEthernet0/0/2"),  # other core-1 port
            nb("agg-1", "GigabitEthernet0/0/48", "core-1", "XGigabitEthernet0/0/3"),  # other device
        ],
        "core-1": [nb("core-1", "XGigabitEthernet0/0/1", "agg-1", "GigabitEthernet0/0/47")],
    }
    checks = verify(INV, snap).links
    assert [c.state for c in checks[:2]] == ["wrong_port", "wrong_port"]  # a miswire outweighs a confirmation
    assert checks[0].seen == "GigabitEthernet0/0/47 -> core-1 XGigabitEthernet0/0/2"
    samples = link_samples(INV, verify(INV, snap), 5.0)
    firing = [s.label_dict for s in samples if s.metric == "govnet_link_state" and s.value == 1]
    assert {(f["a_interface"], f["state"], f["redundancy_group"]) for f in firing} == {
        ("GigabitEthernet0/0/47", "wrong_port", "up"),
        ("GigabitEthernet0/0/48", "wrong_port", "up"),
        ("eth1", "missing", ""),
    }
    assert {(f["device"], f["site"], f["role"]) for f in firing} == {
        ("agg-1", "s", "aggregation_switch"),
        ("fw-1", "s", "firewall"),
    }  # the a end's device labels: inhibition and routing treat it as that device's series


def test_undeclared_neighbours_and_discover_fragment() -> None:
    snap = {
        "core-1": [
            nb("core-1", "XGigabitEthernet0/0/1", "agg-1", "GigabitEthernet0/0/47"),
            nb("core-1", "XGigabitEthernet0/0/5", "core-2", "XGigabitEthernet0/0/5"),
            nb("core-1", "GigabitEthernet0/0/9", "printer-7", "port 1"),
        ],
        "core-2": [nb("core-2", "XGigabitEthernet0/0/5", "core-1", "XGigabitEthernet0/0/5")],
    }
    found = verify(INV, snap)
    assert [(n.device, n.ifname) for n in found.undeclared] == [
        ("core-1", "XGigabitEthernet0/0/5"),
        ("core-1", "GigabitEthernet0/0/9"),
        ("core-2", "XGigabitEthernet0/0/5"),
    ]
    text = discover_fragment(INV, found)
    assert "# core-1 GigabitEthernet0/0/9 -> printer-7 port 1 (not in the inventory)" in text
    doc = yaml.safe_load(text)
    assert doc == {
        "links": [
            {"a": {"device": "core-1", "interface": "XGigabitEthernet0/0/5"},
             "b": {"device": "core-2", "interface": "XGigabitEthernet0/0/5"}}
        ]
    }  # fmt: skip
    # The fragment is valid inventory: pasted in, the link is declared and confirmed.
    data = INV.model_dump(mode="json", exclude_none=True)
    data["links"] += doc["links"]
    assert verify(Inventory.model_validate(data), snap).undeclared[0].remote_sysname == "printer-7"


def test_service_checks_from_the_latest_store() -> None:
    import asyncio

    from collectors.links import LinkCheckService
    from core.latest import LatestStore

    store = LatestStore()
    store.publish("core-1", [nb("core-1", "XGigabitEthernet0/0/1", "agg-1", "GigabitEthernet0/0/47")])
    svc = LinkCheckService(INV, store, interval=0.01, wall=lambda: 42.0)

    async def once() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(once())
    got = {
        (s.label_dict["a_interface"], s.label_dict["state"])
        for s in svc.internal_samples()
        if s.metric == "govnet_link_state" and s.value == 1 and s.timestamp == 42.0
    }
    # agg-1 and core-2 report no neighbours at all: their link is unknown, not missing.
    assert got == {
        ("GigabitEthernet0/0/47", "confirmed"),
        ("GigabitEthernet0/0/48", "unknown"),
        ("eth1", "missing"),
    }
