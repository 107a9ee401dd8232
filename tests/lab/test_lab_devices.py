"""Synthetic lab devices agree with the real recordings: same OIDs carry the same SNMP types."""

from __future__ import annotations

import time

import pytest

from inventory.model import Inventory
from lab.devices import build_devices, build_view
from lab.profiles import DATA_DIR, vendor_profile
from lab.snmp import ber
from lab.snmp.snmprec import load_snmprec
from tests.support.paths import DATA
from tests.support.require import require

SNMPREC = DATA / "snmprec"

# vendor, role, model, recording, minimum number of vendor-object OIDs found in the recording
CASES = [
    ("huawei", "core_switch", "S5720-56C-PWR-EI-AC", "vrp_5720", 3),
    ("h3c", "core_switch", "", "comware", 3),
    ("ruijie", "access_switch", "S6150-24VS8CQ-X", "ruijie_s6150", 6),
    ("cisco", "access_switch", "WS-C2960X-48FPS-L", "ios_2960x", 10),
    ("cisco", "firewall", "ASA5555", "asa", 10),
    ("hillstone", "firewall", "SG-6000-E3965", "stoneos", 3),
    ("linux", "db_server", "", "linux_powermon", 4),
    ("generic", "ups", "", "generex-ups_cs141", 15),
]


def _device(vendor: str, role: str, model: str) -> Inventory:
    return Inventory.model_validate(
        {
            "sites": [{"name": "s"}],
            "devices": [
                {
                    "name": "d1", "site": "s", "role": role, "vendor": vendor, "model": model,
                    "address": "10.0.0.1", "interfaces": ["GigabitEthernet0/0/1", "GigabitEthernet0/0/2"],
                }
            ],
        }
    )  # fmt: skip


def _tag(encoded: bytes) -> int:
    return encoded[0]


@pytest.mark.parametrize(("vendor", "role", "model", "recording", "minimum"), CASES)
def test_synthetic_view_agrees_with_recording(
    vendor: str, role: str, model: str, recording: str, minimum: int
) -> None:
    path = SNMPREC / f"{recording}.snmprec"
    require(path.exists(), f"recording {path}")
    real = dict(load_snmprec(path))
    now = time.time()
    dev = build_devices(_device(vendor, role, model), "127.20.0.0", 16161, None, now)[0]
    view = build_view(dev)
    # sysObjectID is under the same enterprise (or MIB root) as the real device's.
    sys_oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)
    mine, theirs = view.value_at(view.index(sys_oid), now), real[sys_oid]
    assert ber.dec_oid(mine, 2, len(mine))[:7] == ber.dec_oid(theirs, 2, len(theirs))[:7]
    shared = [o for o in view.oids if o in real and o[:7] != (1, 3, 6, 1, 2, 1, 1)]
    vendor_shared = [
        o
        for o in shared
        if o[:6] == (1, 3, 6, 1, 4, 1) or o[:7] in ((1, 3, 6, 1, 2, 1, 25), (1, 3, 6, 1, 2, 1, 33))
    ]
    assert len(vendor_shared) >= minimum, [ber.oid_str(o) for o in vendor_shared]
    for oid in shared:
        got = view.value_at(view.index(oid), now)
        assert _tag(got) == _tag(real[oid]), (ber.oid_str(oid), got[:8], real[oid][:8])
    # IF-MIB columns present in the recording have the same types (e.g. HC counters are Counter64).
    cols_real = {
        o[:-1]: _tag(v)
        for o, v in real.items()
        if o[:9] in ((1, 3, 6, 1, 2, 1, 2, 2, 1), (1, 3, 6, 1, 2, 1, 31, 1, 1))
    }
    cols_view = {o[:-1]: _tag(view.value_at(i, now)) for i, o in enumerate(view.oids) if o[:-1] in cols_real}
    assert cols_view, "no IF-MIB column in common"
    assert all(cols_view[c] == cols_real[c] for c in cols_view), {
        ber.oid_str(c): (cols_view[c], cols_real[c]) for c in cols_view if cols_view[c] != cols_real[c]
    }


def test_every_data_file_builds_for_every_model_and_role() -> None:
    for path in sorted(DATA_DIR.glob("*.yaml")):
        prof = vendor_profile(path.stem)
        roles = {"access_switch", *(prof.get("role_models") or {}), *(prof.get("role_objects") or {})}
        models = [m for m in prof.get("models", {}) if m != "default"] or [""]
        for model in models:
            for role in roles:
                dev = build_devices(_device(path.stem, role, model), "127.20.0.0", 161, None, 0.0)[0]
                view = build_view(dev)
                for i in range(len(view)):
                    ber.read_tlv(view.value_at(i, 1e9), 0, 10**6)
