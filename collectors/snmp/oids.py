"""The generated MIB object table (mibs/oids.json): object names to numeric OIDs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

OIDS_JSON = Path(__file__).resolve().parent / "mibs" / "oids.json"


@dataclass(frozen=True, slots=True)
class MibObject:
    """One MIB object a profile may reference."""

    name: str
    oid: str
    kind: str  # scalar | column | table
    syntax: str

    @property
    def counter_bits(self) -> int:
        """64 for Counter64 objects, else 32."""
        return 64 if self.syntax == "Counter64" else 32


@lru_cache(maxsize=1)
def mib_objects() -> dict[str, MibObject]:
    """All objects of the committed table, by name."""
    raw = json.loads(OIDS_JSON.read_text(encoding="utf-8"))
    return {name: MibObject(name, v["oid"], v["kind"], v.get("syntax", "")) for name, v in raw.items()}


def resolve(name: str) -> MibObject:
    """The object called `name`; KeyError with a clear message when unknown."""
    try:
        return mib_objects()[name]
    except KeyError:
        raise KeyError(
            f"unknown MIB object {name!r}: add it to collectors/snmp/mibs/src and run mibgen"
        ) from None
