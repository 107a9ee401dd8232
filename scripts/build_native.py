"""Compile the syslog parse path (collectors/syslog/native.py MODULES) with mypyc, in place.

Run by `make bootstrap` and scripts/bundle.sh: `python scripts/build_native.py [--root DIR] [--force]
[--require]`. Does nothing when the manifest says the extensions were built from the current sources.
Without a C compiler or the Python headers it removes any old build products and leaves the pure-Python
modules in use (exit 0; `--require` makes that an error). The manifest is written last, from the
sources' hashes taken before compiling, so an interrupted build or an edit during it reads as stale.

setuptools is driven directly (a Distribution running build_ext) rather than through `setup()`: that
would validate pyproject.toml's [project] table, which this venv's setuptools cannot read.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_native(root: Path) -> ModuleType:
    """collectors/syslog/native.py loaded on its own (importing the package would run its guard)."""
    spec = importlib.util.spec_from_file_location("_govnet_native", root / "collectors/syslog/native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


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


def build(root: Path, native: ModuleType) -> None:
    """mypycify the modules into one group and build the extensions in place under `root`."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    folder = root / "collectors/syslog"
    hashes = native.source_hashes(folder)
    paths = [str(Path("collectors/syslog") / f"{name}.py") for name in native.MODULES]
    cwd = Path.cwd()
    os.chdir(root)  # mypy resolves module names (collectors.syslog.X) from the working directory
    try:
        extensions = mypycify(
            paths, opt_level="3", group_name=f"{native.PACKAGE}.{native.GROUP}", target_dir="build/native"
        )
        dist = Distribution({"name": "govnet-native", "ext_modules": extensions})
        dist.script_name = "build_native.py"
        dist.script_args = ["-q", "build_ext", "--inplace", "--build-temp", "build/native/temp"]
        dist.parse_command_line()
        dist.run_commands()
    finally:
        os.chdir(cwd)
    if native.source_hashes(folder) != hashes:
        raise SystemExit("build_native: a source changed during the build; run it again")
    manifest = {
        "sources": hashes,
        "suffix": native.EXT_SUFFIX,
        "mypy": _mypy_version(),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = folder / (native.MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(folder / native.MANIFEST)


def _mypy_version() -> str:
    from mypy.version import __version__

    return __version__


def clean(root: Path, native: ModuleType) -> list[Path]:
    """Remove the build products (extensions, manifest, generated C); return what was removed."""
    removed = native.built_files(root / "collectors/syslog")
    for path in removed:
        path.unlink()
    shutil.rmtree(root / "build/native", ignore_errors=True)
    return list(removed)


def main(argv: list[str] | None = None) -> int:
    """Build when stale; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="source tree to build in (default: this one)")
    ap.add_argument("--force", action="store_true", help="rebuild even when the manifest is current")
    ap.add_argument("--require", action="store_true", help="fail when nothing can be compiled here")
    ap.add_argument("--clean", action="store_true", help="only remove the build products")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    native = load_native(root)
    folder = root / "collectors/syslog"
    if args.clean:
        for path in clean(root, native):
            print(f"build_native: removed {path.relative_to(root)}")
        return 0
    status = native.check(folder)
    if status.state == "compiled" and not args.force:
        print(f"build_native: up to date ({status.reason})")
        return 0
    why = compiler_missing()
    if why is not None:
        clean(root, native)  # a stale build must not linger; the guard would refuse it anyway
        print(f"build_native: {why}: the syslog parser runs as pure Python", file=sys.stderr)
        return 1 if args.require else 0
    clean(root, native)  # no manifest while building: a half-finished build reads as stale
    started = time.monotonic()
    print(f"build_native: compiling {', '.join(native.MODULES)} with mypyc ({status.reason})")
    build(root, native)
    status = native.check(folder)
    if status.state != "compiled":
        print(f"build_native: the build is not usable: {status.reason}", file=sys.stderr)
        return 1
    print(f"build_native: done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
