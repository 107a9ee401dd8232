"""snmpsim `.snmprec` recordings as a walk (numeric OID -> value), as the engine returns them.

The recording format itself is read by core/snmprec.py, the same reader the lab serves them with.
"""

from __future__ import annotations

from pathlib import Path

from collectors.snmp.evaluate import Walk
from core.snmprec import INTEGER_TAGS, Record, read_records


def _value(record: Record) -> int | bytes | str | None:
    # Typed like gufo-snmp returns them: int, bytes (also Opaque), str (OID, IpAddress), None (NULL).
    if record.tag in INTEGER_TAGS:
        return record.integer()
    if record.tag in ("4", "68"):
        return record.raw
    if record.tag in ("6", "64"):
        return record.text()
    return None


def parse_snmprec(text: str, source: str = "<snmprec>") -> Walk:
    """Parse recording text (SnmprecError naming a non-record line; unservable variables skipped, warned)."""
    return {r.oid: _value(r) for r in read_records(text, source)}


def load_snmprec(path: Path) -> Walk:
    """Parse a recording file (undecodable bytes kept)."""
    return parse_snmprec(path.read_bytes().decode("utf-8", "surrogateescape"), path.name)
