"""The mypyc-compiled parse path: in use when built and fresh, never shadowing an edited source, and
giving exactly the records the pure-Python modules give."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.syslog import native
from collectors.syslog.parse import parse_frame
from tests.support import syslog_corpus
from tests.support.paths import ROOT

STRICT = os.environ.get("GOVNET_STRICT") == "1"


def test_compiled_modules_are_the_ones_imported() -> None:
    """Under GOVNET_STRICT=1 (make test) the tests run the fresh compiled modules, or fail here."""
    found = native.check()
    loaded = native.loaded()
    assert set(loaded) == set(native.MODULES)  # this file imported parse, which imports the others
    if STRICT:
        assert found.state == "compiled", f"{found.reason}: run `make bootstrap` (scripts/build_native.py)"
    want = "compiled" if found.state == "compiled" else "source"
    assert loaded == dict.fromkeys(native.MODULES, want)
    assert native.status() == found
    if want == "compiled":
        assert str(sys.modules[parse_frame.__module__].__file__).endswith(native.EXT_SUFFIX)


def test_compiled_and_python_records_are_identical(tmp_path: Path) -> None:
    """Every sample, format example and seeded mutation: the same canonical bytes from both builds."""
    here = syslog_corpus.dump(syslog_corpus.texts())
    out = tmp_path / "python.jsonl"
    env = {**os.environ, "GOVNET_NATIVE": "0"}
    subprocess.run(
        [sys.executable, "-m", "tests.support.syslog_corpus", str(out)], cwd=ROOT, env=env, check=True
    )
    there = out.read_bytes().splitlines()
    assert len(there) == len(here) > 5000
    differ = [i for i, (a, b) in enumerate(zip(here, there, strict=True)) if a != b]
    assert not differ, (len(differ), here[differ[0]][:600], there[differ[0]][:600])
    assert not any(b"parse_error" in line for line in here)


def _copy_package(dest: Path, with_build: bool) -> Path:
    """collectors/syslog's sources (and, unless told otherwise, nothing else) under `dest`."""
    pkg = dest / "collectors" / "syslog"
    shutil.copytree(native.PACKAGE_DIR / "formats", pkg / "formats")
    (dest / "collectors" / "__init__.py").write_text("")
    for path in native.PACKAGE_DIR.glob("*.py"):
        shutil.copy2(path, pkg / path.name)
    if with_build:
        for path in native.built_files():
            shutil.copy2(path, pkg / path.name)
    return pkg


def _import(root: Path, strict: bool) -> subprocess.CompletedProcess[str]:
    """Import the parser from `root` in a fresh interpreter and parse one line; report what was loaded."""
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "from collectors.syslog import native\n"
        "from collectors.syslog.formats import load_formats\n"
        "from collectors.syslog.parse import parse_frame\n"
        "rec = parse_frame(b'<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICYDENY(l):protocol=6, "
        "source-ip=10.1.1.2, rule-name=r1.', 1.7e9, '10.0.0.1:514', 'tcp', load_formats(), {})\n"
        "print(native.status().state, sorted(set(native.loaded().values())), rec['format'], rec['src_ip'])\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{ROOT}", "GOVNET_STRICT": "1" if strict else "0"}
    env.pop("GOVNET_NATIVE", None)
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)


def _fake_build(pkg: Path, manifest: bool) -> None:
    """Extensions that are not loadable at all (a guard letting one through fails the import), and
    optionally a manifest naming today's sources."""
    for name in [*native.MODULES, f"{native.GROUP}__mypyc"]:
        (pkg / f"{name}{native.EXT_SUFFIX}").write_bytes(b"not an ELF object")
    if manifest:
        hashes = native.source_hashes(pkg)
        (pkg / native.MANIFEST).write_text(json.dumps({"sources": hashes, "suffix": native.EXT_SUFFIX}))


@pytest.mark.parametrize("case", ["edited_source", "no_manifest", "module_missing"])
def test_a_stale_build_never_shadows_the_source(tmp_path: Path, case: str) -> None:
    pkg = _copy_package(tmp_path, with_build=False)
    _fake_build(pkg, manifest=case != "no_manifest")
    if case == "edited_source":
        with (pkg / "rfc.py").open("a") as f:
            f.write("\n# edited after the build\n")
    elif case == "module_missing":
        (pkg / f"decode{native.EXT_SUFFIX}").unlink()
    relaxed = _import(tmp_path, strict=False)
    assert relaxed.returncode == 0, relaxed.stderr
    assert relaxed.stdout.split() == ["stale", "['source']", "huawei", "10.1.1.2"]
    assert "compiled syslog parser" in relaxed.stderr and "is stale" in relaxed.stderr  # the warning
    strict = _import(tmp_path, strict=True)
    assert strict.returncode != 0
    assert "ImportError" in strict.stderr and "GOVNET_STRICT=1 refuses" in strict.stderr


def test_no_build_means_the_python_sources_quietly(tmp_path: Path) -> None:
    _copy_package(tmp_path, with_build=False)
    proc = _import(tmp_path, strict=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["source", "['source']", "huawei", "10.1.1.2"]
    assert "stale" not in proc.stderr


def test_a_fresh_build_is_used_wherever_it_is_installed(tmp_path: Path) -> None:
    """The real build copied elsewhere (as a wheel installs it) is fresh there too; editing one of its
    sources makes it stale."""
    if not STRICT and native.check().state != "compiled":
        _copy_package(tmp_path, with_build=False)  # nothing built here: the copy has the sources only
        assert _import(tmp_path, strict=False).stdout.split()[:2] == ["source", "['source']"]
        return
    pkg = _copy_package(tmp_path, with_build=True)
    fresh = _import(tmp_path, strict=True)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.split() == ["compiled", "['compiled']", "huawei", "10.1.1.2"]
    with (pkg / "parse.py").open("a") as f:
        f.write("\n")
    assert native.check(pkg).reason == "source changed since the build: parse.py"
    stale = _import(tmp_path, strict=False)
    assert stale.stdout.split() == ["stale", "['source']", "huawei", "10.1.1.2"], stale.stderr


def test_build_without_a_compiler_leaves_pure_python(tmp_path: Path) -> None:
    """No C compiler: the build says so, removes a stale build (the guard would refuse it anyway) and
    succeeds unless told a compiled parser is required."""
    pkg = _copy_package(tmp_path, with_build=False)
    _fake_build(pkg, manifest=False)
    script = ROOT / "scripts" / "build_native.py"
    env = {**os.environ, "PATH": str(tmp_path / "no-bin"), "CC": "gcc"}  # nothing on PATH: no gcc
    built = subprocess.run(
        [sys.executable, str(script), "--root", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    assert "no C compiler" in built.stderr and "pure Python" in built.stderr
    assert native.built_files(pkg) == []
    assert native.check(pkg).state == "source"
    required = subprocess.run(
        [sys.executable, str(script), "--root", str(tmp_path), "--require"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert required.returncode == 1 and "no C compiler" in required.stderr
