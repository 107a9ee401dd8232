"""`govnet where ADDRESS|MAC`: the address's MAC(s), vendor, edge port, VLAN and history, from the store."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from collectors.where.query import QueryError, answer, parse_query
from collectors.where.service import WhereSection, history_of
from core.config import ConfigError, inventory_path, load_document
from core.secrets import SecretError
from inventory.model import Inventory


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else "-"


def render_text(doc: dict[str, Any], out: TextIO) -> None:
    """The answer for people: location first, then the history."""
    macs = ", ".join(f"{m['mac']} ({m['vendor'] or 'vendor unknown'})" for m in doc["macs"]) or "-"
    out.write(f"{doc['query']}: MAC {macs}\n")
    loc = doc["location"]
    if loc:
        vlan = f" VLAN {loc['vlan']}" if loc["vlan"] else ""
        site = f" (site {loc['site']})" if loc["site"] else ""
        out.write(f"  port: {loc['device']} {loc['port']}{vlan}{site}, last seen {_when(loc['last_seen'])}\n")
    else:
        out.write("  port: not found on any host-facing switch port\n")
    for h in doc["history"]:
        place = f"{h['device']} {h['port']}" if h["device"] else "(port unknown)"
        vlan = f" VLAN {h['vlan']}" if h["vlan"] else ""
        out.write(
            f"  {_when(h['first_seen'])} .. {_when(h['last_seen'])}  {h['ip'] or '-':<15} {h['mac']}  "
            f"{place}{vlan}\n"
        )


def where_command(config: Path, query: str, json_out: bool, out: TextIO = sys.stdout) -> int:
    """0 found, 1 not in the history, 2 bad query or config."""
    err = sys.stderr
    try:
        q = parse_query(query)
    except QueryError as exc:
        err.write(f"govnet where: {exc}\n")
        return 2
    try:
        doc_ = load_document(config)
        found = doc_.section("where", WhereSection)
        inv_path = inventory_path(doc_)
    except ConfigError as exc:
        err.write(f"govnet where: invalid config {config}\n{exc}\n")
        return 2
    if found is None:
        err.write(f"govnet where: {config} has no where: section (nothing collects addresses)\n")
        return 2
    try:
        history = history_of(found)
    except (ValueError, SecretError, OSError) as exc:
        err.write(f"govnet where: cannot open the address history: {exc}\n")
        return 2
    inventory: Inventory | None = None
    try:
        from inventory.load import load_inventory

        inventory = load_inventory(inv_path)
    except Exception:  # the answer is still useful without sites
        inventory = None
    try:
        doc = answer(q, history, inventory)
    finally:
        history.db.close()
    if json_out:
        out.write(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n")
    else:
        render_text(doc, out)
    return 0 if doc["found"] else 1
