"""Compile the MIB sources in mibs/src with pysmi into the committed name -> OID table mibs/oids.json.

Run `.venv/bin/python -m collectors.snmp.mibgen` to regenerate, `--check` to regenerate in memory
and exit 1 when the committed file differs (the test suite runs the check).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE / "mibs" / "src"
OUT = HERE / "mibs" / "oids.json"

# Node types a profile may reference: values come from scalars and columns; tables are walk roots.
_EXPORTED = {"scalar", "column", "table"}


def _compile(src: Path) -> dict[str, dict[str, Any]]:
    """Compile every module in `src` to pysmi's JSON form, keyed by module name."""
    from pysmi.codegen import JsonCodeGen
    from pysmi.compiler import MibCompiler
    from pysmi.parser import SmiV1CompatParser
    from pysmi.reader import FileReader
    from pysmi.searcher import StubSearcher
    from pysmi.writer import CallbackWriter

    out: dict[str, dict[str, Any]] = {}

    def collect(name: str, data: str, _ctx: object) -> None:
        out[name] = json.loads(data)

    compiler = MibCompiler(SmiV1CompatParser(), JsonCodeGen(), CallbackWriter(collect))
    compiler.add_sources(FileReader(str(src)).set_options(fuzzyMatching=True))
    compiler.add_searchers(StubSearcher(*JsonCodeGen.baseMibs))
    modules = sorted(p.stem for p in src.glob("*.mib"))
    status = compiler.compile(*modules, noDeps=False, genTexts=False, rebuild=True)
    failed = {m: str(s) for m, s in status.items() if s not in ("compiled", "untouched")}
    if failed:
        raise SystemExit(f"MIB compilation failed: {failed}")
    return out


def generate(src: Path = SRC) -> dict[str, dict[str, str]]:
    """The OID table: object name -> {oid, module, kind, syntax}."""
    table: dict[str, dict[str, str]] = {}
    for module, symbols in sorted(_compile(src).items()):
        for name, sym in symbols.items():
            if not isinstance(sym, dict) or sym.get("nodetype") not in _EXPORTED:
                continue
            syntax = sym.get("syntax", {})
            entry = {
                "oid": sym["oid"],
                "module": module,
                "kind": sym["nodetype"],
                "syntax": str(syntax.get("type", "")) if isinstance(syntax, dict) else "",
            }
            if name in table and table[name]["oid"] != entry["oid"]:
                raise SystemExit(f"object name {name} defined twice with different OIDs")
            table[name] = entry
    return dict(sorted(table.items()))


def render(table: dict[str, dict[str, str]]) -> str:
    """Stable JSON text of the table (one object per line for readable diffs)."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in table.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry: regenerate oids.json, or with --check report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if oids.json is out of date")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python -m collectors.snmp.mibgen", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date ({text.count(chr(10)) - 2} objects)")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
