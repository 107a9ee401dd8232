"""Compile the packages' mypyc and C modules (core/native.py; each package's native.py lists them), in place.

Run by `make bootstrap` and scripts/bundle.sh: `python scripts/build_native.py [--root DIR] [--force]
[--require] [--clean] [--package NAME ...]`. Builds only the packages whose manifest does not match
their current sources (nothing when all are fresh). Without a C compiler or the Python headers it
removes any old build products and leaves the pure-Python modules in use (exit 0; `--require` makes
that an error). Each package's manifest is written last, from the sources' hashes taken before
compiling, so an interrupted build or an edit during it reads as stale.

A package's modules written in C (core/native.py's CModule: logstore/digest.c) are built in the same
setuptools run, linked against their libraries; a package whose C module's headers are missing (e.g. no
libssl-dev) is left pure Python as a whole, like a machine without a compiler.

One mypyc run per package (each its own group, so no package's compiled code calls another's directly
and each package's guard decides alone), then one setuptools build of all their extensions, two at a
time: the log store's small group compiles beside the syslog parser's large one (measured: +4 s of
CPU, ~+1 s wall to `make bootstrap`; one mypyc run for both groups was no cheaper).

setuptools is driven directly (a Distribution running build_ext) rather than through `setup()`: that
would validate pyproject.toml's [project] table, which this venv's setuptools cannot read.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.native import Native

ROOT = Path(__file__).resolve().parent.parent
# The packages with compiled modules (each folder's native.py declares them as NATIVE).
PACKAGES = ("collectors/syslog", "logstore")


def load_natives(root: Path) -> list[Native]:
    """Each package's NATIVE, read from `root` without importing the packages (that would run their
    guards); core/native.py itself imports nothing of ours."""
    sys.path.insert(0, str(root))
    out = []
    for i, folder in enumerate(PACKAGES):
        spec = importlib.util.spec_from_file_location(f"_govnet_native_{i}", root / folder / "native.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out.append(module.NATIVE)
    return out


def compiler_missing() -> str | None:
    """Why no extension can be built here (None when a C compiler and Python.h are present)."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]  # as setuptools
    if shutil.which(cc) is None:
        return f"no C compiler ({cc})"
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.exists():
        return f"no Python headers ({include})"
    try:
        import mypyc.build  # noqa: F401 (only checks it is there)
    except ImportError:
        return "mypyc is not installed (the dev extra's mypy provides it)"
    return None


def headers_missing(native: Native) -> str | None:
    """Why the package's C modules cannot be built here (None when their headers are found): one run of
    the compiler's preprocessor, as setuptools will call it."""
    headers = [header for c in native.c_modules for header in c.headers]
    if not headers:
        return None
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    source = "".join(f"#include <{header}>\n" for header in headers)
    try:
        probe = subprocess.run([*cc, "-E", "-x", "c", "-o", os.devnull, "-"], input=source.encode(),
                               capture_output=True, timeout=60)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the C compiler did not run ({exc})"
    if probe.returncode != 0:
        packages = " ".join(c.packages for c in native.c_modules if c.packages)
        return f"no {', '.join(headers)} (Debian: {packages or 'its -dev package'})"
    return None


def build(root: Path, natives: list[Native]) -> None:
    """mypycify each package's modules into its group and build all the extensions in place under `root`."""
    from mypyc.build import mypycify
    from setuptools import Distribution, Extension

    from core.native import EXT_SUFFIX, MANIFEST

    hashes = [native.source_hashes() for native in natives]
    cwd = Path.cwd()
    os.chdir(root)  # mypy resolves module names (collectors.syslog.X) from the working directory
    try:
        extensions: list[Any] = []
        for native in natives:
            where = native.folder.relative_to(root)
            extensions += mypycify(
                [str(where / f"{name}.py") for name in native.modules],
                opt_level="3",
                group_name=native.group,
                target_dir=str(Path("build/native") / where),
            )
            for c in native.c_modules:
                extensions.append(
                    Extension(
                        f"{native.package}.{c.name}",
                        [str(where / f"{c.name}.c")],
                        libraries=list(c.libraries),
                        extra_compile_args=["-O2", "-Wall", "-Wextra"],
                    )
                )
        dist = Distribution({"name": "govnet-native", "ext_modules": extensions})
        dist.script_name = "build_native.py"
        jobs = str(min(len(natives), os.cpu_count() or 1))
        dist.script_args = ["-q", "build_ext", "--inplace", "--build-temp", "build/native/temp", "-j", jobs]
        dist.parse_command_line()
        dist.run_commands()
    finally:
        os.chdir(cwd)
    for native, before in zip(natives, hashes, strict=True):
        if native.source_hashes() != before:
            raise SystemExit("build_native: a source changed during the build; run it again")
        manifest = {
            "sources": before,
            "suffix": EXT_SUFFIX,
            "mypy": _mypy_version(),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        path = native.folder / MANIFEST
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)


def _mypy_version() -> str:
    from mypy.version import __version__

    return __version__


def clean(root: Path, natives: list[Native]) -> list[Path]:
    """Remove the packages' build products (extensions, manifest, generated C); return what was removed."""
    removed = [path for native in natives for path in native.built_files()]
    for path in removed:
        path.unlink()
    for native in natives:
        shutil.rmtree(root / "build/native" / native.folder.relative_to(root), ignore_errors=True)
    if len(natives) == len(PACKAGES):
        shutil.rmtree(root / "build/native", ignore_errors=True)
    return removed


def main(argv: list[str] | None = None) -> int:
    """Build the stale packages; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="source tree to build in (default: this one)")
    ap.add_argument("--force", action="store_true", help="rebuild even when the manifests are current")
    ap.add_argument("--require", action="store_true", help="fail when nothing can be compiled here")
    ap.add_argument("--clean", action="store_true", help="only remove the build products")
    ap.add_argument("--package", action="append", help="only this package (dotted name, e.g. logstore)")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    natives = load_natives(root)
    if args.package:
        unknown = set(args.package) - {native.package for native in natives}
        if unknown:
            ap.error(f"no compiled modules in {', '.join(sorted(unknown))}")
        natives = [native for native in natives if native.package in args.package]
    if args.clean:
        for path in clean(root, natives):
            print(f"build_native: removed {path.relative_to(root)}")
        return 0
    stale = [(native, native.check()) for native in natives]
    stale = [(native, status) for native, status in stale if args.force or status.state != "compiled"]
    if not stale:
        print("build_native: up to date (extensions match their sources)")
        return 0
    todo = [native for native, _ in stale]
    why = compiler_missing()
    if why is not None:
        clean(root, natives)  # a stale build must not linger; the guards would refuse it anyway
        print(f"build_native: {why}: the compiled modules run as pure Python", file=sys.stderr)
        return 1 if args.require else 0
    unbuildable = [(native, headers_missing(native)) for native in todo]
    unbuildable = [(native, why) for native, why in unbuildable if why is not None]
    for native, why in unbuildable:
        clean(root, [native])
        print(f"build_native: {why}: {native.package}'s modules run as pure Python", file=sys.stderr)
    todo = [native for native in todo if all(native is not bad for bad, _ in unbuildable)]
    stale = [(native, status) for native, status in stale if native in todo]
    if not todo:
        return 1 if args.require else 0
    clean(root, todo)  # no manifest while building: a half-finished build reads as stale
    started = time.monotonic()
    for native, status in stale:
        print(f"build_native: compiling {native.package}: {', '.join(native.sources())} ({status.reason})")
    build(root, todo)
    bad = [(native, native.check()) for native in todo]
    bad = [(native, status) for native, status in bad if status.state != "compiled"]
    for native, status in bad:
        print(f"build_native: the build of {native.package} is not usable: {status.reason}", file=sys.stderr)
    if bad or (unbuildable and args.require):
        return 1
    print(f"build_native: done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
