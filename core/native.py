"""Modules compiled with mypyc (an accelerator, never a requirement), and the guard that keeps them honest.

A package with compiled modules declares them as a `Native` (collectors/syslog/native.py: the syslog parse
path; logstore/native.py: the worker's numbering). `scripts/build_native.py` (run by `make bootstrap`)
compiles each package's modules into extension modules next to their sources, plus one shared library
per package holding their code (`<package>/_compiled__mypyc<suffix>`), and writes the package's manifest
`<package>/_compiled.json`: the SHA-256 of each source it compiled, the interpreter's extension suffix and
mypy's version. Python's import system prefers an extension module to a `.py` of the same name, so a
compiled module left behind after its source was edited would silently run the old code. `guard()`
(called by the package's `__init__`, before any of its compiled modules is imported) therefore compares
the sources with the manifest:

- every extension present and every source hash equal: the compiled modules are imported;
- no extension present: the pure-Python modules are imported (no compiler at build time);
- anything else (a source edited since the build, a missing or unreadable manifest, an extension
  missing or built for another interpreter): all of the package's modules are imported from their
  `.py` sources, with a RuntimeWarning, or, under GOVNET_STRICT=1, ImportError (tests must run the
  fresh compiled code).

It is all or nothing within a package: its compiled modules call each other directly inside their shared
library, so a compiled module must never be mixed with an interpreted copy of another. Packages are
compiled separately (one group each, no native calls between groups), so each decides on its own.
GOVNET_NATIVE=0 takes the `.py` sources of every package on purpose (comparing the two in tests and
benchmarks). This module imports nothing of ours: the build script loads it before any package.

A package may also have modules written in C (`CModule`: logstore/digest.c, the store's SHA-256 work with
OpenSSL): `<name>.c` is built into the extension `<name><suffix>`, which replaces the pure-Python
`<name>.py` beside it (the reference it must match byte for byte). The guard treats it as one of the
package's compiled modules: the manifest holds the hashes of both the `.c` and the `.py` (an edit to
either makes the build stale), and the fallbacks import the `.py`.
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

GROUP = "_compiled"  # each package's mypyc shared library: <package>/_compiled__mypyc<suffix>
MANIFEST = "_compiled.json"
EXT_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so


@dataclass(frozen=True, slots=True)
class Status:
    """What the guard found: `compiled` (fresh extensions), `source` (none built) or `stale` (why)."""

    state: str
    reason: str


_decided: dict[str, list[Status]] = {}  # each package's guard decisions in this process


@dataclass(frozen=True, slots=True)
class CModule:
    """A module written in C (`<name>.c`) that replaces the pure-Python `<name>.py` beside it when built."""

    name: str
    libraries: tuple[str, ...] = ()  # linked against, e.g. ("crypto",): OpenSSL's libcrypto
    headers: tuple[str, ...] = ()  # needed to build it, e.g. ("openssl/evp.h",): libssl-dev
    packages: str = ""  # the Debian packages that provide the headers, for the build's message


@dataclass(frozen=True, slots=True)
class Native:
    """One package's compiled modules: `modules` of `package` (in import order, built with mypyc) and
    `c_modules` (written in C) in `folder`."""

    package: str  # dotted name, e.g. "logstore"
    folder: Path
    modules: tuple[str, ...]
    what: str  # what the modules do, for the stale-build message
    c_modules: tuple[CModule, ...] = ()

    @property
    def group(self) -> str:
        """The dotted name of the package's mypyc group (its shared library)."""
        return f"{self.package}.{GROUP}"

    def module_names(self) -> list[str]:
        """Every module a build replaces: the mypyc ones, then those written in C."""
        return [*self.modules, *(c.name for c in self.c_modules)]

    def names(self) -> list[str]:
        """Module names of the build products that are extensions (the modules, the shared library)."""
        mypyc = [*self.modules, f"{GROUP}__mypyc"] if self.modules else []
        return [*mypyc, *(c.name for c in self.c_modules)]

    def sources(self) -> list[str]:
        """The files a build is made from (and must match): each module's `.py`, each C module's `.c`."""
        return [*(f"{name}.py" for name in self.module_names()), *(f"{c.name}.c" for c in self.c_modules)]

    def source_hashes(self, folder: Path | None = None) -> dict[str, str]:
        """SHA-256 of each source: by module name for a `.py`, by file name for a `.c`."""
        where = folder or self.folder
        return {
            _key(name): hashlib.sha256((where / name).read_bytes()).hexdigest() for name in self.sources()
        }

    def built_files(self, folder: Path | None = None) -> list[Path]:
        """The build products in `folder`: extensions of the modules (any suffix this interpreter
        loads), the shared library and the manifest."""
        where = folder or self.folder
        found = [where / f"{n}{s}" for n in self.names() for s in importlib.machinery.EXTENSION_SUFFIXES]
        found.append(where / MANIFEST)
        return [p for p in found if p.exists()]

    def reference(self, name: str) -> ModuleType:
        """The pure-Python `<name>.py` of a C module, loaded on its own beside whichever module the package
        imported (tests and benchmarks compare the two)."""
        alias = f"{self.package}._{name}_reference"
        spec = importlib.util.spec_from_file_location(alias, self.folder / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def check(self, folder: Path | None = None) -> Status:
        """Whether the extensions in `folder` are present and were built from exactly the sources there."""
        where = folder or self.folder
        found = {p for p in self.built_files(where) if p.name != MANIFEST}
        if not found:
            return Status("source", "not compiled")
        expected = {where / f"{n}{EXT_SUFFIX}" for n in self.names()}
        if found != expected:
            odd = sorted(p.name for p in found ^ expected)
            return Status("stale", f"extensions missing or not from this build: {', '.join(odd)}")
        try:
            manifest = json.loads((where / MANIFEST).read_text(encoding="utf-8"))
            built = manifest["sources"]
            suffix = manifest["suffix"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Status("stale", f"no valid build manifest {MANIFEST} ({type(exc).__name__})")
        if suffix != EXT_SUFFIX:
            return Status("stale", f"built for {suffix}, this interpreter loads {EXT_SUFFIX}")
        try:
            now = self.source_hashes(where)
        except OSError as exc:  # e.g. an install without the `.c` (the manifest cannot be checked)
            return Status("stale", f"a source is missing: {Path(exc.filename or '?').name}")
        changed = [name for name in self.sources() if built.get(_key(name)) != now[_key(name)]]
        if changed:
            return Status("stale", f"source changed since the build: {', '.join(changed)}")
        return Status("compiled", "extensions match their sources")

    def guard(self, folder: Path | None = None) -> Status:
        """Check the build in `folder`; unless it is fresh, imports take the `.py` sources (module doc)."""
        where = folder or self.folder
        result = self.check(where)
        if os.environ.get("GOVNET_NATIVE") == "0" and result.state != "source":
            result = Status("source", f"GOVNET_NATIVE=0 (the build: {result.state}, {result.reason})")
            _take_sources(self, where)
        _decided.setdefault(self.package, []).append(result)
        if result.state == "stale":
            message = (
                f"compiled {self.what} in {where} is stale ({result.reason}): "
                "run `make bootstrap` (scripts/build_native.py) to rebuild it"
            )
            if os.environ.get("GOVNET_STRICT") == "1":
                raise ImportError(message + "; GOVNET_STRICT=1 refuses the Python fallback")
            warnings.warn(message + "; using the Python sources meanwhile", RuntimeWarning, stacklevel=2)
            _take_sources(self, where)
        return result

    def status(self) -> Status | None:
        """What `guard()` decided in this process (None before it ran)."""
        decided = _decided.get(self.package)
        return decided[-1] if decided else None

    def loaded(self) -> dict[str, str]:
        """For each compiled module already imported: "compiled" or "source", by what was actually loaded."""
        out = {}
        for name in self.module_names():
            module = sys.modules.get(f"{self.package}.{name}")
            if module is not None:
                out[name] = "compiled" if str(module.__file__).endswith(EXT_SUFFIX) else "source"
        return out


class _SourceOnly(importlib.abc.MetaPathFinder):
    """Imports a package's compiled modules from their `.py` files, ignoring the extensions beside them."""

    def __init__(self, native: Native, folder: Path) -> None:
        self.package = native.package
        self.folder = folder
        self.names = {f"{native.package}.{name}": name for name in native.module_names()}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        name = self.names.get(fullname)
        if name is None:
            return None
        return importlib.util.spec_from_file_location(fullname, self.folder / f"{name}.py")


def _key(source: str) -> str:
    """A source's key in the manifest: a `.py` by its module name (as mypyc's modules always were), a
    `.c` by its file name."""
    return source.removesuffix(".py")


def _take_sources(native: Native, folder: Path) -> None:
    if not any(isinstance(f, _SourceOnly) and f.package == native.package for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceOnly(native, folder))
