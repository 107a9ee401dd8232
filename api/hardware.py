"""Hardware and firmware inventory and link verification from the latest polls; CSV and XLSX export.

One row per device (model, software version and release, serial from govnet_device_info) followed by
one row per chassis, module, power supply, fan and transceiver (govnet_module_info). Every value is
device text: the console escapes it, the CSV neutralises cells Excel would run as formulas, and the
XLSX writes every cell as a string (never a formula or a link).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from collectors.links import Verification, by_device, verify
from core.samples import Sample
from inventory.model import Inventory
from logstore.export import neutralise

COLUMNS = (
    "device", "site", "role", "vendor", "item", "name", "model", "serial",
    "version", "release", "hardware_rev", "firmware_rev", "software_rev",
)  # fmt: skip
ITEM_ORDER = {"device": 0, "chassis": 1, "module": 2, "power_supply": 3, "fan": 4, "transceiver": 5}


def hardware_rows(inventory: Inventory, samples: Iterable[Sample]) -> list[dict[str, str]]:
    """The inventory table: per device its identity row, then its hardware items (declared order)."""
    grouped = by_device(samples)
    rows: list[dict[str, str]] = []
    for d in inventory.devices:
        base = {"device": d.name, "site": d.site, "role": d.role.value, "vendor": d.vendor.value}
        items: list[dict[str, str]] = []
        info: dict[str, str] = {}
        for s in grouped.get(d.name, ()):
            if s.metric == "govnet_device_info":
                info = s.label_dict
            elif s.metric == "govnet_module_info":
                lab = s.label_dict
                items.append(
                    {
                        **base,
                        "item": lab.get("class", ""),
                        **{k: lab.get(k, "") for k in ("name", "model", "serial")},
                        **{k: lab.get(k, "") for k in ("hardware_rev", "firmware_rev", "software_rev")},
                        "entity": lab.get("entity", ""),
                    }
                )
        rows.append(
            {
                **base,
                "item": "device",
                "name": info.get("sysname", ""),
                "model": info.get("hardware", "") or (d.model or ""),
                "serial": info.get("serial", ""),
                "version": info.get("version", ""),
                "release": info.get("release", ""),
            }
        )
        items.sort(key=lambda r: (ITEM_ORDER.get(r["item"], 9), _num(r.get("entity", ""))))
        rows.extend(items)
    return [{c: r.get(c, "") for c in COLUMNS} for r in rows]


def _num(text: str) -> int:
    return int(text) if text.isdigit() else 0


def to_csv(rows: list[dict[str, str]]) -> bytes:
    """CSV (UTF-8 with BOM so Excel reads the Chinese right); formula-like cells neutralised."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([neutralise(r[c]) for c in COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: list[dict[str, str]]) -> bytes:
    """An XLSX workbook: one sheet, every cell a plain string (device text is never a formula or link)."""
    import xlsxwriter  # type: ignore[import-untyped]

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    ws = wb.add_worksheet("硬件清单 Hardware")
    bold = wb.add_format({"bold": True})
    for col, name in enumerate(COLUMNS):
        ws.write_string(0, col, name, bold)
    for n, r in enumerate(rows, start=1):
        for col, name in enumerate(COLUMNS):
            ws.write_string(n, col, r[name])
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, len(rows), len(COLUMNS) - 1)
    wb.close()
    return buf.getvalue()


def link_view(inventory: Inventory, samples: Iterable[Sample]) -> Verification:
    """Declared links checked against the LLDP/CDP neighbours in the latest polls."""
    return verify(inventory, by_device(samples))


def links_json(found: Verification) -> dict[str, Any]:
    """The API's shape of a verification: links with state and what was seen, undeclared neighbours."""
    return {
        "links": [
            {
                "id": f"{c.link.a.device}:{c.link.a.interface}--{c.link.b.device}:{c.link.b.interface}",
                "a": {"device": c.link.a.device, "interface": c.link.a.interface},
                "b": {"device": c.link.b.device, "interface": c.link.b.interface},
                "redundancy_group": c.link.redundancy_group,
                "state": c.state,
                "seen": c.seen,
            }
            for c in found.links
        ],
        "undeclared": [
            {
                "device": n.device,
                "ifname": n.ifname,
                "remote_sysname": n.remote_sysname,
                "remote_port": n.remote_port,
                "remote_device": n.remote_device,
            }
            for n in found.undeclared
        ],
    }
