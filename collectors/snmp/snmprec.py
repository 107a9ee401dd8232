"""Read snmpsim `.snmprec` recordings into a walk (numeric OID -> value), as the engine returns them."""

from __future__ import annotations

from pathlib import Path

from collectors.snmp.evaluate import Walk

_INT_TYPES = {"2", "65", "66", "67", "70"}


def unhex(value: str) -> bytes:
    """Hex digits to bytes as snmpsim reads them: an odd trailing nibble becomes a byte of its own.

    Real recordings carry `4x` values with an odd number of digits ("4142a" is b"AB\\x0a");
    snmpsim serves them that way, so the lab and the offline tests do the same. Raises ValueError
    on a non-hex digit.
    """
    value = value.strip()
    if len(value) % 2:
        return bytes.fromhex(value[:-1]) + bytes([int(value[-1], 16)])
    return bytes.fromhex(value)


def parse_snmprec(text: str) -> Walk:
    """Parse recording text; values typed like gufo-snmp returns them (int, bytes, str OID/IP, None)."""
    walk: Walk = {}
    for line in text.splitlines():
        parts = line.split("|", 2)
        if len(parts) != 3:
            continue
        oid, tag, value = parts
        oid = oid.strip().lstrip(".")
        if tag in _INT_TYPES:
            try:
                walk[oid] = int(value)
            except ValueError:
                continue
        elif tag == "4":
            walk[oid] = value.encode("utf-8", "surrogateescape")
        elif tag == "4x":
            try:
                walk[oid] = unhex(value)
            except ValueError:
                continue
        elif tag == "6":
            walk[oid] = value.strip().lstrip(".")
        elif tag == "64":
            walk[oid] = value
        elif tag == "5":
            walk[oid] = None
    return walk


def load_snmprec(path: Path) -> Walk:
    """Parse a recording file (undecodable bytes kept)."""
    return parse_snmprec(path.read_bytes().decode("utf-8", "surrogateescape"))
