"""Trap definitions are data: `collectors/traps/traps/*.yaml` (one file per vendor), matched by OID."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUILTIN_DIR = Path(__file__).with_name("traps")
_OID = r"^[0-2](\.\d+)+$"
Kind = Literal["link", "restart", "auth", "ha", "other"]


class TrapDef(BaseModel):
    """One trap: an exact snmpTrapOID (or a subtree), a name, what kind of event it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)
    oid: str | None = Field(None, pattern=_OID)
    prefix: str | None = Field(None, pattern=_OID)
    match_text: str | None = None  # a substring one varbind value must contain (syslog-as-trap)
    kind: Kind = "other"
    repoll: bool = True
    verified: bool = False
    source: str = ""

    @model_validator(mode="after")
    def _one_selector(self) -> TrapDef:
        if (self.oid is None) == (self.prefix is None):
            raise ValueError("give exactly one of oid or prefix")
        return self


class TrapFile(BaseModel):
    """A vendor's file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    vendor: str
    traps: list[TrapDef] = Field(default_factory=list)


class DefinitionError(ValueError):
    """A trap definition file is invalid."""


def load_files(paths: Iterable[Path]) -> list[TrapDef]:
    """Every definition of the given YAML files, in order; DefinitionError naming file and field."""
    out: list[TrapDef] = []
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            out.extend(TrapFile.model_validate(data).traps)
        except (OSError, yaml.YAMLError) as exc:
            raise DefinitionError(f"{path}: cannot read trap definitions: {type(exc).__name__}") from None
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise DefinitionError(f"{path}: {where}") from None
    return out


def builtin_files() -> list[Path]:
    """The shipped definition files, by name."""
    return sorted(BUILTIN_DIR.glob("*.yaml"))


# The generic traps every agent may send (SNMPv2-MIB/IF-MIB): their counters start at 0 for each device.
GENERIC_KINDS: tuple[Kind, ...] = ("link", "restart", "auth")


def generic_trap_names() -> list[str]:
    """Names of the shipped standard traps of the generic kinds (coldStart, linkDown, ...)."""
    defs = load_files([BUILTIN_DIR / "standard.yaml"])
    return sorted({d.name for d in defs if d.kind in GENERIC_KINDS})


@dataclass(frozen=True, slots=True)
class Classified:
    """What a received trap is."""

    name: str  # the definition's name, or "unknown"
    kind: Kind
    repoll: bool
    definition: TrapDef | None


UNKNOWN = Classified("unknown", "other", True, None)


class TrapCatalog:
    """Finds the definition of a trap OID: exact (text-qualified first), else the longest prefix."""

    def __init__(self, defs: Sequence[TrapDef]) -> None:
        self._exact: dict[str, list[TrapDef]] = {}
        self._prefixes: list[TrapDef] = []
        for d in defs:
            if d.oid is not None:
                self._exact.setdefault(d.oid, []).append(d)
            else:
                self._prefixes.append(d)
        for cands in self._exact.values():
            cands.sort(key=lambda d: d.match_text is None)  # text-qualified entries are tried first
        self._prefixes.sort(key=lambda d: -len(d.prefix or ""))
        self.names = sorted({d.name for d in defs} | {"unknown"})

    @classmethod
    def load(cls, extra: Iterable[Path] = ()) -> TrapCatalog:
        """The shipped definitions plus extra files (later files add to, not replace, the built-ins)."""
        return cls(load_files([*builtin_files(), *extra]))

    def classify(self, trap_oid: str, values: Sequence[str] = ()) -> Classified:
        """The definition matching `trap_oid` (and, when it asks, one of the varbind texts)."""
        trap_oid = trap_oid.lstrip(".")
        for d in self._exact.get(trap_oid, ()):
            if d.match_text is None or any(d.match_text in v for v in values):
                return Classified(d.name, d.kind, d.repoll, d)
        for d in self._prefixes:
            p = d.prefix or ""
            if trap_oid == p or trap_oid.startswith(p + "."):
                return Classified(d.name, d.kind, d.repoll, d)
        return UNKNOWN


_IFINDEX = re.compile(r"^1\.3\.6\.1\.2\.1\.2\.2\.1\.1\.(\d+)$")


def if_index_of(varbinds: Sequence[tuple[str, str]]) -> int | None:
    """The ifIndex a linkDown/linkUp trap names (its ifIndex.N varbind), if any."""
    for oid, value in varbinds:
        m = _IFINDEX.match(oid.lstrip("."))
        if m:
            try:
                return int(value)
            except ValueError:
                return int(m.group(1))
    return None
