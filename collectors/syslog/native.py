"""The compiled syslog parse path (mypyc): which modules it covers, and the guard that keeps it honest.

`scripts/build_native.py` (run by `make bootstrap`) compiles MODULES with mypyc into extension modules
next to their sources, plus one shared library holding their code, and writes MANIFEST: the SHA-256 of
each source it compiled, the interpreter's extension suffix and mypy's version. Python's import system
prefers an extension module to a `.py` of the same name, so a compiled module left behind after its
source was edited would silently run the old code. `guard()` (called by the package's `__init__`, before
any of the modules is imported) therefore compares the sources with the manifest:

- every extension present and every source hash equal: the compiled modules are imported;
- no extension present: the pure-Python modules are imported (no compiler at build time; the
  extensions are an accelerator, never a requirement);
- anything else (a source edited since the build, a missing or unreadable manifest, an extension
  missing or built for another interpreter): all four are imported from their `.py` sources, with a
  RuntimeWarning, or, under GOVNET_STRICT=1, ImportError (tests must run the fresh compiled code).

It is all or nothing: the compiled modules call each other directly inside their shared library, so
a compiled module must never be mixed with an interpreted copy of another. GOVNET_NATIVE=0 takes the
`.py` sources on purpose (comparing the two in tests and benchmarks).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

PACKAGE = "collectors.syslog"
PACKAGE_DIR = Path(__file__).parent
# Compiled in one group, in import order (the last imports the others).
MODULES = ("decode", "rfc", "formats", "parse")
GROUP = "_compiled"  # mypyc's shared library: collectors/syslog/_compiled__mypyc<suffix>
MANIFEST = "_compiled.json"
EXT_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so


@dataclass(frozen=True, slots=True)
class Status:
    """What the guard found: `compiled` (fresh extensions), `source` (none built) or `stale` (why)."""

    state: str
    reason: str


def source_hashes(folder: Path = PACKAGE_DIR) -> dict[str, str]:
    """SHA-256 of each compiled module's source, by module name."""
    return {name: hashlib.sha256((folder / f"{name}.py").read_bytes()).hexdigest() for name in MODULES}


def _names() -> list[str]:
    return [*MODULES, f"{GROUP}__mypyc"]


def built_files(folder: Path = PACKAGE_DIR) -> list[Path]:
    """The build products in `folder`: extensions of the modules (any suffix this interpreter
    loads), the shared library and the manifest."""
    found = [folder / f"{n}{s}" for n in _names() for s in importlib.machinery.EXTENSION_SUFFIXES]
    found.append(folder / MANIFEST)
    return [p for p in found if p.exists()]


def check(folder: Path = PACKAGE_DIR) -> Status:
    """Whether the extensions in `folder` are present and were built from exactly the sources there."""
    found = {p for p in built_files(folder) if p.name != MANIFEST}
    if not found:
        return Status("source", "not compiled")
    expected = {folder / f"{n}{EXT_SUFFIX}" for n in _names()}
    if found != expected:
        odd = sorted(p.name for p in found ^ expected)
        return Status("stale", f"extensions missing or not from this build: {', '.join(odd)}")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        built = manifest["sources"]
        suffix = manifest["suffix"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Status("stale", f"no valid build manifest {MANIFEST} ({type(exc).__name__})")
    if suffix != EXT_SUFFIX:
        return Status("stale", f"built for {suffix}, this interpreter loads {EXT_SUFFIX}")
    now = source_hashes(folder)
    changed = [f"{name}.py" for name in MODULES if built.get(name) != now[name]]
    if changed:
        return Status("stale", f"source changed since the build: {', '.join(changed)}")
    return Status("compiled", "extensions match their sources")


class _SourceOnly(importlib.abc.MetaPathFinder):
    """Imports the compiled modules' names from their `.py` files, ignoring the extensions beside them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names = {f"{PACKAGE}.{name}": name for name in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        name = self.names.get(fullname)
        if name is None:
            return None
        return importlib.util.spec_from_file_location(fullname, self.folder / f"{name}.py")


_decided: list[Status] = []  # the guard's decision in this process


def status() -> Status | None:
    """What `guard()` decided in this process (None before it ran)."""
    return _decided[-1] if _decided else None


def guard(folder: Path = PACKAGE_DIR) -> Status:
    """Check the build in `folder`; unless it is fresh, imports take the `.py` sources (module doc)."""
    result = check(folder)
    if os.environ.get("GOVNET_NATIVE") == "0" and result.state != "source":
        result = Status("source", f"GOVNET_NATIVE=0 (the build: {result.state}, {result.reason})")
        sys.meta_path.insert(0, _SourceOnly(folder))
    _decided.append(result)
    if result.state == "stale":
        message = (
            f"compiled syslog parser in {folder} is stale ({result.reason}): "
            "run `make bootstrap` (scripts/build_native.py) to rebuild it"
        )
        if os.environ.get("GOVNET_STRICT") == "1":
            raise ImportError(message + "; GOVNET_STRICT=1 refuses the Python fallback")
        warnings.warn(message + "; using the Python sources meanwhile", RuntimeWarning, stacklevel=2)
        if not any(isinstance(f, _SourceOnly) for f in sys.meta_path):
            sys.meta_path.insert(0, _SourceOnly(folder))
    return result


def loaded() -> dict[str, str]:
    """For each compiled module already imported: "compiled" or "source", by what was actually loaded."""
    out = {}
    for name in MODULES:
        module = sys.modules.get(f"{PACKAGE}.{name}")
        if module is not None:
            out[name] = "compiled" if str(module.__file__).endswith(EXT_SUFFIX) else "source"
    return out
